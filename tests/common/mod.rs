//! Fixtures built in code: photo-like images, EXIF blocks with GPS and serials, JPEGs and PNGs
//! carrying them. Shared by the integration tests and by `examples/make_fixtures.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Deterministic hash noise in 0..=255.
pub fn noise(x: u32, y: u32, seed: u32) -> u8 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ seed.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xFF) as u8
}

/// A photo-like RGB image: sky gradient, a sun, textured hills.
pub fn landscape(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let fx = x as f32 / w as f32;
            let fy = y as f32 / h as f32;
            let hill = 0.6 + 0.08 * (fx * 9.0 + seed as f32).sin() + 0.05 * (fx * 23.0).cos();
            let n = noise(x, y, seed) as f32 / 255.0 - 0.5;
            let (sx, sy) = (fx - 0.7, fy - 0.25);
            let px = if sx * sx + sy * sy < 0.006 {
                [250.0, 230.0, 120.0]
            } else if fy < hill {
                [90.0 + 100.0 * fy, 140.0 + 80.0 * fy, 235.0 - 30.0 * fy]
            } else {
                [50.0 + 40.0 * n + 30.0 * fx, 110.0 + 60.0 * n, 40.0 + 30.0 * n]
            };
            out.extend(px.map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    out
}

/// Four flat quadrants (red, green / blue, white) so that orientation is easy to check.
pub fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            out.extend(quadrant_colour(x < w / 2, y < h / 2));
        }
    }
    out
}

pub fn quadrant_colour(left: bool, top: bool) -> [u8; 3] {
    match (left, top) {
        (true, true) => [220, 30, 30],
        (false, true) => [30, 200, 30],
        (true, false) => [30, 30, 220],
        (false, false) => [240, 240, 240],
    }
}

/// Stores an upright RGB image so that it displays upright under EXIF `orientation`: the
/// inverse of the display transform is applied to the pixels.
pub fn store_for_orientation(rgb: &[u8], w: u32, h: u32, orientation: u8) -> (Vec<u8>, u32, u32) {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).unwrap();
    use image::imageops::*;
    let stored = match orientation {
        1 => img,
        2 => flip_horizontal(&img),
        3 => rotate180(&img),
        4 => flip_vertical(&img),
        5 => rotate270(&flip_horizontal(&img)), // transpose: its own inverse
        6 => rotate270(&img),
        7 => rotate90(&flip_horizontal(&img)), // transverse: its own inverse
        8 => rotate90(&img),
        _ => panic!("orientation {orientation}"),
    };
    let (sw, sh) = stored.dimensions();
    (stored.into_raw(), sw, sh)
}

/// One TIFF/EXIF directory entry: tag, type, count, value bytes (big-endian).
pub struct Entry(pub u16, pub u16, pub u32, pub Vec<u8>);

pub fn ascii(tag: u16, s: &str) -> Entry {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    Entry(tag, 2, v.len() as u32, v)
}

pub fn short(tag: u16, v: u16) -> Entry {
    Entry(tag, 3, 1, v.to_be_bytes().to_vec())
}

pub fn rationals(tag: u16, values: &[(u32, u32)]) -> Entry {
    let v = values
        .iter()
        .flat_map(|(n, d)| [n.to_be_bytes(), d.to_be_bytes()].concat())
        .collect();
    Entry(tag, 5, values.len() as u32, v)
}

/// What goes into a test EXIF block.
#[derive(Default)]
pub struct ExifSpec<'a> {
    pub orientation: Option<u16>,
    pub make_model: Option<(&'a str, &'a str)>,
    pub artist: Option<&'a str>,
    pub serial: Option<&'a str>,
    /// Latitude, longitude in degrees.
    pub gps: Option<(f64, f64)>,
    pub thumbnail: Option<Vec<u8>>,
}

fn dms(deg: f64) -> Vec<(u32, u32)> {
    let d = deg.abs();
    let whole = d.floor();
    let minutes = (d - whole) * 60.0;
    let m = minutes.floor();
    let s = (minutes - m) * 60.0;
    vec![
        (whole as u32, 1),
        (m as u32, 1),
        ((s * 10000.0).round() as u32, 10000),
    ]
}

/// Builds a big-endian TIFF structure (the payload of an EXIF APP1 after "Exif\0\0").
pub fn exif_tiff(spec: &ExifSpec) -> Vec<u8> {
    let mut ifd0 = Vec::new();
    if let Some((make, model)) = spec.make_model {
        ifd0.push(ascii(0x010F, make));
        ifd0.push(ascii(0x0110, model));
    }
    if let Some(o) = spec.orientation {
        ifd0.push(short(0x0112, o));
    }
    ifd0.push(ascii(0x0131, "TestCam Firmware 1.0"));
    if let Some(a) = spec.artist {
        ifd0.push(ascii(0x013B, a));
    }
    let mut exif = vec![ascii(0x9003, "2024:06:01 12:34:56")];
    if let Some(s) = spec.serial {
        exif.push(ascii(0xA431, s));
    }
    let mut gps = Vec::new();
    if let Some((lat, lon)) = spec.gps {
        gps.push(Entry(0x0000, 1, 4, vec![2, 3, 0, 0]));
        gps.push(ascii(0x0001, if lat >= 0.0 { "N" } else { "S" }));
        gps.push(rationals(0x0002, &dms(lat)));
        gps.push(ascii(0x0003, if lon >= 0.0 { "E" } else { "W" }));
        gps.push(rationals(0x0004, &dms(lon)));
    }
    // Layout: header, IFD0, Exif IFD, GPS IFD, IFD1, thumbnail. Pointers are filled in as we go.
    let ifd_size = |entries: &[Entry]| -> usize {
        2 + 12 * entries.len()
            + 4
            + entries
                .iter()
                .map(|e| if e.3.len() > 4 { (e.3.len() + 1) & !1 } else { 0 })
                .sum::<usize>()
    };
    let n0 = ifd0.len() + 2;
    let ifd0_size = 2
        + 12 * n0
        + 4
        + ifd0
            .iter()
            .map(|e| if e.3.len() > 4 { (e.3.len() + 1) & !1 } else { 0 })
            .sum::<usize>();
    let exif_off = 8 + ifd0_size;
    let gps_off = exif_off + ifd_size(&exif);
    let ifd1_off = gps_off + ifd_size(&gps);
    ifd0.push(Entry(0x8769, 4, 1, (exif_off as u32).to_be_bytes().to_vec()));
    ifd0.push(Entry(0x8825, 4, 1, (gps_off as u32).to_be_bytes().to_vec()));
    ifd0.sort_by_key(|e| e.0);
    let mut out = b"MM\0\x2A\0\0\0\x08".to_vec();
    let next0 = if spec.thumbnail.is_some() { ifd1_off } else { 0 };
    write_ifd(&mut out, &ifd0, next0);
    write_ifd(&mut out, &exif, 0);
    write_ifd(&mut out, &gps, 0);
    if let Some(thumb) = &spec.thumbnail {
        let ifd1 = [
            short(0x0103, 6),
            Entry(0x0201, 4, 1, 0u32.to_be_bytes().to_vec()),
            Entry(0x0202, 4, 1, (thumb.len() as u32).to_be_bytes().to_vec()),
        ];
        let thumb_off = ifd1_off + ifd_size(&ifd1);
        let ifd1 = [
            short(0x0103, 6),
            Entry(0x0201, 4, 1, (thumb_off as u32).to_be_bytes().to_vec()),
            Entry(0x0202, 4, 1, (thumb.len() as u32).to_be_bytes().to_vec()),
        ];
        write_ifd(&mut out, &ifd1, 0);
        out.extend_from_slice(thumb);
    }
    out
}

fn write_ifd(out: &mut Vec<u8>, entries: &[Entry], next: usize) {
    let start = out.len();
    let mut data_off = start + 2 + 12 * entries.len() + 4;
    let mut data = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for Entry(tag, typ, count, value) in entries {
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&typ.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&(data_off as u32).to_be_bytes());
            data.extend_from_slice(value);
            if value.len() % 2 == 1 {
                data.push(0);
            }
            data_off = start + 2 + 12 * entries.len() + 4 + data.len();
        }
    }
    out.extend_from_slice(&(next as u32).to_be_bytes());
    out.extend_from_slice(&data);
}

/// A minimal ICC profile header (enough for readers to recognise and copy it).
pub fn tiny_icc() -> Vec<u8> {
    let mut icc = vec![0u8; 132];
    icc[0..4].copy_from_slice(&132u32.to_be_bytes());
    icc[4..8].copy_from_slice(b"none");
    icc[8] = 2;
    icc[9] = 0x10;
    icc[12..16].copy_from_slice(b"mntr");
    icc[16..20].copy_from_slice(b"RGB ");
    icc[20..24].copy_from_slice(b"XYZ ");
    icc[36..40].copy_from_slice(b"acsp");
    icc
}

/// Encodes RGB as a baseline JPEG (quality 92, 4:4:4 so flat colours stay exact-ish).
pub fn jpeg(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    jpeg_with(rgb, w, h, 92, jpeg_encoder::SamplingFactor::R_4_4_4)
}

/// Encodes RGB as a one-piece baseline JPEG with jpeg-encoder.
pub fn jpeg_with(rgb: &[u8], w: u32, h: u32, quality: u8, sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.set_sampling_factor(sampling);
    enc.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// Inserts marker segments right after SOI.
pub fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, data) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

pub fn exif_segment(spec: &ExifSpec) -> (u8, Vec<u8>) {
    let mut d = b"Exif\0\0".to_vec();
    d.extend(exif_tiff(spec));
    (0xE1, d)
}

pub fn icc_segment(icc: &[u8]) -> (u8, Vec<u8>) {
    let mut d = b"ICC_PROFILE\0\x01\x01".to_vec();
    d.extend_from_slice(icc);
    (0xE2, d)
}

pub fn xmp_segment(xml: &str) -> (u8, Vec<u8>) {
    let mut d = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    d.extend_from_slice(xml.as_bytes());
    (0xE1, d)
}

pub const XMP_WITH_HISTORY: &str = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"><dc:creator><rdf:Seq><rdf:li>Jane Private</rdf:li></rdf:Seq></dc:creator><xmpMM:History>edited with secret tool</xmpMM:History></rdf:Description></rdf:RDF></x:xmpmeta>"#;

/// A camera-like JPEG: photo content with EXIF (GPS, serial, owner, thumbnail), XMP, a comment,
/// an ICC profile, and the given orientation.
pub fn camera_jpeg(w: u32, h: u32, orientation: u8, seed: u32) -> Vec<u8> {
    let upright = landscape(w, h, seed);
    let (stored, sw, sh) = store_for_orientation(&upright, w, h, orientation);
    let thumb_rgb = landscape(32, 24, seed + 1);
    let spec = ExifSpec {
        orientation: Some(orientation as u16),
        make_model: Some(("TestCam", "Model X")),
        artist: Some("Jane Private"),
        serial: Some("SN-0042-7777"),
        gps: Some((48.858_37, 2.294_48)),
        thumbnail: Some(jpeg(&thumb_rgb, 32, 24)),
    };
    let mut com = b"shot at home".to_vec();
    com.truncate(64);
    with_segments(
        &jpeg(&stored, sw, sh),
        &[
            exif_segment(&spec),
            xmp_segment(XMP_WITH_HISTORY),
            icc_segment(&tiny_icc()),
            (0xFE, com),
        ],
    )
}

/// A PNG with text chunks and a time chunk.
pub fn png_with_text(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let rgb = landscape(w, h, seed);
    let mut plain = Vec::new();
    image::codecs::png::PngEncoder::new(&mut plain).write_image_rgb(&rgb, w, h);
    // Insert tEXt and tIME after IHDR (8 + 25 bytes).
    let mut out = plain[..33].to_vec();
    for (kind, data) in [
        (b"tEXt", b"Author\0Jane Private".to_vec()),
        (b"tIME", vec![7, 232, 6, 1, 12, 0, 0]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_data = kind.to_vec();
        crc_data.extend_from_slice(&data);
        out.extend_from_slice(&crc_data);
        out.extend_from_slice(&crc32(&crc_data).to_be_bytes());
    }
    out.extend_from_slice(&plain[33..]);
    out
}

trait WriteRgb {
    fn write_image_rgb(self, rgb: &[u8], w: u32, h: u32);
}

impl<W: std::io::Write> WriteRgb for image::codecs::png::PngEncoder<W> {
    fn write_image_rgb(self, rgb: &[u8], w: u32, h: u32) {
        use image::ImageEncoder;
        self.write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG header claiming `w` x `h` pixels, followed by a tiny IDAT and IEND.
pub fn png_bomb_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    for (kind, data) in [
        (&b"IHDR"[..], ihdr),
        (b"IDAT", vec![0x78, 0x9C, 0x03, 0, 0, 0, 0, 1]),
        (b"IEND", vec![]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(&data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    out
}

/// The shared corpus, when this checkout sits beside it.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.is_dir().then_some(dir)
}

/// True when exiftool is on PATH.
pub fn have_exiftool() -> bool {
    std::process::Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The sample photos shipped in tests/fixtures/photos: (relative path, bytes).
pub fn sample_photos() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("beach_gps_serial.jpg", camera_jpeg(640, 427, 1, 1)),
        ("portrait_orient6.jpg", camera_jpeg(480, 640, 6, 2)),
        ("day2/hills_orient3.jpg", camera_jpeg(640, 400, 3, 3)),
        ("day2/screenshot_text.png", png_with_text(320, 200, 4)),
    ]
}

/// Whether a value of the `CI` variable means "this is CI": set, and not empty, `0` or
/// `false` (the convention of GitHub Actions, GitLab and most CI systems).
pub fn ci_says(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// True in CI (`.ci/run` sets `CI=1`), where every test must run.
pub fn in_ci() -> bool {
    ci_says(std::env::var("CI").ok().as_deref())
}

/// A check that cannot run here (no corpus, no exiftool, running as root). On a plain clone it
/// says so plainly, written straight to stderr past the harness's output capture so `cargo
/// test` shows it; in CI it fails the test: CI never skips silently.
pub fn skip(message: &str) {
    use std::io::Write;
    if in_ci() {
        panic!("CI is set but this check cannot run: {message}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}

/// A part of a test that does not apply to this machine by design (the baseline run on an
/// emulated CPU without AVX2 in CI): said, never a failure.
pub fn not_applicable(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOT APPLICABLE: {message}");
}

/// Prints measured figures past the harness's output capture, so `cargo test` shows them.
pub fn figures(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "FIGURES: {message}");
}
