//! The JPEG encoder: strips encoded in parallel and joined by restart markers decode to the same
//! pixels as a one-piece encode, with bytes that do not depend on the number of threads.

mod common;

use common::landscape;
use image::ImageFormat;
use photoshield::codec::{self, jpeg_strip_rows, DecodeLimits, EncodeSettings, Format, OutputFormat};
use photoshield::{Layout, Pixels};

const Q90: EncodeSettings = EncodeSettings {
    format: OutputFormat::Jpeg,
    quality: 90,
};

/// jpeg-encoder in one piece, as photoshield configures it (q90, 4:2:0): the reference.
fn one_piece(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    common::jpeg_with(rgb, w, h, 90, jpeg_encoder::SamplingFactor::R_4_2_0)
}

/// Decoded with `image`'s decoder (not the one photoshield decodes with).
fn decoded(jpeg: &[u8]) -> Vec<u8> {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
        .unwrap()
        .into_rgb8()
        .into_raw()
}

/// Restart markers (FF D0..D7) in the entropy-coded data, in order of appearance.
fn restart_markers(jpeg: &[u8]) -> Vec<u8> {
    jpeg.windows(2)
        .filter(|p| p[0] == 0xFF && (0xD0..=0xD7).contains(&p[1]))
        .map(|p| p[1] - 0xD0)
        .collect()
}

fn encode_with_threads(px: &Pixels, threads: usize) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| codec::encode(px, Q90, None).unwrap())
}

#[test]
fn strips_decode_to_the_pixels_of_a_one_piece_encode() {
    // Heights around the 256-row strip (and under one strip), widths around the 16-pixel MCU.
    for (w, h) in [
        (1u32, 1u32),
        (1, 257),
        (17, 256),
        (17, 257),
        (640, 513),
        (333, 2100),
        (1000, 1203),
    ] {
        let rgb = landscape(w, h, w + h);
        let px = Pixels::new(w, h, Layout::Rgb8, rgb.clone());
        let strips = encode_with_threads(&px, 2);
        let reference = one_piece(&rgb, w, h);
        assert!(decoded(&strips) == decoded(&reference), "{w}x{h}: pixels differ");
        // zune-jpeg (photoshield's decoder) agrees.
        let back = codec::decode(&strips, Format::Jpeg, DecodeLimits { max_pixels: u64::MAX }).unwrap();
        assert!(
            back.pixels.data == decoded(&reference),
            "{w}x{h}: zune-jpeg differs"
        );
        // One restart marker between consecutive strips, RST0..RST7 in turn.
        let n = (h as usize).div_ceil(jpeg_strip_rows(w as usize));
        let expected: Vec<u8> = (0..n - 1).map(|k| (k % 8) as u8).collect();
        assert_eq!(restart_markers(&strips), expected, "{w}x{h}");
        // A few bytes per strip (its marker, the padding to a whole byte, the first DC value
        // of each component coded afresh), and the DRI segment.
        let bound = reference.len() + 24 * n + 6;
        assert!(
            strips.len() <= bound,
            "{w}x{h}: {} vs {} bytes",
            strips.len(),
            reference.len()
        );
    }
}

#[test]
fn strip_bytes_do_not_depend_on_the_number_of_threads() {
    let (w, h) = (900, 1500);
    let px = Pixels::new(w, h, Layout::Rgb8, landscape(w, h, 3));
    let one = encode_with_threads(&px, 1);
    assert_eq!(one, encode_with_threads(&px, 2));
    assert_eq!(one, encode_with_threads(&px, 5));
}

#[test]
fn the_widest_jpeg_keeps_its_restart_interval_within_16_bits() {
    // 65535 pixels = 4096 MCUs per row: 15 MCU rows per strip, not 16.
    assert_eq!(jpeg_strip_rows(65535), 240);
    assert_eq!(jpeg_strip_rows(4000), 256);
    let (w, h) = (65535u32, 250u32);
    let rgb: Vec<u8> = (0..w * h * 3)
        .map(|i| (i % 251) as u8 ^ (i / 7919) as u8)
        .collect();
    let px = Pixels::new(w, h, Layout::Rgb8, rgb.clone());
    let strips = codec::encode(&px, Q90, None).unwrap();
    assert_eq!(restart_markers(&strips), vec![0]);
    assert!(decoded(&strips) == decoded(&one_piece(&rgb, w, h)));
}

#[test]
fn the_colour_profile_is_written_once_at_the_start() {
    let (w, h) = (300, 800);
    let icc = common::tiny_icc();
    let px = Pixels::new(w, h, Layout::Rgb8, landscape(w, h, 9));
    let out = codec::encode(&px, Q90, Some(&icc)).unwrap();
    let count = out.windows(12).filter(|p| p == b"ICC_PROFILE\0").count();
    assert_eq!(count, 1);
    let back = codec::decode(&out, Format::Jpeg, DecodeLimits { max_pixels: u64::MAX }).unwrap();
    assert_eq!(back.icc.as_deref(), Some(&icc[..]));
    assert_eq!((back.pixels.width, back.pixels.height), (w, h));
}
