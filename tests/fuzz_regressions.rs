//! Replays the inputs the fuzzers found (and a few seeds) through the same checks as the fuzz
//! targets in fuzz/, so CI guards them without a nightly toolchain.

use std::path::Path;

#[path = "common/plant.rs"]
mod plant;

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

/// The `formats` target: the HEIF/JPEG XL walkers, the three decoders and the RAW test.
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
        let avif = photoshield::heif::decode_avif(&data, limits);
        let jxl = photoshield::heif::decode_jxl(&data, limits);
        // The seeds are real files (heif-enc, avifenc, cjxl) and must decode, upright.
        if name.starts_with("seed_") {
            let decoded = match name.rsplit('.').next() {
                Some("heic") => heic,
                Some("avif") => avif,
                _ => jxl,
            };
            let px = decoded.unwrap_or_else(|e| panic!("{name}: {e}")).pixels;
            let size = if name.contains("irot") {
                (96, 128)
            } else {
                (64, 48)
            };
            assert_eq!((px.width, px.height), size, "{name}");
        }
    }
}

/// The `planted` target's check over every base file, kind of carrier and position it can
/// choose (its first three bytes), with a few different details each, then its saved
/// regressions: no planted marker reaches a `strip` or `protect` output, and `inspect` never
/// calls a planted file clean.
#[test]
fn nothing_planted_survives() {
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for base in 0..plant::BASES as u8 {
        for kind in 0..plant::KINDS as u8 {
            for position in 0..plant::POSITIONS as u8 {
                for detail in [0u8, 1, 3, 0x81] {
                    let rest = (0..12u8).map(|i| detail.wrapping_mul(i).wrapping_add(i));
                    let data = [base, kind, position, detail].into_iter().chain(rest).collect();
                    cases.push((format!("[{base}, {kind}, {position}, {detail}]"), data));
                }
            }
        }
    }
    cases.extend(inputs("planted"));
    let mut failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, data)| {
            plant::check(&plant::plant(data))
                .err()
                .map(|e| format!("{name} {e}"))
        })
        .collect();
    let total = failures.len();
    failures.sort_by(|a, b| {
        a.split_once(' ')
            .map(|x| x.1)
            .cmp(&b.split_once(' ').map(|x| x.1))
    });
    failures.dedup_by(|a, b| a.split_once(' ').map(|x| x.1) == b.split_once(' ').map(|x| x.1));
    assert!(
        failures.is_empty(),
        "{total} of {} planted files failed; distinct failures:\n{}",
        cases.len(),
        failures.join("\n")
    );
}
