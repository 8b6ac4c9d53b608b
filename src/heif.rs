//! Decoding the newer photo formats into [`Pixels`]: HEIC/HEIF (HEVC in a HEIF container, what
//! iPhones save) with the pure-Rust `heic-decoder`, and JPEG XL with the pure-Rust `jxl-oxide`.
//! AVIF is read as a structure (for `inspect`) but not decoded; see [`crate::format::sniff`].
//!
//! The rules these decoders share with the rest of photoshield:
//! - the display transform is the container's (`irot`/`imir` in HEIF, the codestream's
//!   orientation in JPEG XL) and is already in the returned pixels; the EXIF Orientation inside
//!   these files describes the same turn again and is never applied on top of it;
//! - the sizes the file declares are checked against the limit before anything is decoded;
//! - the colour profile is returned for the encoder to keep; EXIF only for the date tokens;
//! - nothing but the primary image is decoded: thumbnails, depth maps, gain maps and embedded
//!   videos never reach [`Pixels`].

use image::metadata::Orientation;

use crate::codec::{DecodeLimits, Decoded};
use crate::container::isobmff::{self, Heif};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::{Layout, Pixels};

fn fail(format: Format, reason: impl Into<String>) -> Error {
    Error::decode(format, reason.into())
}

fn check_limits(format: Format, width: u64, height: u64, limits: DecodeLimits) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(fail(format, "image has zero width or height"));
    }
    if width.saturating_mul(height) > limits.max_pixels {
        return Err(Error::TooLarge {
            width: width.min(u32::MAX as u64) as u32,
            height: height.min(u32::MAX as u64) as u32,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// Decodes the primary image of a HEIC/HEIF file, upright.
pub fn decode_heic(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    let format = Format::Heif;
    // Our own walk first: it bounds every item against the file and the declared sizes against
    // the limit, so the decoder is never handed a file that would make it allocate too much.
    let heif = Heif::parse(bytes).map_err(|e| fail(format, e))?;
    let (w, h) = heif.check_size(limits.max_pixels).map_err(|e| fail(format, e))?;
    check_limits(format, w as u64, h as u64, limits)?;
    let info = heic_decoder::probe(bytes).map_err(|e| fail(format, e.to_string()))?;
    check_limits(format, info.width as u64, info.height as u64, limits)?;
    let image = heic_decoder::decode(bytes).map_err(|e| fail(format, e.to_string()))?;
    let (width, height) = (image.width as u32, image.height as u32);
    let high_bit_depth = image.bit_depth_luma > 8 || image.bit_depth_chroma > 8;
    let pixels = if image.alpha.is_some() {
        let rgba = image.to_rgba8().map_err(|e| fail(format, e.to_string()))?;
        Pixels::new(width, height, Layout::Rgba8, rgba.data)
    } else {
        let rgb = image.to_rgb8().map_err(|e| fail(format, e.to_string()))?;
        Pixels::new(width, height, Layout::Rgb8, rgb.data)
    };
    Ok(Decoded {
        pixels,
        format,
        // irot/imir are in the pixels already; the EXIF Orientation repeats them.
        orientation: Orientation::NoTransforms,
        icc: image.metadata.icc_profile,
        exif: heif.exif(bytes),
        frames: None,
        high_bit_depth,
        icc_dropped: false,
    })
}

/// Decodes a JPEG XL file (bare codestream or container), upright, its first frame.
pub fn decode_jxl(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    use jxl_oxide::JxlImage;
    let format = Format::Jxl;
    if isobmff::is_jxl_container(bytes) {
        isobmff::boxes(bytes, 0..bytes.len()).map_err(|e| fail(format, e))?;
    }
    // The size is the codestream's first field: check it before jxl-oxide reads on (it parses
    // the first frame's table of contents, sized by the image, before it returns the header).
    let (w, h) = jxl_declared_size(bytes).ok_or_else(|| fail(format, "truncated file (no image header)"))?;
    check_limits(format, w, h, limits)?;
    // The header is read before any frame: its size is checked before the frames are decoded.
    let mut uninit = JxlImage::builder().build_uninit();
    uninit
        .feed_bytes(bytes)
        .map_err(|e| fail(format, e.to_string()))?;
    let mut image = match uninit.try_init().map_err(|e| fail(format, e.to_string()))? {
        jxl_oxide::InitializeResult::Initialized(image) => image,
        jxl_oxide::InitializeResult::NeedMoreData(_) => {
            return Err(fail(format, "truncated file (the image header is incomplete)"))
        }
    };
    check_limits(format, image.width() as u64, image.height() as u64, limits)?;
    image.finalize().map_err(|e| fail(format, e.to_string()))?;
    if image.num_loaded_keyframes() == 0 {
        return Err(fail(format, "truncated file (no complete frame)"));
    }
    let frames = image.num_loaded_keyframes();
    let header = image.image_header();
    let high_bit_depth = header.metadata.bit_depth.bits_per_sample() > 8;
    let icc = image.original_icc().map(<[u8]>::to_vec).or_else(|| {
        // An enumerated colour space other than sRGB still needs a profile to look right.
        let srgb = image.rendered_cicp().is_some_and(|c| c[0] == 1 && c[1] == 13);
        (!srgb).then(|| image.rendered_icc())
    });
    let render = image.render_frame(0).map_err(|e| fail(format, e.to_string()))?;
    let (width, height) = (image.width(), image.height());
    let pixel_format = image.pixel_format();
    let alpha = pixel_format.has_alpha();
    let channels = if alpha { 4 } else { 3 };
    let mut stream = render.stream();
    let source_channels = stream.channels() as usize;
    let mut samples = vec![0u8; width as usize * height as usize * source_channels];
    stream.write_to_buffer(&mut samples);
    let data = match (source_channels, channels) {
        (s, c) if s == c => samples,
        // Grey (and grey with alpha) become RGB(A).
        (1, 3) => samples.iter().flat_map(|&v| [v, v, v]).collect(),
        (2, 4) => samples
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        (s, _) => return Err(fail(format, format!("unsupported channel layout ({s} channels)"))),
    };
    let layout = if alpha { Layout::Rgba8 } else { Layout::Rgb8 };
    Ok(Decoded {
        pixels: Pixels::new(width, height, layout, data),
        format,
        // jxl-oxide applies the codestream's orientation while rendering.
        orientation: Orientation::NoTransforms,
        icc,
        exif: isobmff::jxl_exif(bytes),
        frames: (frames > 1).then_some(frames as u32),
        high_bit_depth,
        icc_dropped: false,
    })
}

/// Width and height of a JPEG XL image (oriented) from its header alone.
pub(crate) fn jxl_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut uninit = jxl_oxide::JxlImage::builder().build_uninit();
    uninit.feed_bytes(bytes).ok()?;
    match uninit.try_init().ok()? {
        jxl_oxide::InitializeResult::Initialized(image) => Some((image.width(), image.height())),
        jxl_oxide::InitializeResult::NeedMoreData(_) => None,
    }
}

/// The width and height a JPEG XL codestream declares (its `SizeHeader`, the first field after
/// the signature), read directly so that the limit is checked before any decoder runs.
pub(crate) fn jxl_declared_size(bytes: &[u8]) -> Option<(u64, u64)> {
    let code: &[u8] = if isobmff::is_jxl_container(bytes) {
        let top = isobmff::boxes(bytes, 0..bytes.len()).ok()?;
        let b = top.iter().find(|b| matches!(&b.kind, b"jxlc" | b"jxlp"))?;
        // A 'jxlp' piece starts with a 4-byte index.
        let skip = if &b.kind == b"jxlp" { 4 } else { 0 };
        bytes.get(b.body.start + skip..b.body.end)?
    } else {
        bytes
    };
    let code = code.strip_prefix(&[0xFF, 0x0A])?;
    let mut pos = 0usize;
    let mut bits = |n: usize| -> Option<u64> {
        let mut v = 0u64;
        for i in 0..n {
            let byte = *code.get((pos + i) / 8)?;
            v |= ((byte >> ((pos + i) % 8) & 1) as u64) << i;
        }
        pos += n;
        Some(v)
    };
    let div8 = bits(1)? == 1;
    let dimension = |bits: &mut dyn FnMut(usize) -> Option<u64>| -> Option<u64> {
        if div8 {
            Some((bits(5)? + 1) * 8)
        } else {
            let n = [9, 13, 18, 30][bits(2)? as usize];
            Some(bits(n)? + 1)
        }
    };
    let h = dimension(&mut bits)?;
    let ratio = bits(3)?;
    let w = match ratio {
        0 => dimension(&mut bits)?,
        r => {
            let (num, den) = [(1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1)][r as usize - 1];
            h * num / den
        }
    };
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jxl_declared_size_reads_both_size_header_forms() {
        // cjxl's header of a 300x200 image: multiple-of-8 height, aspect ratio 3:2.
        assert_eq!(jxl_declared_size(&[0xFF, 0x0A, 0x31, 0x41]), Some((300, 200)));
        // Explicit 18-bit height and width: 100000 x 100000.
        let mut bits: Vec<bool> = Vec::new();
        let mut push = |v: u32, n: u32| (0..n).for_each(|i| bits.push(v >> i & 1 == 1));
        push(0, 1);
        push(2, 2);
        push(99_999, 18);
        push(0, 3);
        push(2, 2);
        push(99_999, 18);
        let mut code = vec![0xFF, 0x0A];
        code.extend(
            bits.chunks(8)
                .map(|c| c.iter().enumerate().fold(0u8, |a, (i, &b)| a | (b as u8) << i)),
        );
        assert_eq!(jxl_declared_size(&code), Some((100_000, 100_000)));
        assert_eq!(jxl_declared_size(&code[..5]), None, "truncated");
    }
}
