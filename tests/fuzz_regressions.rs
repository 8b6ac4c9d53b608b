//! Replays the inputs the fuzzers found (and a few seeds) through the same checks as the fuzz
//! targets in fuzz/, so CI guards them without a nightly toolchain.

use std::path::Path;

use photoshield::strip::{strip, Rights, StripOptions};
use photoshield::{FileContext, Options, Pipeline};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs in {}", dir.display());
    out
}

#[test]
fn pipeline_regressions() {
    let pipeline = Pipeline::new(&Options {
        max_pixels: 1 << 20,
        ..Options::default()
    })
    .unwrap();
    for (name, data) in inputs("pipeline") {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pipeline
                .process(&data, &FileContext { name: "fuzz.jpg" })
                .map(|_| ())
        }));
        assert!(result.is_ok(), "{name}: panicked");
    }
}

#[test]
fn metadata_regressions() {
    let options = StripOptions {
        rights: Some(Rights {
            notice: "© fuzz".into(),
            ..Rights::default()
        }),
        ..StripOptions::default()
    };
    for (name, data) in inputs("metadata") {
        let _ = photoshield::inspect::inspect(&data);
        if let Ok(once) = strip(&data, &options) {
            assert_eq!(
                strip(&once, &options).unwrap(),
                once,
                "{name}: strip is not idempotent"
            );
            assert!(
                !photoshield::inspect::inspect(&once).unwrap().leaks(),
                "{name}: stripped output leaks"
            );
        }
    }
}

/// The `formats` target: the HEIF/JPEG XL walkers, both decoders and the RAW test.
#[test]
fn formats_regressions() {
    use photoshield::codec::DecodeLimits;
    let limits = DecodeLimits {
        max_pixels: 4_000_000,
    };
    for (name, data) in inputs("formats") {
        let _ = photoshield::container::isobmff::heif_parts(&data);
        let _ = photoshield::container::isobmff::jxl_parts(&data);
        let _ = photoshield::container::tiff::camera_raw(&data);
        let heic = photoshield::heif::decode_heic(&data, limits);
        let jxl = photoshield::heif::decode_jxl(&data, limits);
        // The seeds are real files (heif-enc, cjxl) and must decode.
        if name.starts_with("seed_") {
            let decoded = if name.ends_with(".heic") { heic } else { jxl };
            let px = decoded.unwrap_or_else(|e| panic!("{name}: {e}")).pixels;
            assert_eq!((px.width, px.height), (64, 48), "{name}");
        }
    }
}
