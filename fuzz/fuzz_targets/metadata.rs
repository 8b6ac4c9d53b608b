//! The metadata reader and the lossless stripper on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photoshield::strip::{strip, Rights, StripOptions};

fuzz_target!(|data: &[u8]| {
    let _ = photoshield::inspect::inspect(data);
    let options = StripOptions { rights: Some(Rights { notice: "© fuzz".into(), ..Rights::default() }), ..StripOptions::default() };
    if let Ok(once) = strip(data, &options) {
        // A stripped file strips to itself and inspects clean.
        let twice = strip(&once, &options).expect("a stripped file strips again");
        assert_eq!(once, twice, "strip is idempotent");
        let ins = photoshield::inspect::inspect(&once).expect("a stripped file inspects");
        assert!(!ins.leaks(), "stripped output leaks: {:?}", ins.findings);
    }
});
