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
