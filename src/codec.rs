//! Reading and writing image files: tell the format from the content, decode under limits into
//! [`Pixels`], encode [`Pixels`] into a fresh file that carries no metadata but the colour profile.
//!
//! Codecs: JPEG is decoded with zune-jpeg (straight into one buffer) and encoded with
//! jpeg-encoder (about 3x faster than `image`'s encoder and with 4:2:0 chroma); GIF and TIFF
//! go through `image`; PNG is read row by row with the png crate and WebP with image-webp, both straight into the
//! 8-bit buffer the pipeline holds; lossy WebP is written by libwebp (the `libwebp` feature;
//! without it WebP is written lossless).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::{Format, OutputFormat};
use crate::pixels::{Layout, Pixels};

/// Limits applied while decoding, so that a crafted file cannot exhaust memory.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Largest accepted width x height.
    pub max_pixels: u64,
}

/// A decoded image with what the later stages need to know about its source.
#[derive(Debug)]
pub struct Decoded {
    /// The pixels as stored, before the orientation is applied.
    pub pixels: Pixels,
    /// The format that was decoded.
    pub format: Format,
    /// The EXIF orientation, not yet applied to `pixels`.
    pub orientation: Orientation,
    /// The embedded ICC colour profile, if any.
    pub icc: Option<Vec<u8>>,
    /// The EXIF block (TIFF structure), if any: read for the capture date, never written.
    pub exif: Option<Vec<u8>>,
    /// Number of frames when the file is animated (only the first is kept).
    pub frames: Option<u32>,
    /// True when the source had more than 8 bits per channel (it is reduced to 8).
    pub high_bit_depth: bool,
    /// True when the source's colour profile was left out: larger than any real profile, or
    /// corrupt.
    pub icc_dropped: bool,
}

/// Decodes `bytes` (whose format `sniff` returned) under `limits`.
pub fn decode(bytes: &[u8], format: Format, limits: DecodeLimits) -> Result<Decoded> {
    match format {
        Format::Jpeg => decode_jpeg(bytes, limits),
        Format::Heif => crate::heif::decode_heic(bytes, limits),
        #[cfg(feature = "avif")]
        Format::Avif => crate::heif::decode_avif(bytes, limits),
        Format::Jxl => crate::heif::decode_jxl(bytes, limits),
        Format::Png => decode_png(bytes, limits),
        Format::WebP => decode_webp(bytes, limits),
        _ => decode_with_image(bytes, format, limits),
    }
}

/// The orientation that counts for a file, by the rule shared with `inspect` and `strip`
/// ([`crate::metadata::orientation`]).
fn orientation_of(bytes: &[u8], format: Format) -> Orientation {
    Orientation::from_exif(crate::metadata::orientation(bytes, format)).unwrap_or(Orientation::NoTransforms)
}

fn check_limits(width: u32, height: u32, limits: DecodeLimits) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::NotAnImage("image has zero width or height"));
    }
    if width as u64 * height as u64 > limits.max_pixels {
        return Err(Error::TooLarge {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

fn decode_jpeg(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    let fail = |reason: String| Error::decode(Format::Jpeg, reason);
    let layout = crate::container::jpeg::layout(bytes);
    if layout.end.is_none() {
        // A truncated JPEG decodes to a grey lower part; refuse rather than publish that.
        return Err(fail(
            "truncated file (no end-of-image marker after the image data)".into(),
        ));
    }

    let options = DecoderOptions::default()
        .set_max_width(u16::MAX as usize)
        .set_max_height(u16::MAX as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|e| Error::decode(Format::Jpeg, e))?;
    let info = decoder.info().ok_or_else(|| fail("no image header".into()))?;
    let (width, height) = (info.width as u32, info.height as u32);
    check_limits(width, height, limits)?;
    // An end marker after half the data looks whole to the marker walk: count the MCUs.
    if let Some(scan) = crate::entropy::check(bytes, &layout).filter(|s| !s.complete()) {
        return Err(fail(format!(
            "truncated image data ({} of {} blocks present)",
            scan.found, scan.expected
        )));
    }
    let orientation = orientation_of(bytes, Format::Jpeg);
    let icc = decoder.icc_profile();
    let exif = crate::metadata::exif_block(bytes, Format::Jpeg).map(<[u8]>::to_vec);
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| fail("no image header".into()))?;
    if size != width as usize * height as usize * 3 {
        return Err(fail(format!(
            "unexpected output size {size} for {width}x{height} RGB"
        )));
    }
    let mut data = crate::pixels::image_buffer(size);
    decoder
        .decode_into(&mut data)
        .map_err(|e| Error::decode(Format::Jpeg, e))?;
    Ok(Decoded {
        pixels: Pixels::new(width, height, Layout::Rgb8, data),
        format: Format::Jpeg,
        orientation,
        icc,
        exif,
        frames: None,
        high_bit_depth: false,
        icc_dropped: false,
    })
}

/// A PNG without its `iCCP` chunk when that chunk would inflate past any real profile (the
/// PNG decoder inflates it whole before the first pixel), so that a few kilobytes cannot claim
/// a gigabyte. `None` when the PNG can be decoded as it is.
fn png_without_oversized_iccp(bytes: &[u8]) -> Option<Vec<u8>> {
    let iccp = crate::container::png::chunks(bytes).find(|c| &c.kind == b"iCCP")?;
    crate::container::png::iccp_profile(iccp.data).err()?;
    Some([&bytes[..iccp.offset], &bytes[iccp.end..]].concat())
}

/// PNG through the png crate, converted row by row into the 8-bit RGB or RGBA the pipeline
/// holds, so a 16-bit or greyscale picture never exists at its own decoded size (a 16-bit
/// 250 MP PNG took 2.2 GB through `image`; this way, its 8-bit size plus one row). 16 bits
/// become 8 with rounding, as `image` converts them.
fn decode_png(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    if let Some(without) = png_without_oversized_iccp(bytes) {
        let mut decoded = decode_png(&without, limits)?;
        decoded.icc_dropped = true;
        return Ok(decoded);
    }
    let fail = |e: png::DecodingError| Error::decode(Format::Png, e);
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(fail)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    check_limits(width, height, limits)?;
    let high_bit_depth = info.bit_depth == png::BitDepth::Sixteen;
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
    let (color, depth) = reader.output_color_type();
    let wide = depth == png::BitDepth::Sixteen;
    let samples = color.samples();
    let layout = match color {
        png::ColorType::GrayscaleAlpha | png::ColorType::Rgba => Layout::Rgba8,
        _ => Layout::Rgb8,
    };
    let channels = layout.channels();
    let stride = width as usize * channels;
    let mut data = crate::pixels::image_buffer(stride * height as usize);
    let mut row8 = vec![0u8; stride];
    let mut y = 0;
    while let Some(row) = reader.next_interlaced_row().map_err(fail)? {
        let src = row.data();
        let n = src.len() / (samples << wide as usize);
        for (x, out) in row8.chunks_exact_mut(channels).take(n).enumerate() {
            let sample = |c: usize| {
                let i = x * samples + c;
                match wide {
                    // Rounded as `image` reduces 16 bits: round(v * 255 / 65535).
                    true => ((u16::from_be_bytes([src[2 * i], src[2 * i + 1]]) as u32 + 128) / 257) as u8,
                    false => src[i],
                }
            };
            match samples {
                1 | 2 => out[..3].fill(sample(0)),
                _ => (0..3).for_each(|c| out[c] = sample(c)),
            }
            if channels == 4 {
                out[3] = sample(samples - 1);
            }
        }
        match row.interlace() {
            png::InterlaceInfo::Adam7(pass) => {
                png::expand_interlaced_row(&mut data, stride, &row8[..n * channels], pass, 8 * channels as u8)
            }
            png::InterlaceInfo::Null(_) => {
                data[y * stride..(y + 1) * stride].copy_from_slice(&row8);
                y += 1;
            }
        }
    }
    Ok(Decoded {
        pixels: Pixels::new(width, height, layout, data),
        format: Format::Png,
        orientation: orientation_of(bytes, Format::Png),
        icc,
        exif: crate::metadata::exif_block(bytes, Format::Png).map(<[u8]>::to_vec),
        frames: animation_frames(bytes, Format::Png).filter(|&n| n > 1),
        high_bit_depth,
        icc_dropped: false,
    })
}

/// WebP through image-webp, straight into the pipeline's buffer. An animation shows its first
/// frame: that frame is decoded on its own and placed on the transparent canvas, instead of
/// through image-webp's animation path, which keeps a second canvas-sized buffer (2 GB for a
/// 2.8 KB file declaring a 15000x16000 canvas). A lossless picture without alpha is decoded as
/// RGBA and narrowed in place, since image-webp would otherwise decode it into a temporary RGBA
/// copy first.
fn decode_webp(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    let fail = |reason: String| Error::decode(Format::WebP, reason);
    let chunks: Vec<_> = crate::container::riff::chunks(bytes).collect();
    let (width, height) = crate::container::riff::canvas_size(&chunks)
        .ok_or_else(|| fail("no image header (truncated file?)".into()))?;
    check_limits(width, height, limits)?;
    let vp8x_flags = chunks
        .iter()
        .find(|c| &c.id == b"VP8X")
        .and_then(|c| c.data.first().copied());
    let pixels = match chunks.iter().find(|c| &c.id == b"ANMF") {
        Some(frame) => {
            let alpha = vp8x_flags.is_some_and(|f| f & 0x10 != 0);
            first_frame_on_canvas(frame.data, width, height, alpha).map_err(fail)?
        }
        None => decode_webp_still(bytes, &chunks).map_err(fail)?,
    };
    if (pixels.width, pixels.height) != (width, height) {
        return Err(fail(format!(
            "picture is {}x{}, its header says {width}x{height}",
            pixels.width, pixels.height
        )));
    }
    Ok(Decoded {
        pixels,
        format: Format::WebP,
        orientation: orientation_of(bytes, Format::WebP),
        icc: chunks.iter().find(|c| &c.id == b"ICCP").map(|c| c.data.to_vec()),
        exif: crate::metadata::exif_block(bytes, Format::WebP).map(<[u8]>::to_vec),
        frames: animation_frames(bytes, Format::WebP).filter(|&n| n > 1),
        high_bit_depth: false,
        icc_dropped: false,
    })
}

/// A still WebP's pixels, RGBA when it has alpha, else RGB.
fn decode_webp_still(
    bytes: &[u8],
    chunks: &[crate::container::riff::Chunk],
) -> std::result::Result<Pixels, String> {
    let open = |b| image_webp::WebPDecoder::new(Cursor::new(b)).map_err(|e| e.to_string());
    let mut decoder = open(bytes)?;
    let (w, h) = decoder.dimensions();
    let lossless = chunks.iter().find(|c| &c.id == b"VP8L");
    if let Some(vp8l) = lossless.filter(|_| !decoder.has_alpha()) {
        // The same bitstream declared with alpha decodes straight into one RGBA buffer, which
        // is then narrowed in place.
        let vp8x = crate::container::riff::vp8x(0x10, w, h);
        let rewrapped = crate::container::riff::webp_file([(b"VP8X", &vp8x[..]), (b"VP8L", vp8l.data)]);
        let mut decoder = open(&rewrapped)?;
        let mut data =
            crate::pixels::scratch_buffer(decoder.output_buffer_size().ok_or("picture too large")?);
        decoder.read_image(&mut data).map_err(|e| e.to_string())?;
        rgba_to_rgb_in_place(&mut data);
        return Ok(Pixels::new(w, h, Layout::Rgb8, data));
    }
    let layout = if decoder.has_alpha() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    let mut data = crate::pixels::scratch_buffer(decoder.output_buffer_size().ok_or("picture too large")?);
    decoder.read_image(&mut data).map_err(|e| e.to_string())?;
    Ok(Pixels::new(w, h, layout, data))
}

/// Drops the alpha byte of every pixel, in place (each RGB triple moves to a lower offset).
fn rgba_to_rgb_in_place(data: &mut Vec<u8>) {
    let n = data.len() / 4;
    for i in 0..n {
        data.copy_within(4 * i..4 * i + 3, 3 * i);
    }
    data.truncate(3 * n);
}

/// The first frame of an animation (the payload of its first `ANMF` chunk) on a transparent
/// `width` x `height` canvas: RGBA when the file declares alpha, else RGB (the canvas black).
/// The first frame is not blended (libwebp's animation decoder draws a key frame as it is; only
/// its fully transparent pixels stay transparent black). image-webp blends it over the empty
/// canvas, which rounds every colour it blends one level down.
fn first_frame_on_canvas(
    anmf: &[u8],
    width: u32,
    height: u32,
    alpha: bool,
) -> std::result::Result<Pixels, String> {
    let u24 = |at: usize| {
        anmf.get(at..at + 3)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], 0]))
    };
    let (Some(x), Some(y), Some(fw), Some(fh), Some(&flags)) = (u24(0), u24(3), u24(6), u24(9), anmf.get(15))
    else {
        return Err("malformed animation frame".into());
    };
    let (x, y, fw, fh) = (2 * x as usize, 2 * y as usize, fw as usize + 1, fh as usize + 1);
    let blend = flags & 0x02 == 0;
    // The frame as a still picture of its own, with alpha declared so that it decodes to RGBA.
    // (A lossy frame without an ALPH chunk is opaque: declaring alpha would make its decoder
    // look for one.)
    let picture: Vec<_> = crate::container::riff::anmf_subchunks(anmf)
        .filter(|(id, _)| matches!(id, b"ALPH" | b"VP8 " | b"VP8L"))
        .collect();
    let has_alpha_data = picture.iter().any(|(id, _)| id != b"VP8 ");
    let vp8x = crate::container::riff::vp8x(if has_alpha_data { 0x10 } else { 0 }, fw as u32, fh as u32);
    let still = crate::container::riff::webp_file(
        std::iter::once((b"VP8X", &vp8x[..])).chain(picture.iter().map(|(id, data)| (id, *data))),
    );
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(&still[..])).map_err(|e| e.to_string())?;
    let mut frame = vec![0u8; decoder.output_buffer_size().ok_or("frame too large")?];
    let opaque = !decoder.has_alpha();
    decoder.read_image(&mut frame).map_err(|e| e.to_string())?;
    let frame_channels = if opaque { 3 } else { 4 };
    let channels = if alpha { 4 } else { 3 };
    let (w, h) = (width as usize, height as usize);
    let mut data = crate::pixels::image_buffer(w * h * channels);
    if x < w && y < h {
        for row in 0..fh.min(h - y) {
            let src = &frame[row * fw * frame_channels..][..fw.min(w - x) * frame_channels];
            let dst = &mut data[((y + row) * w + x) * channels..][..fw.min(w - x) * channels];
            for (s, d) in src
                .chunks_exact(frame_channels)
                .zip(dst.chunks_exact_mut(channels))
            {
                let a = if opaque { 255 } else { s[3] };
                if blend && a == 0 {
                    continue; // stays transparent black
                }
                d[..3].copy_from_slice(&s[..3]);
                if channels == 4 {
                    d[3] = a;
                }
            }
        }
    }
    let layout = if alpha { Layout::Rgba8 } else { Layout::Rgb8 };
    Ok(Pixels::new(width, height, layout, data))
}

fn decode_with_image(bytes: &[u8], format: Format, limits: DecodeLimits) -> Result<Decoded> {
    let fail = |reason: String| Error::decode(format, reason);
    let image_format = match format {
        Format::Png => ImageFormat::Png,
        Format::WebP => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Gif => ImageFormat::Gif,
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Heif | Format::Avif | Format::Jxl => return Err(fail("decoded by crate::heif".into())),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    // 8 bytes per pixel covers 16-bit RGBA, the widest layout these decoders produce.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(|e| Error::decode(format, e))?;
    let (width, height) = decoder.dimensions();
    check_limits(width, height, limits)?;
    let icc = decoder.icc_profile().ok().flatten();
    let exif = match format {
        Format::Tiff => None, // the TIFF's own tags: no capture date read from them
        _ => crate::metadata::exif_block(bytes, format).map(<[u8]>::to_vec),
    };
    let orientation = match format {
        Format::Tiff => decoder.orientation().unwrap_or(Orientation::NoTransforms),
        _ => orientation_of(bytes, format),
    };
    let color = decoder.color_type();
    let image = DynamicImage::from_decoder(decoder).map_err(|e| Error::decode(format, e))?;
    let high_bit_depth = color.bytes_per_pixel() / color.channel_count() > 1;
    let pixels = if color.has_alpha() {
        let rgba = image.into_rgba8();
        Pixels::new(width, height, Layout::Rgba8, rgba.into_raw())
    } else {
        let rgb = image.into_rgb8();
        Pixels::new(width, height, Layout::Rgb8, rgb.into_raw())
    };
    Ok(Decoded {
        pixels,
        format,
        orientation,
        icc,
        exif,
        frames: animation_frames(bytes, format).filter(|&n| n > 1),
        high_bit_depth,
        icc_dropped: false,
    })
}

/// Width and height from the header alone, without decoding.
pub(crate) fn dimensions(bytes: &[u8], format: Format) -> Option<(u32, u32)> {
    let image_format = match format {
        Format::Heif => {
            let info = heic_decoder::probe(bytes).ok()?;
            return Some((info.width as u32, info.height as u32));
        }
        Format::Jxl => return crate::heif::jxl_dimensions(bytes),
        Format::Avif => {
            let heif = crate::container::isobmff::Heif::parse(bytes).ok()?;
            let (w, h) = heif.primary_size()?;
            return Some(if heif.rotation % 2 == 1 { (h, w) } else { (w, h) });
        }
        Format::Jpeg => ImageFormat::Jpeg,
        // From IHDR itself: the PNG decoder would inflate an iCCP chunk whole before answering.
        Format::Png => {
            let ihdr = crate::container::png::chunks(bytes)
                .next()
                .filter(|c| &c.kind == b"IHDR")?;
            let be = |at: usize| Some(u32::from_be_bytes(ihdr.data.get(at..at + 4)?.try_into().ok()?));
            return Some((be(0)?, be(4)?));
        }
        Format::WebP => ImageFormat::WebP,
        Format::Tiff => ImageFormat::Tiff,
        Format::Gif => ImageFormat::Gif,
    };
    ImageReader::with_format(Cursor::new(bytes), image_format)
        .into_dimensions()
        .ok()
}

/// Counts the frames of an animated GIF, APNG or WebP by walking its blocks (cheap, bounded).
pub(crate) fn animation_frames(bytes: &[u8], format: Format) -> Option<u32> {
    match format {
        Format::Gif => Some(crate::container::gif::layout(bytes).frames),
        Format::Png => crate::container::png::chunks(bytes)
            .find(|c| &c.kind == b"acTL")
            .and_then(|c| c.data.get(0..4))
            .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]])),
        Format::WebP => {
            let n = crate::container::riff::chunks(bytes)
                .filter(|c| &c.id == b"ANMF")
                .count();
            (n > 0).then_some(n as u32)
        }
        _ => None,
    }
}

/// Encoder settings.
#[derive(Clone, Copy, Debug)]
pub struct EncodeSettings {
    /// The format to write.
    pub format: OutputFormat,
    /// JPEG and WebP quality, 1..=100.
    pub quality: u8,
}

/// Encodes `pixels` into a new file carrying no metadata but `icc`, when given.
/// JPEG has no alpha: callers flatten first (the pipeline composites over white).
pub fn encode(pixels: &Pixels, settings: EncodeSettings, icc: Option<&[u8]>) -> Result<Vec<u8>> {
    let format = settings.format;
    let fail = |reason: String| Error::encode(format.as_format(), reason);
    match format {
        OutputFormat::Jpeg => {
            if pixels.width.max(pixels.height) > u16::MAX as u32 {
                return Err(fail("JPEG is limited to 65535 pixels per side".into()));
            }
            if pixels.layout == Layout::Rgba8 {
                return Err(fail("flatten alpha before encoding JPEG".into()));
            }
            encode_jpeg(pixels, settings.quality, icc).map_err(fail)
        }
        OutputFormat::Png => {
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            use image::{ExtendedColorType, ImageEncoder};
            let mut out = Vec::with_capacity(pixels.data.len() / 2);
            let mut encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
            if let Some(icc) = icc {
                encoder
                    .set_icc_profile(icc.to_vec())
                    .map_err(|e| Error::encode(Format::Png, e))?;
            }
            let color = match pixels.layout {
                Layout::Rgb8 => ExtendedColorType::Rgb8,
                Layout::Rgba8 => ExtendedColorType::Rgba8,
            };
            encoder
                .write_image(&pixels.data, pixels.width, pixels.height, color)
                .map_err(|e| Error::encode(Format::Png, e))?;
            Ok(out)
        }
        OutputFormat::WebP => {
            if pixels.width > 16383 || pixels.height > 16383 {
                return Err(fail("WebP is limited to 16383 pixels per side".into()));
            }
            #[cfg(feature = "libwebp")]
            let out = encode_webp_lossy(pixels, settings.quality).map_err(fail)?;
            #[cfg(not(feature = "libwebp"))]
            let out = encode_webp_lossless(pixels).map_err(fail)?;
            match icc {
                Some(icc) => crate::container::riff::webp_with_icc(out, icc).map_err(fail),
                None => Ok(out),
            }
        }
    }
}

/// Whether this build writes WebP lossy (through libwebp, the `libwebp` feature) or, without a C
/// compiler's help (the web page's wasm build), lossless only.
pub const WEBP_LOSSY: bool = cfg!(feature = "libwebp");

/// Lossless WebP through image-webp (pure Rust): what a build without the `libwebp` feature
/// writes when WebP is asked for. The quality setting does not apply.
#[cfg(not(feature = "libwebp"))]
fn encode_webp_lossless(pixels: &Pixels) -> std::result::Result<Vec<u8>, String> {
    use image::codecs::webp::WebPEncoder;
    use image::{ExtendedColorType, ImageEncoder};
    let color = match pixels.layout {
        Layout::Rgb8 => ExtendedColorType::Rgb8,
        Layout::Rgba8 => ExtendedColorType::Rgba8,
    };
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .write_image(&pixels.data, pixels.width, pixels.height, color)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Lossy WebP through libwebp, the pixels imported straight into its YUV planes
/// (`use_argb = 0`). The `webp` crate imports them as 32-bit ARGB first, a four-bytes-per-pixel
/// copy of the picture (a gigabyte for 250 MP) that the lossy encoder then converts to YUV.
#[cfg(feature = "libwebp")]
fn encode_webp_lossy(pixels: &Pixels, quality: u8) -> std::result::Result<Vec<u8>, String> {
    use libwebp_sys as sys;
    let mut config = sys::WebPConfig::new().map_err(|_| "libwebp: configuration")?;
    config.quality = quality as f32;
    config.method = 4;
    let mut picture = sys::WebPPicture::new().map_err(|_| "libwebp: picture")?;
    picture.use_argb = 0;
    picture.width = pixels.width as i32;
    picture.height = pixels.height as i32;
    let stride = (pixels.width as usize * pixels.channels()) as i32;
    let mut writer = std::mem::MaybeUninit::<sys::WebPMemoryWriter>::uninit();
    // SAFETY: `pixels.data` holds `height` rows of `stride` bytes, which the import reads; the
    // picture and the writer are initialised by libwebp before use and freed exactly once below,
    // and `writer` outlives the encode that writes through `custom_ptr`.
    unsafe {
        let imported = match pixels.layout {
            Layout::Rgb8 => sys::WebPPictureImportRGB(&mut picture, pixels.data.as_ptr(), stride),
            Layout::Rgba8 => sys::WebPPictureImportRGBA(&mut picture, pixels.data.as_ptr(), stride),
        };
        if imported == 0 {
            sys::WebPPictureFree(&mut picture);
            return Err("libwebp: out of memory".into());
        }
        sys::WebPMemoryWriterInit(writer.as_mut_ptr());
        picture.writer = Some(sys::WebPMemoryWrite);
        picture.custom_ptr = writer.as_mut_ptr().cast();
        let encoded = sys::WebPEncode(&config, &mut picture);
        let error = picture.error_code;
        sys::WebPPictureFree(&mut picture);
        let mut writer = writer.assume_init();
        let out = match encoded {
            0 => Err(format!("libwebp: {error:?}")),
            _ => Ok(std::slice::from_raw_parts(writer.mem, writer.size).to_vec()),
        };
        sys::WebPMemoryWriterClear(&mut writer);
        out
    }
}

/// JPEG rows per strip: 16 MCU rows of 4:2:0 (fewer for widths over 65535 / 16 MCUs, so that a
/// strip's MCU count fits the 16-bit restart interval).
// Hook for tests/codec.rs (the restart interval of the widest JPEG): hidden, not part of the API.
#[doc(hidden)]
pub fn jpeg_strip_rows(width: usize) -> usize {
    let mcu_cols = width.div_ceil(16).max(1);
    16 * (u16::MAX as usize / mcu_cols).clamp(1, 16)
}

/// Encodes RGB `pixels` as a baseline JPEG, 4:2:0, in strips of [`jpeg_strip_rows`] encoded in
/// parallel and joined by restart markers.
///
/// A strip starts at an MCU row, and a restart marker resets what the entropy coder carries
/// from one MCU to the next (the DC predictions and the bit buffer); chroma is averaged within
/// an MCU row. So each strip encodes exactly as it would inside the whole image: the file
/// decodes to the same pixels as a one-piece encode, a few bytes longer (two per strip, plus
/// the DRI segment), and its bytes depend on the image alone, not on the number of threads.
fn encode_jpeg(pixels: &Pixels, quality: u8, icc: Option<&[u8]>) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let rows = jpeg_strip_rows(w);
    if h <= rows {
        return encode_jpeg_piece(&pixels.data, w, h, quality, icc);
    }
    let stride = w * 3;
    let strips = pixels.data[..stride * h]
        .par_chunks(stride * rows)
        .enumerate()
        .map(|(i, strip)| encode_jpeg_piece(strip, w, strip.len() / stride, quality, icc.filter(|_| i == 0)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let interval = (w.div_ceil(16) * rows / 16) as u16;
    join_jpeg_strips(&strips, h as u16, interval)
}

/// One-piece baseline JPEG of `h` RGB rows.
fn encode_jpeg_piece(
    rgb: &[u8],
    w: usize,
    h: usize,
    quality: u8,
    icc: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    use jpeg_encoder::{Encoder, SamplingFactor};
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    if let Some(icc) = icc {
        encoder.add_icc_profile(icc).map_err(|e| e.to_string())?;
    }
    // In the browser the colour conversion is this crate's (wasm SIMD, the same integers as
    // jpeg-encoder's scalar conversion); natively jpeg-encoder's own (AVX2 when there is one).
    #[cfg(target_arch = "wasm32")]
    let encoded = encoder.encode_image(wasm_rows::RgbRows { rgb, w, h });
    #[cfg(not(target_arch = "wasm32"))]
    let encoded = encoder.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb);
    encoded.map_err(|e| e.to_string())?;
    Ok(out)
}

/// RGB rows for jpeg-encoder, converted to YCbCr 16 pixels at a time with wasm's 128-bit SIMD.
/// jpeg-encoder's own conversion takes a pixel at a time in wasm, and was a fifth of the page's
/// time for a 12 MP JPEG. It computes exactly [`jpeg_encoder::rgb_to_ycbcr`]'s integers (the
/// browser test checks the page's bytes against the CLI's).
#[cfg(target_arch = "wasm32")]
mod wasm_rows {
    use jpeg_encoder::{rgb_to_ycbcr, ImageBuffer, JpegColorType};

    pub struct RgbRows<'a> {
        pub rgb: &'a [u8],
        pub w: usize,
        pub h: usize,
    }

    impl ImageBuffer for RgbRows<'_> {
        fn get_jpeg_color_type(&self) -> JpegColorType {
            JpegColorType::Ycbcr
        }

        fn width(&self) -> u16 {
            self.w as u16
        }

        fn height(&self) -> u16 {
            self.h as u16
        }

        fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
            let start = y as usize * self.w * 3;
            let line = &self.rgb[start..start + self.w * 3];
            let [luma, cb, cr, _] = buffers;
            let chunks = line.chunks_exact(48);
            let rest = chunks.remainder();
            for chunk in chunks {
                let (a, b, c) = convert16(chunk);
                luma.extend_from_slice(&a);
                cb.extend_from_slice(&b);
                cr.extend_from_slice(&c);
            }
            for px in rest.chunks_exact(3) {
                let (a, b, c) = rgb_to_ycbcr(px[0], px[1], px[2]);
                luma.push(a);
                cb.push(b);
                cr.push(c);
            }
        }
    }

    /// 16 RGB pixels (48 bytes) to their Y, Cb and Cr values.
    #[cfg(target_feature = "simd128")]
    fn convert16(px: &[u8]) -> ([u8; 16], [u8; 16], [u8; 16]) {
        use core::arch::wasm32::*;
        assert!(px.len() >= 48);
        // SAFETY: the three 16-byte loads read px[0..48], in bounds by the assert; wasm loads
        // need no alignment.
        let (a, b, c) = unsafe {
            let p = px.as_ptr();
            (
                v128_load(p.cast()),
                v128_load(p.add(16).cast()),
                v128_load(p.add(32).cast()),
            )
        };
        // Each channel's 16 bytes gathered from the three loads (an index of 16 or more in a
        // swizzle gives 0): R at 0, 3, .., 45; G at 1, 4, .., 46; B at 2, 5, .., 47.
        const Z: u8 = 0x80;
        let pick = |i: [u8; 16], j: [u8; 16], k: [u8; 16]| {
            let lanes = |x: [u8; 16]| {
                u8x16(
                    x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13],
                    x[14], x[15],
                )
            };
            v128_or(
                v128_or(i8x16_swizzle(a, lanes(i)), i8x16_swizzle(b, lanes(j))),
                i8x16_swizzle(c, lanes(k)),
            )
        };
        let r = pick(
            [0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 1, 4, 7, 10, 13],
        );
        let g = pick(
            [1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14],
        );
        let bl = pick(
            [2, 5, 8, 11, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, 1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z],
            [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15],
        );
        // The four quarters of a channel as i32 lanes.
        let quarters = |v: v128| {
            let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
            [
                u32x4_extend_low_u16x8(lo),
                u32x4_extend_high_u16x8(lo),
                u32x4_extend_low_u16x8(hi),
                u32x4_extend_high_u16x8(hi),
            ]
        };
        let (r, g, bl) = (quarters(r), quarters(g), quarters(bl));
        // jpeg_encoder::rgb_to_ycbcr: coefficients scaled by 2^16, rounded by adding 0x7FFF
        // before the shift; every result lies in 0..=255, so the saturating narrowing below
        // equals its `as u8`.
        let channel = |kr: i32, kg: i32, kb: i32, offset: i32| {
            let q: [v128; 4] = core::array::from_fn(|i| {
                let sum = i32x4_add(
                    i32x4_add(i32x4_mul(r[i], i32x4_splat(kr)), i32x4_mul(g[i], i32x4_splat(kg))),
                    i32x4_add(i32x4_mul(bl[i], i32x4_splat(kb)), i32x4_splat(offset + 0x7FFF)),
                );
                i32x4_shr(sum, 16)
            });
            let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(q[0], q[1]), i16x8_narrow_i32x4(q[2], q[3]));
            let mut out = [0u8; 16];
            // SAFETY: a 16-byte store into a 16-byte array.
            unsafe { v128_store(out.as_mut_ptr().cast(), bytes) };
            out
        };
        (
            channel(19595, 38470, 7471, 0),
            channel(-11059, -21709, 32768, 128 << 16),
            channel(32768, -27439, -5329, 128 << 16),
        )
    }

    /// 16 RGB pixels (48 bytes) to their Y, Cb and Cr values (without wasm SIMD).
    #[cfg(not(target_feature = "simd128"))]
    fn convert16(px: &[u8]) -> ([u8; 16], [u8; 16], [u8; 16]) {
        let mut out = ([0u8; 16], [0u8; 16], [0u8; 16]);
        for (i, p) in px.chunks_exact(3).take(16).enumerate() {
            (out.0[i], out.1[i], out.2[i]) = rgb_to_ycbcr(p[0], p[1], p[2]);
        }
        out
    }
}

/// Where the parts of a one-scan JPEG from jpeg-encoder are: the SOF segment, the SOS marker
/// and the entropy-coded data (up to the final EOI).
struct JpegParts {
    sof: usize,
    sos: usize,
    data: std::ops::Range<usize>,
}

fn jpeg_parts(b: &[u8]) -> std::result::Result<JpegParts, String> {
    let bad = || "the JPEG encoder wrote an unexpected stream".to_string();
    if !b.ends_with(&[0xFF, 0xD9]) {
        return Err(bad());
    }
    let header = crate::container::jpeg::header(b);
    let sof = header
        .segments
        .iter()
        .find(|s| s.marker == 0xC0)
        .ok_or_else(bad)?;
    let sos = header
        .segments
        .last()
        .filter(|s| s.marker == 0xDA)
        .ok_or_else(bad)?;
    let start = sos.end();
    match start <= b.len() - 2 {
        true => Ok(JpegParts {
            sof: sof.offset,
            sos: sos.offset,
            data: start..b.len() - 2,
        }),
        false => Err(bad()),
    }
}

/// One JPEG from the strips' JPEGs: the first one's header with the whole height and a restart
/// interval of one strip, then every strip's entropy-coded data, RST0..RST7 in turn between them.
fn join_jpeg_strips(strips: &[Vec<u8>], height: u16, interval: u16) -> std::result::Result<Vec<u8>, String> {
    let first = jpeg_parts(&strips[0])?;
    let size = strips.iter().map(Vec::len).sum::<usize>() + 6;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&strips[0][..first.sos]);
    // SOF0: FF C0, length, precision, then the height.
    out[first.sof + 5..first.sof + 7].copy_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&strips[0][first.sos..first.data.end]);
    for (k, strip) in strips[1..].iter().enumerate() {
        let parts = jpeg_parts(strip)?;
        out.extend_from_slice(&[0xFF, 0xD0 + (k % 8) as u8]);
        out.extend_from_slice(&strip[parts.data]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}
