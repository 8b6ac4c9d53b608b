//! Invariants over generated inputs (proptest): strip is idempotent and leaves nothing to
//! inspect; protect and strip outputs inspect clean; output sizes follow the orientation and
//! resize rules; an input is never modified.

mod common;

use proptest::prelude::*;

use photoshield::inspect::inspect;
use photoshield::strip::{strip, StripOptions};
use photoshield::{FileContext, Options, Pipeline};

/// A camera-like JPEG with a random subset of metadata.
fn arbitrary_jpeg(
    w: u32,
    h: u32,
    orientation: u8,
    seed: u32,
    gps: bool,
    serial: bool,
    thumb: bool,
) -> Vec<u8> {
    let (stored, sw, sh) = common::store_for_orientation(&common::landscape(w, h, seed), w, h, orientation);
    let spec = common::ExifSpec {
        orientation: Some(orientation as u16),
        make_model: Some(("TestCam", "X")),
        artist: Some("Jane Private"),
        serial: serial.then_some("SN-1"),
        gps: gps.then_some((-33.8688, 151.2093)),
        thumbnail: thumb.then(|| common::jpeg(&common::landscape(16, 12, seed), 16, 12)),
    };
    common::with_segments(
        &common::jpeg(&stored, sw, sh),
        &[
            common::exif_segment(&spec),
            common::xmp_segment(common::XMP_WITH_HISTORY),
            (0xFE, b"note".to_vec()),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn strip_is_idempotent_and_clean(
        w in 8u32..120, h in 8u32..120, o in 1u8..=8, seed in 0u32..1000,
        gps in any::<bool>(), serial in any::<bool>(), thumb in any::<bool>(),
    ) {
        let input = arbitrary_jpeg(w, h, o, seed, gps, serial, thumb);
        let once = strip(&input, &StripOptions::default()).unwrap();
        prop_assert_eq!(&strip(&once, &StripOptions::default()).unwrap(), &once);
        let ins = inspect(&once).unwrap();
        prop_assert!(!ins.leaks(), "{:?}", ins.findings);
        prop_assert!(ins.gps.is_none() && ins.serials.is_empty());
        // The orientation survives as the only EXIF field.
        prop_assert_eq!(photoshield::strip::exif_orientation(&once, photoshield::Format::Jpeg), o);
    }

    #[test]
    fn protect_output_is_clean_upright_and_within_the_size_limit(
        w in 8u32..160, h in 8u32..160, o in 1u8..=8, seed in 0u32..1000, max in proptest::option::of(4u32..200),
    ) {
        let input = arbitrary_jpeg(w, h, o, seed, true, true, true);
        let options = Options { max_size: max, ..Options::default() };
        let out = Pipeline::new(&options).unwrap().process(&input, &FileContext::default()).unwrap();
        // (`process` only borrows the bytes; what can go wrong, an original on disk replaced,
        // is tested over every layout and mode in tests/probe.rs.)
        prop_assert!(!inspect(&out.bytes).unwrap().leaks());
        // Upright size is w x h (the fixture is stored transformed); then the long-edge rule.
        let (ew, eh) = match max {
            Some(m) => photoshield::resize::fitted_size(w, h, m),
            None => (w, h),
        };
        let img = image::load_from_memory(&out.bytes).unwrap();
        prop_assert_eq!((img.width(), img.height()), (ew, eh));
        prop_assert!(img.width().max(img.height()) <= max.unwrap_or(u32::MAX));
    }
}
