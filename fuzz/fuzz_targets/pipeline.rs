//! The whole pipeline on arbitrary bytes, with small limits: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photoshield::{FileContext, Options, Pipeline};

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static PIPELINE: Pipeline = Pipeline::new(&Options { max_pixels: 1 << 20, ..Options::default() }).unwrap();
    }
    PIPELINE.with(|p| {
        let _ = p.process(data, &FileContext { name: "fuzz.jpg" });
    });
});
