//! Nothing planted survives: a marker hidden in one metadata position of a small valid JPEG,
//! PNG, WebP or GIF (the fuzzer's bytes choose the file, the carrier, the position and the
//! details) never reaches a `strip` or `protect` output, and `inspect` never calls the file
//! clean. The generator and the check are tests/common/plant.rs, which the test suite runs
//! over every carrier and position and over the saved regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/plant.rs"]
mod plant;

fuzz_target!(|data: &[u8]| {
    let planted = plant::plant(data);
    if let Err(failure) = plant::check(&planted) {
        panic!("{failure}");
    }
});
