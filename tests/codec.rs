//! The JPEG encoder: strips encoded in parallel and joined by restart markers decode to the same
//! pixels as a one-piece encode, with bytes that do not depend on the number of threads.

mod common;

use common::landscape;
use image::ImageFormat;
use photoshield::codec::{self, jpeg_strip_rows, DecodeLimits, EncodeSettings};
use photoshield::format::{Format, OutputFormat};
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

/// `image`'s decoders, the reference for photoshield's own PNG and WebP readers: the picture
/// as RGB8 or RGBA8, the layout photoshield chose.
fn reference(bytes: &[u8], layout: Layout) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap();
    match layout {
        Layout::Rgb8 => img.into_rgb8().into_raw(),
        Layout::Rgba8 => img.into_rgba8().into_raw(),
    }
}

fn ours(bytes: &[u8]) -> Pixels {
    let format = photoshield::format::sniff(bytes).unwrap();
    codec::decode(bytes, format, DecodeLimits { max_pixels: 1 << 30 })
        .unwrap()
        .pixels
}

fn assert_same_as_image(what: &str, bytes: &[u8]) {
    assert_near_image(what, bytes, 0);
}

/// As [`assert_same_as_image`], with colours allowed up to `above` levels over `image`'s.
fn assert_near_image(what: &str, bytes: &[u8], above: u8) {
    let px = ours(bytes);
    let mut want = reference(bytes, px.layout);
    let n = px.layout.channels();
    for (w, o) in want.chunks_mut(n).zip(px.data.chunks(n)) {
        for c in 0..3 {
            if o[c] >= w[c] && o[c] - w[c] <= above {
                w[c] = o[c];
            }
        }
    }
    let has_alpha = image::load_from_memory(bytes).unwrap().color().has_alpha();
    assert_eq!(px.layout == Layout::Rgba8, has_alpha, "{what}: layout");
    assert_eq!(px.data.len(), want.len(), "{what}: size");
    let diff = px.data.iter().zip(&want).position(|(a, b)| a != b);
    if let Some(i) = diff {
        let p = i / px.layout.channels() * px.layout.channels();
        let n = px.layout.channels();
        panic!(
            "{what}: first difference at byte {i}: pixel {:?}, image gives {:?}",
            &px.data[p..p + n],
            &want[p..p + n]
        );
    }
}

/// Every corpus file with `extension` that `image` can read decodes as `image` decodes it.
fn corpus_same_as_image(extension: &str) {
    let Some(corpus) = common::corpus_dir() else {
        return common::skip(&format!(
            "../shared/corpus not found; its .{extension} files were not compared"
        ));
    };
    for entry in std::fs::read_dir(corpus).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if path.extension().is_some_and(|e| e == extension) && image::load_from_memory(&bytes).is_ok() {
            assert_same_as_image(&path.display().to_string(), &bytes);
        }
    }
}

/// A PNG written by hand, Adam7-interlaced when asked (no encoder here writes interlaced
/// PNGs): raw rows of `depth`-bit samples, filter type 0.
fn handmade_png(
    w: u32,
    h: u32,
    color: u8,
    depth: u8,
    interlaced: bool,
    extra: &[(&[u8; 4], Vec<u8>)],
) -> Vec<u8> {
    let samples = match color {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        _ => 4,
    };
    let bits = samples * depth as usize;
    let value = |x: u32, y: u32, s: usize| -> u32 {
        let n = common::noise(x, y, s as u32) as u32 ^ (x * 7 + y * 3);
        match (color, depth) {
            (3, _) => n % 5, // a 5-entry palette
            (_, 16) => n * 257 + (x % 256),
            _ => n & ((1 << depth) - 1),
        }
    };
    let row = |y: u32, xs: &[u32]| -> Vec<u8> {
        let mut out = vec![0u8];
        let mut acc = 0u64;
        let mut n = 0;
        for &x in xs {
            for s in 0..samples {
                acc = (acc << depth) | value(x, y, s) as u64;
                n += depth as usize;
                while n >= 8 {
                    out.push((acc >> (n - 8)) as u8);
                    n -= 8;
                }
            }
        }
        if n > 0 {
            out.push((acc << (8 - n)) as u8);
        }
        let _ = bits;
        out
    };
    let mut raw = Vec::new();
    let passes: &[(u32, u32, u32, u32)] = if interlaced {
        &[
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        &[(0, 0, 1, 1)]
    };
    for &(x0, y0, dx, dy) in passes {
        let xs: Vec<u32> = (x0..w).step_by(dx as usize).collect();
        if xs.is_empty() {
            continue;
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.extend(row(y, &xs));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &raw).unwrap();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, color, 0, 0, interlaced as u8]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(kind);
        out.extend(data);
        out.extend(common::crc32(&[&kind[..], data].concat()).to_be_bytes());
    };
    chunk(b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(kind, data);
    }
    chunk(b"IDAT", &z.finish().unwrap());
    chunk(b"IEND", &[]);
    out
}

/// PNG is read row by row by photoshield (straight to 8 bits): every colour type and depth,
/// interlaced or not, odd sizes, palettes with transparency, the corpus's PNGs.
#[test]
fn png_decodes_as_image_decodes_it() {
    let palette = (
        b"PLTE",
        vec![10u8, 20, 30, 200, 100, 0, 0, 255, 0, 255, 255, 255, 1, 2, 3],
    );
    let trns = (b"tRNS", vec![0u8, 128, 255]);
    for interlaced in [false, true] {
        for (w, h) in [(1, 1), (3, 2), (13, 9), (33, 17)] {
            for (color, depths) in [
                (0u8, &[1u8, 2, 4, 8, 16][..]),
                (2, &[8, 16]),
                (3, &[1, 2, 4, 8]),
                (4, &[8, 16]),
                (6, &[8, 16]),
            ] {
                for &depth in depths {
                    let extra: Vec<_> = match color {
                        3 => vec![palette.clone(), trns.clone()],
                        _ => vec![],
                    };
                    let png = handmade_png(w, h, color, depth, interlaced, &extra);
                    assert_same_as_image(
                        &format!("{w}x{h} colour {color} depth {depth} interlaced {interlaced}"),
                        &png,
                    );
                }
            }
        }
    }
    corpus_same_as_image("png");
}

/// WebP is read by photoshield through image-webp straight into its buffer, and an animation's
/// first frame is placed on its canvas by photoshield: the same pixels as `image` gives, for
/// lossless with and without alpha, lossy, and the corpus's WebPs (one animated).
#[test]
fn webp_decodes_as_image_decodes_it() {
    let (w, h) = (45, 31);
    let rgb = landscape(w, h, 4);
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 37 % 256) as u8])
        .collect();
    let lossless = |data: &[u8], color| {
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .encode(data, w, h, color)
            .unwrap();
        out
    };
    assert_same_as_image("lossless RGB", &lossless(&rgb, image::ExtendedColorType::Rgb8));
    assert_same_as_image("lossless RGBA", &lossless(&rgba, image::ExtendedColorType::Rgba8));
    // An animation whose first frame (semi-transparent, blended, then not) sits inside a larger
    // canvas, with and without the canvas's alpha flag.
    let frame = lossless(&rgba, image::ExtendedColorType::Rgba8);
    let vp8l = photoshield::container::riff::chunks(&frame)
        .find(|c| &c.id == b"VP8L")
        .unwrap()
        .data
        .to_vec();
    for (canvas_alpha, blend) in [(true, true), (true, false), (false, true), (false, false)] {
        let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
        let chunk = |id: &[u8; 4], data: &[u8]| {
            let mut c = id.to_vec();
            c.extend((data.len() as u32).to_le_bytes());
            c.extend(data);
            if data.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let vp8x = [
            vec![0x02 | if canvas_alpha { 0x10 } else { 0 }, 0, 0, 0],
            u24(70 - 1),
            u24(50 - 1),
        ]
        .concat();
        let anmf = [
            u24(3),
            u24(2),
            u24(w - 1),
            u24(h - 1),
            u24(100),
            vec![if blend { 0 } else { 2 }],
            chunk(b"VP8L", &vp8l),
        ]
        .concat();
        let body = [
            b"WEBP".to_vec(),
            chunk(b"VP8X", &vp8x),
            chunk(b"ANIM", &[0; 6]),
            chunk(b"ANMF", &anmf),
        ]
        .concat();
        let file = [b"RIFF".to_vec(), (body.len() as u32).to_le_bytes().to_vec(), body].concat();
        // image-webp blends the first frame over the empty canvas, rounding each blended colour
        // one level down; libwebp (and photoshield) draw a key frame as it is.
        let above = if blend { 1 } else { 0 };
        assert_near_image(
            &format!("animation, canvas alpha {canvas_alpha}, blend {blend}"),
            &file,
            above,
        );
    }
    for (layout, data) in [(Layout::Rgb8, &rgb), (Layout::Rgba8, &rgba)] {
        let lossy = codec::encode(
            &Pixels::new(w, h, layout, data.clone()),
            EncodeSettings {
                format: OutputFormat::WebP,
                quality: 80,
            },
            None,
        )
        .unwrap();
        assert_same_as_image(&format!("lossy {layout:?}"), &lossy);
    }
    corpus_same_as_image("webp");
}
