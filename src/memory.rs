//! What protecting one file can cost in memory, told from its header before anything is decoded,
//! so that a run refuses a file that would not fit under `--max-memory` and never starts more
//! files at once than fit together.
//!
//! The estimate is an upper bound built from what each stage holds at its peak (tested against
//! the peak resident size of real runs in tests/memory.rs):
//! - the decoded picture, 8 bits per channel, RGB or RGBA (`d`);
//! - what the decoder holds besides it: nothing for baseline JPEG and PNG (read row by row),
//!   16-bit coefficients for a progressive JPEG, YUV planes for lossy WebP, the decoder's own
//!   full-depth copy for TIFF and GIF (through `image`), 32-bit planes for HEIC and JPEG XL;
//! - the largest later stage: a second copy for a quarter turn or a resize, the watermark's
//!   layers, and the encoder's working planes and output;
//! - the file itself, and a fixed allowance for the program, its fonts and thread stacks.

use crate::format::{Format, OutputFormat};
use crate::options::Options;

/// The fixed allowance: the binary, fonts, allocator and thread stacks, the input file.
const BASE: u64 = 100 << 20;

/// Bytes of memory protecting `bytes` may take at its peak, or `None` when the header does not
/// tell the picture's size (the decoder then refuses the file on its own).
pub fn estimate(bytes: &[u8], format: Format, options: &Options) -> Option<u64> {
    let (w, h) = crate::codec::dimensions(bytes, format)?;
    let px = w as u64 * h as u64;
    let channels = if has_alpha(bytes, format) { 4 } else { 3 };
    let d = px * channels;
    let decoder = px
        * match format {
            Format::Jpeg if is_progressive(bytes) => 6,
            Format::Jpeg | Format::Png => 0,
            Format::WebP if crate::codec::animation_frames(bytes, format).is_some() => 4,
            Format::WebP => 3,
            Format::Gif => 6,
            Format::Tiff => 10,
            Format::Heif | Format::Jxl => 16,
            // One tile's planes (16-bit samples, widened rows), the canvas is `d`.
            Format::Avif => 4,
        };
    // After decoding: the largest stage holds one more picture-sized buffer (a quarter turn, the
    // resize's destination), the watermark's layers (mask, colour and coverage: up to 2·d + px
    // when tiled over the whole picture), or the encoder's planes and output.
    let encoder = match options.format.unwrap_or(OutputFormat::for_input(format)) {
        // libwebp compresses an alpha plane with its lossless coder, whose hash chains and
        // backward references take about 23 bytes per pixel (measured on 24 MP).
        OutputFormat::WebP if channels == 4 => px * 28,
        OutputFormat::WebP => px * 3 / 2 + d,
        OutputFormat::Png => d,
        OutputFormat::Jpeg => d / 2,
    };
    let watermark = if options.watermark.is_active() {
        2 * d + px
    } else {
        0
    };
    let stage = d.max(watermark).max(encoder);
    Some(BASE + bytes.len() as u64 + d + decoder.max(stage))
}

/// Whether the decoded picture has an alpha channel, from the header (GIF, TIFF, HEIC and JPEG
/// XL count as having one: the estimate stays an upper bound).
fn has_alpha(bytes: &[u8], format: Format) -> bool {
    match format {
        Format::Jpeg => false,
        Format::Png => crate::container::png::chunks(bytes).any(|c| match &c.kind {
            b"IHDR" => matches!(c.data.get(9), Some(4 | 6)),
            kind => kind == b"tRNS",
        }),
        Format::WebP => crate::container::riff::chunks(bytes).any(|c| match &c.id {
            b"VP8X" => c.data.first().is_some_and(|f| f & 0x10 != 0),
            b"VP8L" => crate::container::riff::vp8l_has_alpha(c.data),
            _ => false,
        }),
        Format::Gif | Format::Tiff | Format::Heif | Format::Avif | Format::Jxl => true,
    }
}

/// Whether a JPEG's frame is progressive (its decoder then holds every coefficient).
fn is_progressive(bytes: &[u8]) -> bool {
    crate::container::jpeg::layout(bytes)
        .segments
        .iter()
        .any(|s| matches!(s.marker, 0xC2 | 0xC6 | 0xCA | 0xCE))
}
