//! The invisible mark in process: embed, attack like a platform, detect. Images are generated
//! here; `benches/mark_eval.sh` measures the same on real photos.

mod common;

use proptest::prelude::*;

use photoshield::codec::{self, EncodeSettings};
use photoshield::mark::{self, Detector, Key, MarkId};
use photoshield::{Layout, OutputFormat, Pixels};

/// A photo-like image: sky, sun, textured hills.
fn textured(w: u32, h: u32, seed: u32) -> Pixels {
    Pixels::new(w, h, Layout::Rgb8, common::landscape(w, h, seed))
}

fn key() -> Key {
    Key::from_bytes(*b"photoshield test key, not secret")
}

fn id32() -> MarkId {
    MarkId::parse("0xC0FFEE42", 32).unwrap()
}

fn marked(original: &Pixels, id: MarkId) -> Pixels {
    let mut p = original.clone();
    mark::embed(&mut p, &key(), id).unwrap();
    p
}

fn encoded(p: &Pixels, format: OutputFormat, quality: u8) -> Pixels {
    let bytes = codec::encode(p, EncodeSettings { format, quality }, None).unwrap();
    photoshield::compare::load(&bytes).unwrap()
}

fn to_width(p: &Pixels, w: u32) -> Pixels {
    let h = (p.height as f64 * w as f64 / p.width as f64).round() as u32;
    photoshield::resize::resize_exact(p, w, h).unwrap()
}

fn crop(p: &Pixels, x0: u32, y0: u32, w: u32, h: u32) -> Pixels {
    let ch = p.channels();
    let mut data = Vec::with_capacity((w * h) as usize * ch);
    for y in y0..y0 + h {
        let start = (y as usize * p.width as usize + x0 as usize) * ch;
        data.extend_from_slice(&p.data[start..start + w as usize * ch]);
    }
    Pixels::new(w, h, p.layout, data)
}

fn brighter(p: &Pixels, factor: f32) -> Pixels {
    let data = p
        .data
        .iter()
        .map(|&v| (v as f32 * factor).round().min(255.0) as u8)
        .collect();
    Pixels::new(p.width, p.height, p.layout, data)
}

fn assert_reads(detector: &Detector, copy: &Pixels, id: MarkId, what: &str) {
    let found = detector.detect(copy);
    assert_eq!(found.id, Some(id), "{what}: {found:?}");
    assert!(
        found.score >= mark::THRESHOLD && found.crc_ok,
        "{what}: {found:?}"
    );
}

#[test]
fn the_id_survives_what_platforms_do() {
    let original = textured(2400, 1600, 3);
    let copy = marked(&original, id32());
    let detector = Detector::new(&key());
    let (w, h) = (copy.width, copy.height);
    assert_reads(&detector, &copy, id32(), "no attack");
    assert_reads(
        &detector,
        &encoded(&copy, OutputFormat::Jpeg, 75),
        id32(),
        "JPEG q75",
    );
    assert_reads(
        &detector,
        &encoded(&copy, OutputFormat::Jpeg, 50),
        id32(),
        "JPEG q50",
    );
    assert_reads(
        &detector,
        &encoded(&to_width(&copy, 1080), OutputFormat::Jpeg, 75),
        id32(),
        "1080 px + q75",
    );
    assert_reads(
        &detector,
        &crop(&copy, w / 20, h / 20, w * 9 / 10, h * 9 / 10),
        id32(),
        "centre crop 90%",
    );
    let off_centre = crop(&copy, w - w * 92 / 100, 0, w * 92 / 100, h * 95 / 100);
    assert_reads(
        &detector,
        &encoded(&to_width(&off_centre, 1080), OutputFormat::Jpeg, 80),
        id32(),
        "off-centre crop + 1080 + q80",
    );
    let portrait = crop(&copy, (w - h * 4 / 5) / 3, 0, h * 4 / 5, h);
    assert_reads(
        &detector,
        &encoded(&to_width(&portrait, 1080), OutputFormat::Jpeg, 80),
        id32(),
        "4:5 crop + 1080 + q80",
    );
    let third = crop(&copy, w / 3, h / 5, w * 2 / 5, h * 3 / 5);
    assert_reads(
        &detector,
        &encoded(&third, OutputFormat::Jpeg, 80),
        id32(),
        "crop keeping 40% of the width + q80",
    );
    assert_reads(
        &detector,
        &encoded(&copy, OutputFormat::WebP, 80),
        id32(),
        "WebP q80",
    );
    assert_reads(&detector, &brighter(&copy, 1.1), id32(), "brightness +10%");
}

/// The sizes presets deliver (Instagram's 1080x1350 and 1080x566, a 720 px wide portrait),
/// marked at that size, then recompressed as a platform does; the 720 px one also upscaled to
/// 1080 px wide, as a platform showing photos 1080 px wide does.
#[test]
fn the_id_survives_at_the_sizes_presets_deliver() {
    let detector = Detector::new(&key());
    for (i, (w, h)) in [(1080, 1350), (1080, 566), (720, 1080), (720, 900)]
        .into_iter()
        .enumerate()
    {
        let copy = marked(&textured(w, h, 20 + i as u32), id32());
        let what = |attack: &str| format!("{w}x{h}, {attack}");
        assert_reads(
            &detector,
            &encoded(&copy, OutputFormat::Jpeg, 90),
            id32(),
            &what("JPEG q90"),
        );
        assert_reads(
            &detector,
            &encoded(&copy, OutputFormat::Jpeg, 75),
            id32(),
            &what("JPEG q75"),
        );
        assert_reads(
            &detector,
            &encoded(&copy, OutputFormat::WebP, 80),
            id32(),
            &what("WebP q80"),
        );
        let upscaled = encoded(&to_width(&copy, 1080), OutputFormat::Jpeg, 75);
        assert_reads(&detector, &upscaled, id32(), &what("1080 px wide + JPEG q75"));
    }
}

#[test]
fn a_64_bit_id_round_trips() {
    let id = MarkId::parse("0x0123456789ABCDEF", 64).unwrap();
    let copy = marked(&textured(1600, 1200, 5), id);
    let detector = Detector::new(&key());
    assert_reads(
        &detector,
        &encoded(&to_width(&copy, 1080), OutputFormat::Jpeg, 75),
        id,
        "64-bit, 1080 + q75",
    );
}

#[test]
fn unmarked_images_and_wrong_keys_give_no_mark() {
    let detector = Detector::new(&key());
    for seed in 0..4 {
        let original = textured(1600, 1067, seed);
        for copy in [original.clone(), to_width(&original, 1080)] {
            let found = detector.detect(&copy);
            assert_eq!(found.id, None, "unmarked, seed {seed}: {found:?}");
            assert!(found.score < mark::THRESHOLD, "unmarked, seed {seed}: {found:?}");
        }
    }
    let copy = marked(&textured(1600, 1067, 9), id32());
    let other = Detector::new(&Key::from_bytes([0x5a; 32]));
    let found = other.detect(&copy);
    assert_eq!(found.id, None, "wrong key: {found:?}");
}

#[test]
fn the_mark_is_invisible_by_the_numbers() {
    let original = textured(2400, 1600, 4);
    let copy = marked(&original, id32());
    let psnr = photoshield::compare::psnr(&original, &copy);
    assert!(psnr >= 40.0, "PSNR {psnr:.2} dB");
    // The sky of the generated landscape is a smooth gradient: at most one grey level there
    // (away from the sun, whose edge lets nearby pixels move more).
    let (w, ch) = (original.width as usize, 3);
    for y in 20..220 {
        for x in 20..w - 20 {
            let i = (y * w + x) * ch;
            let d = (copy.data[i] as i16 - original.data[i] as i16).abs();
            assert!(d <= 1, "sky pixel ({x},{y}) moved by {d}");
        }
    }
}

#[test]
fn the_change_is_luminance_only_and_alpha_is_untouched() {
    let rgb = textured(1200, 800, 6);
    let rgba: Vec<u8> = rgb
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 77])
        .collect();
    let original = Pixels::new(1200, 800, Layout::Rgba8, rgba);
    let copy = marked(&original, id32());
    for (a, b) in original.data.chunks_exact(4).zip(copy.data.chunks_exact(4)) {
        assert_eq!(b[3], 77);
        let d: Vec<i16> = (0..3).map(|c| b[c] as i16 - a[c] as i16).collect();
        // The same change on R, G and B, unless one of them clipped.
        if (0..3).all(|c| (8..=247).contains(&a[c])) {
            assert!(d[0] == d[1] && d[1] == d[2], "{a:?} -> {b:?}");
        }
    }
}

#[test]
fn embedding_is_deterministic() {
    let original = textured(1000, 700, 7);
    assert_eq!(marked(&original, id32()), marked(&original, id32()));
    assert_ne!(
        marked(&original, id32()),
        marked(&original, MarkId::parse("1", 32).unwrap())
    );
}

#[test]
fn too_small_or_too_flat_images_are_reported() {
    let mut small = textured(500, 400, 1);
    let err = mark::embed(&mut small, &key(), id32()).unwrap_err().to_string();
    assert!(err.contains("too small") && err.contains("512"), "{err}");
    let mut thin = textured(3000, 200, 1);
    assert!(
        mark::embed(&mut thin, &key(), id32()).is_err(),
        "a strip lower than one tile"
    );

    let mut flat = Pixels::new(1200, 800, Layout::Rgb8, vec![128; 1200 * 800 * 3]);
    let e = mark::embed(&mut flat, &key(), id32()).unwrap();
    assert!(e.is_weak(), "{e:?}");
    let mut photo = textured(1200, 800, 2);
    let e = mark::embed(&mut photo, &key(), id32()).unwrap();
    assert!(!e.is_weak() && e.strength > 0.99, "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The mask's bound: a flat area moves by at most one grey level, any area by at most
    /// eight, whatever its colour.
    #[test]
    fn flat_areas_move_by_at_most_one_level(r in 0u8..=255, g in 0u8..=255, b in 0u8..=255, w in 512u32..1300, h in 300u32..500) {
        let original = Pixels::new(w, h, Layout::Rgb8, [r, g, b].repeat((w * h) as usize));
        let copy = marked(&original, id32());
        let max = original.data.iter().zip(&copy.data).map(|(&a, &b)| (a as i16 - b as i16).abs()).max().unwrap();
        prop_assert!(max <= 1, "moved by {}", max);
    }

    #[test]
    fn textured_areas_move_by_at_most_eight_levels(seed in 0u32..1000) {
        let original = textured(900, 600, seed);
        let copy = marked(&original, id32());
        let max = original.data.iter().zip(&copy.data).map(|(&a, &b)| (a as i16 - b as i16).abs()).max().unwrap();
        prop_assert!(max <= 8, "moved by {}", max);
    }
}
