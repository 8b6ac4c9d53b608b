//! Decoding the newer photo formats into [`Pixels`]: HEIC/HEIF (HEVC in a HEIF container, what
//! iPhones save) with the pure-Rust `heic-decoder`, AVIF (AV1 in a HEIF container) with rav1d
//! (through the private `av1` module) and the grid, alpha and colour handling below (the
//! `avif` feature), and JPEG XL with the pure-Rust `jxl-oxide`.
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

/// Decodes the primary image of an AVIF file, upright: one AV1 image or a grid of them, with
/// its alpha plane when it has one.
#[cfg(feature = "avif")]
pub fn decode_avif(bytes: &[u8], limits: DecodeLimits) -> Result<Decoded> {
    let format = Format::Avif;
    let heif = Heif::parse(bytes).map_err(|e| fail(format, e))?;
    let (w, h) = heif.check_size(limits.max_pixels).map_err(|e| fail(format, e))?;
    check_limits(format, w as u64, h as u64, limits)?;
    let primary = heif
        .item(heif.primary)
        .expect("Heif::parse checks the primary item");
    let alpha = heif.items.iter().find(|i| {
        i.aux_type
            .as_deref()
            .is_some_and(|t| t.contains(":alpha") || t.ends_with(":auxid:1"))
            && heif.references_from(b"auxl", i.id).any(|to| to == heif.primary)
    });
    let layout = if alpha.is_some() {
        Layout::Rgba8
    } else {
        Layout::Rgb8
    };
    let channels = layout.channels();
    let colour = primary.nclx;
    let premultiplied = alpha.is_some_and(|alpha| {
        heif.references_from(b"prem", heif.primary)
            .any(|to| to == alpha.id)
    });
    // rav1d can abort the process on a corrupt stream (a panic inside its C-style API cannot
    // unwind): the decode runs isolated, so such a file fails alone (see av1::isolated).
    let canvas_len = w as usize * h as usize * channels;
    let (data, high_bit_depth) = crate::av1::isolated(canvas_len, |data| {
        let mut decoder = crate::av1::Decoder::new(limits.max_pixels)?;
        let mut canvas = Canvas {
            data,
            width: w,
            height: h,
            channels,
        };
        let colour_bits = paint(
            &heif,
            bytes,
            primary,
            &mut decoder,
            &mut canvas,
            &mut |picture, canvas, x0, y0| colour_to_rgb(picture, colour, canvas, x0, y0),
        )?;
        let mut high_bit_depth = colour_bits > 8;
        if let Some(alpha) = alpha {
            // The alpha plane is an image of its own, of the same size (or a grid of the same
            // shape).
            let bits = paint(
                &heif,
                bytes,
                alpha,
                &mut decoder,
                &mut canvas,
                &mut alpha_to_canvas,
            )
            .map_err(|e| format!("alpha plane: {e}"))?;
            high_bit_depth |= bits > 8;
            if premultiplied {
                unpremultiply(canvas.data);
            }
        }
        Ok(high_bit_depth)
    })
    .map_err(|e| fail(format, e))?;
    let pixels = Pixels::new(w, h, layout, data);
    let pixels = crate::orient::apply(pixels, heif_orientation(heif.rotation, heif.mirror));
    let icc = match (&primary.icc, primary.nclx) {
        (Some(range), _) => bytes.get(range.clone()).map(<[u8]>::to_vec),
        (None, Some(nclx)) => nclx_profile(nclx),
        (None, None) => None,
    };
    Ok(Decoded {
        pixels,
        format,
        // irot/imir are in the pixels already; an EXIF Orientation repeats them.
        orientation: Orientation::NoTransforms,
        icc,
        exif: heif.exif(bytes),
        frames: None,
        high_bit_depth,
        icc_dropped: false,
    })
}

/// The output picture that decoded AV1 images (whole, or a grid's tiles) are painted into.
#[cfg(feature = "avif")]
struct Canvas<'a> {
    data: &'a mut [u8],
    width: u32,
    height: u32,
    channels: usize,
}

#[cfg(feature = "avif")]
impl Canvas<'_> {
    /// The part of `picture`, placed at (x0, y0), that falls on the canvas: a grid's last
    /// column and row of tiles may overhang it.
    fn clip(&self, picture: &crate::av1::Picture, x0: u32, y0: u32) -> (u32, u32) {
        (
            picture.width().min(self.width.saturating_sub(x0)),
            picture.height().min(self.height.saturating_sub(y0)),
        )
    }
}

/// Decodes `item` (an `av01` image or a `grid` of them) and hands each picture to `put` with the
/// position of its top-left corner on the canvas. Returns the pictures' bit depth.
#[cfg(feature = "avif")]
fn paint(
    heif: &Heif,
    bytes: &[u8],
    item: &isobmff::Item,
    decoder: &mut crate::av1::Decoder,
    canvas: &mut Canvas,
    put: &mut dyn FnMut(&crate::av1::Picture, &mut Canvas, u32, u32),
) -> std::result::Result<u32, String> {
    let data = |item: &isobmff::Item| {
        heif.item_data(bytes, item)
            .ok_or_else(|| format!("item {} has no data in the file", item.id))
    };
    let decode = |decoder: &mut crate::av1::Decoder, item: &isobmff::Item| {
        let picture = decoder.decode(&data(item)?)?;
        match item.size {
            Some(size) if size != (picture.width(), picture.height()) => Err(format!(
                "item {} declares {}x{} pixels but holds {}x{}",
                item.id,
                size.0,
                size.1,
                picture.width(),
                picture.height()
            )),
            _ => Ok(picture),
        }
    };
    match &item.kind {
        b"av01" => {
            let picture = decode(decoder, item)?;
            if (picture.width(), picture.height()) != (canvas.width, canvas.height) {
                return Err(format!(
                    "the image is {}x{} but the file declares {}x{}",
                    picture.width(),
                    picture.height(),
                    canvas.width,
                    canvas.height
                ));
            }
            put(&picture, canvas, 0, 0);
            Ok(picture.bit_depth())
        }
        b"grid" => {
            let grid = Grid::parse(&data(item)?)?;
            if (grid.width, grid.height) != (canvas.width, canvas.height) {
                return Err(format!(
                    "the grid is {}x{} but the file declares {}x{}",
                    grid.width, grid.height, canvas.width, canvas.height
                ));
            }
            let tiles: Vec<u32> = heif.references_from(b"dimg", item.id).collect();
            if tiles.len() != grid.rows as usize * grid.columns as usize {
                return Err(format!(
                    "the grid has {} tiles for {} rows and {} columns",
                    tiles.len(),
                    grid.rows,
                    grid.columns
                ));
            }
            let mut tile_size = None;
            let mut bits = 8;
            for (index, id) in tiles.into_iter().enumerate() {
                let tile = heif
                    .item(id)
                    .ok_or_else(|| format!("the grid's tile {id} is not in the file"))?;
                if &tile.kind != b"av01" {
                    return Err(format!("the grid's tile {id} is not an AV1 image"));
                }
                let picture = decode(decoder, tile)?;
                let size = (picture.width(), picture.height());
                // Every tile has the first one's size, and together they cover the canvas.
                let (tw, th) = *tile_size.get_or_insert(size);
                let covered = (tw as u64 * grid.columns as u64, th as u64 * grid.rows as u64);
                if size != (tw, th) || covered.0 < canvas.width as u64 || covered.1 < canvas.height as u64 {
                    return Err("the grid's tiles do not cover the image evenly".into());
                }
                let (row, column) = (index as u32 / grid.columns, index as u32 % grid.columns);
                put(&picture, canvas, column * tw, row * th);
                bits = picture.bit_depth();
            }
            Ok(bits)
        }
        other => Err(format!(
            "the image is a '{}' item, not AV1",
            String::from_utf8_lossy(other)
        )),
    }
}

/// A HEIF `grid` item: how many tiles across and down, and the size of the picture they make.
#[cfg(feature = "avif")]
struct Grid {
    rows: u32,
    columns: u32,
    width: u32,
    height: u32,
}

#[cfg(feature = "avif")]
impl Grid {
    fn parse(data: &[u8]) -> std::result::Result<Grid, String> {
        let bad = || "the grid's description is truncated or corrupt".to_string();
        let (&version, &flags) = (data.first().ok_or_else(bad)?, data.get(1).ok_or_else(bad)?);
        if version != 0 {
            return Err(format!("grid version {version} is not known"));
        }
        let field = |at: usize| -> std::result::Result<u32, String> {
            if flags & 1 == 1 {
                let b = data.get(4 + at * 4..8 + at * 4).ok_or_else(bad)?;
                Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
            } else {
                let b = data.get(4 + at * 2..6 + at * 2).ok_or_else(bad)?;
                Ok(u16::from_be_bytes(b.try_into().expect("2 bytes")) as u32)
            }
        };
        Ok(Grid {
            rows: *data.get(2).ok_or_else(bad)? as u32 + 1,
            columns: *data.get(3).ok_or_else(bad)? as u32 + 1,
            width: field(0)?,
            height: field(1)?,
        })
    }
}

/// The YCbCr-to-RGB weights of an H.273 matrix: (Kr, Kb), or None for identity (GBR).
#[cfg(feature = "avif")]
fn luma_weights(matrix: u32) -> Option<(f32, f32)> {
    match matrix {
        0 => None,
        1 => Some((0.2126, 0.0722)),
        4 => Some((0.30, 0.11)),
        7 => Some((0.212, 0.087)),
        9 | 10 => Some((0.2627, 0.0593)),
        // BT.601 (5, 6), and what libavif and libheif assume when it is unspecified (2).
        _ => Some((0.299, 0.114)),
    }
}

/// Writes an AV1 picture's colour into the canvas at (x0, y0), converted to 8-bit RGB with the
/// container's `nclx` signalling (the sequence header's when the container has none). Chroma is
/// upsampled by repeating each sample, as libheif does.
#[cfg(feature = "avif")]
fn colour_to_rgb(
    picture: &crate::av1::Picture,
    nclx: Option<isobmff::Nclx>,
    canvas: &mut Canvas,
    x0: u32,
    y0: u32,
) {
    use crate::av1::Chroma;
    let (header_matrix, header_full) = picture.matrix_and_range();
    let (matrix, full_range) = nclx.map_or((header_matrix, header_full), |n| (n.matrix as u32, n.full_range));
    let max = ((1u32 << picture.bit_depth()) - 1) as f32;
    let scale = (1u32 << (picture.bit_depth() - 8)) as f32;
    // Normalised luma and chroma: y in 0..1, c in -0.5..0.5.
    let (y_offset, y_scale, c_scale) = if full_range {
        (0.0, 1.0 / max, 1.0 / max)
    } else {
        (16.0 * scale, 1.0 / (219.0 * scale), 1.0 / (224.0 * scale))
    };
    let c_offset = (1u32 << (picture.bit_depth() - 1)) as f32;
    let chroma = picture.chroma();
    let (sx, sy) = match chroma {
        Chroma::Half => (1, 1),
        Chroma::HalfWidth => (1, 0),
        Chroma::Full | Chroma::None => (0, 0),
    };
    let weights = luma_weights(matrix);
    let (width, height) = canvas.clip(picture, x0, y0);
    let (mut luma, mut cb, mut cr) = (Vec::new(), Vec::new(), Vec::new());
    let channels = canvas.channels;
    let row_bytes = canvas.width as usize * channels;
    for y in 0..height {
        picture.row(0, y, &mut luma);
        if chroma != Chroma::None {
            picture.row(1, y >> sy, &mut cb);
            picture.row(2, y >> sy, &mut cr);
        }
        let start = (y0 + y) as usize * row_bytes + x0 as usize * channels;
        let out = &mut canvas.data[start..start + width as usize * channels];
        for (x, px) in out.chunks_exact_mut(channels).enumerate() {
            let yv = (luma[x] as f32 - y_offset) * y_scale;
            let (u, v) = if chroma == Chroma::None {
                (0.0, 0.0)
            } else {
                let cx = x >> sx;
                (
                    (cb[cx] as f32 - c_offset) * c_scale,
                    (cr[cx] as f32 - c_offset) * c_scale,
                )
            };
            let (r, g, b) = match weights {
                // Identity: the planes are G, B and R.
                None if chroma != Chroma::None => (
                    (cr[x >> sx] as f32 - y_offset) * y_scale,
                    yv,
                    (cb[x >> sx] as f32 - y_offset) * y_scale,
                ),
                None => (yv, yv, yv),
                Some((kr, kb)) => {
                    let kg = 1.0 - kr - kb;
                    let r = yv + (2.0 - 2.0 * kr) * v;
                    let b = yv + (2.0 - 2.0 * kb) * u;
                    let g = yv - (kr * (2.0 - 2.0 * kr) * v + kb * (2.0 - 2.0 * kb) * u) / kg;
                    (r, g, b)
                }
            };
            px[0] = to_u8(r);
            px[1] = to_u8(g);
            px[2] = to_u8(b);
            if channels == 4 {
                px[3] = 255;
            }
        }
    }
}

/// Writes an AV1 alpha picture's luma into the canvas's fourth channel at (x0, y0).
#[cfg(feature = "avif")]
fn alpha_to_canvas(picture: &crate::av1::Picture, canvas: &mut Canvas, x0: u32, y0: u32) {
    let (_, full_range) = picture.matrix_and_range();
    let max = ((1u32 << picture.bit_depth()) - 1) as f32;
    let scale = (1u32 << (picture.bit_depth() - 8)) as f32;
    let (offset, range) = if full_range {
        (0.0, max)
    } else {
        (16.0 * scale, 219.0 * scale)
    };
    let (width, height) = canvas.clip(picture, x0, y0);
    let mut row = Vec::new();
    let row_bytes = canvas.width as usize * canvas.channels;
    for y in 0..height {
        picture.row(0, y, &mut row);
        let start = (y0 + y) as usize * row_bytes + x0 as usize * canvas.channels;
        let out = &mut canvas.data[start..start + width as usize * canvas.channels];
        for (px, &a) in out.chunks_exact_mut(canvas.channels).zip(&row) {
            px[3] = to_u8((a as f32 - offset) / range);
        }
    }
}

#[cfg(feature = "avif")]
fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Divides premultiplied colour by its alpha (a `prem` reference).
#[cfg(feature = "avif")]
fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = px[3] as u32;
        if a > 0 && a < 255 {
            for c in &mut px[..3] {
                *c = ((*c as u32 * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}

/// The display transform of a HEIF image as an EXIF orientation: `irot` (quarter turns
/// anticlockwise) first, then `imir` (0: top and bottom swap; 1: left and right swap, as libheif
/// and libavif read it).
#[cfg(feature = "avif")]
fn heif_orientation(rotation: u8, mirror: Option<u8>) -> Orientation {
    use Orientation::*;
    let turned = match rotation & 3 {
        0 => NoTransforms,
        1 => Rotate270,
        2 => Rotate180,
        _ => Rotate90,
    };
    match (turned, mirror) {
        (turned, None) => turned,
        // Left and right swap after the turn.
        (NoTransforms, Some(1)) => FlipHorizontal,
        (Rotate90, Some(1)) => Rotate90FlipH,
        (Rotate180, Some(1)) => FlipVertical,
        (_, Some(1)) => Rotate270FlipH,
        // Top and bottom swap: the same as left and right after half a turn more.
        (NoTransforms, Some(_)) => FlipVertical,
        (Rotate90, Some(_)) => Rotate270FlipH,
        (Rotate180, Some(_)) => FlipHorizontal,
        (_, Some(_)) => Rotate90FlipH,
    }
}

/// An ICC profile for `nclx` signalling other than sRGB (Display P3, BT.2020, PQ, HLG), so that
/// the colours still look right once the signalling is gone; None for sRGB and what cannot be
/// described.
#[cfg(feature = "avif")]
fn nclx_profile(nclx: isobmff::Nclx) -> Option<Vec<u8>> {
    use jxl_oxide::color::{
        ColourSpace, EnumColourEncoding, Primaries, RenderingIntent, TransferFunction, WhitePoint,
    };
    let (primaries, white_point) = match nclx.primaries {
        1 | 2 => (Primaries::Srgb, WhitePoint::D65),
        9 => (Primaries::Bt2100, WhitePoint::D65),
        11 => (Primaries::P3, WhitePoint::Dci),
        12 => (Primaries::P3, WhitePoint::D65),
        _ => return None,
    };
    let tf = match nclx.transfer {
        13 | 2 => TransferFunction::Srgb,
        1 | 6 | 14 | 15 => TransferFunction::Bt709,
        8 => TransferFunction::Linear,
        16 => TransferFunction::Pq,
        18 => TransferFunction::Hlg,
        4 => TransferFunction::Gamma {
            g: 22_000_000,
            inverted: true,
        },
        _ => return None,
    };
    if primaries == Primaries::Srgb && matches!(tf, TransferFunction::Srgb) {
        return None;
    }
    let encoding = EnumColourEncoding {
        colour_space: ColourSpace::Rgb,
        white_point,
        primaries,
        tf,
        rendering_intent: RenderingIntent::Relative,
    };
    Some(
        jxl_oxide::ColorEncodingWithProfile::new(encoding)
            .icc_profile()
            .to_vec(),
    )
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
