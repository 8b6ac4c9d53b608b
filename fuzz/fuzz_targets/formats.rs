//! The HEIF/JPEG XL box walkers, the HEIC, AVIF and JPEG XL decoders and the camera-RAW test on
//! arbitrary bytes: an error is fine, a panic or an allocation past the limit is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photoshield::codec::DecodeLimits;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits { max_pixels: 4_000_000 };
    let _ = photoshield::container::isobmff::heif_parts(data);
    let _ = photoshield::container::isobmff::jxl_parts(data);
    let _ = photoshield::container::tiff::camera_raw(data);
    let _ = photoshield::heif::decode_heic(data, limits);
    let _ = photoshield::heif::decode_avif(data, limits);
    let _ = photoshield::heif::decode_jxl(data, limits);
});
