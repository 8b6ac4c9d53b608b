//! The visible watermark: the blend kernel against its reference, bounds, legibility, golden
//! images of every placement, and the command line's refusals.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use predicates::prelude::*;
use proptest::prelude::*;

use photoshield::watermark::{
    self, blend_all, Colour, NoticeStyle, Position, Renderer, Stamp, Tokens, Watermark,
};
use photoshield::{Layout, Pixels};

fn tokens() -> Tokens<'static> {
    Tokens {
        date: (2024, 6, 1),
        filename: "IMG_0001.jpg",
    }
}

fn photo(w: u32, h: u32, seed: u32) -> Pixels {
    Pixels::new(w, h, Layout::Rgb8, common::landscape(w, h, seed))
}

fn random_stamp(w: usize, h: usize, seed: u32, channels: usize) -> Stamp {
    let mut data = Vec::with_capacity(w * h * 4);
    for i in 0..(w * h) as u32 {
        // A third transparent, a third opaque, a third in between.
        let a = match common::noise(i, 1, seed) % 3 {
            0 => 0,
            1 => 255,
            _ => common::noise(i, 2, seed),
        };
        for c in 0..3 {
            let v = common::noise(i, 3 + c, seed);
            data.push(((v as u32 * a as u32) / 255) as u8);
        }
        data.push(a);
    }
    Stamp::new(w, h, &data, channels)
}

#[test]
fn blend_kernel_equals_its_reference_on_awkward_sizes() {
    for layout in [Layout::Rgb8, Layout::Rgba8] {
        for w in [1u32, 3, 7, 17, 65] {
            for h in [1u32, 3, 7, 19] {
                let ch = layout.channels();
                let base: Vec<u8> = (0..w * h * ch as u32)
                    .map(|i| common::noise(i, 7, w + h))
                    .collect();
                let img = Pixels::new(w, h, layout, base);
                for (sw, sh, x, y) in [
                    (5, 3, 0, 0),
                    (9, 4, -3, -2),
                    (70, 21, -1, 1),
                    (2, 2, w as i64 - 1, h as i64 - 1),
                ] {
                    let stamp = Arc::new(random_stamp(sw, sh, w * 31 + h, ch));
                    let mut fast = img.clone();
                    blend_all(&mut fast, &[(Arc::clone(&stamp), x, y)]);
                    let mut slow = img.clone();
                    watermark::blend_reference(&mut slow, &stamp, x, y);
                    assert_eq!(fast, slow, "{layout:?} {w}x{h}, stamp {sw}x{sh} at ({x},{y})");
                }
            }
        }
    }
}

#[test]
fn parallel_bands_give_the_same_result_as_one_pass() {
    // 1100 x 1000 is above the threshold for parallel row bands.
    let img = photo(1100, 1000, 3);
    let stamp = Arc::new(random_stamp(300, 250, 5, 3));
    let places = vec![
        (Arc::clone(&stamp), 50, 60),
        (Arc::clone(&stamp), 900, 800),
        (stamp.clone(), -100, 500),
    ];
    let mut fast = img.clone();
    blend_all(&mut fast, &places);
    let mut slow = img;
    for (s, x, y) in &places {
        watermark::blend_reference(&mut slow, s, *x, *y);
    }
    assert!(fast == slow);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Nothing outside the placements' rectangles changes, for any text, position and size.
    #[test]
    fn watermark_never_writes_outside_its_boxes(
        w in 8u32..300, h in 8u32..300, seed in 0u32..1000,
        pos in 0usize..10, size in 1.0f32..20.0, text in "[a-zA-Z0-9 ©]{1,12}",
    ) {
        let positions = [Position::TopLeft, Position::Top, Position::TopRight, Position::Left, Position::Center,
            Position::Right, Position::BottomLeft, Position::Bottom, Position::BottomRight, Position::Tile];
        let settings = Watermark { text: Some(text), size, position: positions[pos], min_px: 6.0, ..Watermark::default() };
        let renderer = Renderer::new(&settings).unwrap();
        let img = photo(w, h, seed);
        let places = renderer.placements(&img, &tokens()).unwrap();
        let out = renderer.apply(img.clone(), &tokens()).unwrap();
        prop_assert_eq!((out.width, out.height), (w, h));
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let inside = places.iter().any(|(s, sx, sy)| x >= *sx && y >= *sy && x < sx + s.width as i64 && y < sy + s.height as i64);
                if !inside {
                    prop_assert_eq!(out.rgb(x as u32, y as u32), img.rgb(x as u32, y as u32), "changed at ({}, {})", x, y);
                }
            }
        }
    }
}

/// WCAG relative luminance of an sRGB pixel.
fn luminance(p: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2])
}

#[test]
fn default_watermark_is_legible_on_white_black_and_noise() {
    let (w, h) = (600u32, 400u32);
    let backgrounds = [
        ("white", vec![255u8; (w * h * 3) as usize]),
        ("black", vec![0u8; (w * h * 3) as usize]),
        (
            "noise",
            (0..w * h * 3).map(|i| common::noise(i, i / 3, 11)).collect(),
        ),
    ];
    let settings = Watermark {
        text: Some("© {year} Jane Doe".into()),
        ..Watermark::default()
    };
    let renderer = Renderer::new(&settings).unwrap();
    for (name, data) in backgrounds {
        let img = Pixels::new(w, h, Layout::Rgb8, data);
        let (mask, mx, my) = renderer.text_coverage(&img, &tokens()).unwrap().unwrap();
        let out = renderer.apply(img, &tokens()).unwrap();
        let cov = |x: i64, y: i64| -> u8 {
            if x < 0 || y < 0 || x >= mask.width as i64 || y >= mask.height as i64 {
                0
            } else {
                mask.data[y as usize * mask.width + x as usize]
            }
        };
        let (mut text, mut ring) = ((0.0, 0), (0.0, 0));
        for y in 0..mask.height as i64 {
            for x in 0..mask.width as i64 {
                let l = luminance(out.rgb((mx + x) as u32, (my + y) as u32));
                if cov(x, y) >= 250 {
                    text = (text.0 + l, text.1 + 1);
                } else if cov(x, y) == 0 && (-2..=2).any(|dy| (-2..=2).any(|dx| cov(x + dx, y + dy) > 0)) {
                    ring = (ring.0 + l, ring.1 + 1);
                }
            }
        }
        let (lt, lr) = (text.0 / text.1 as f64, ring.0 / ring.1 as f64);
        let contrast = (lt.max(lr) + 0.05) / (lt.min(lr) + 0.05);
        assert!(
            contrast >= 3.0,
            "{name}: contrast {contrast:.2}:1 (text {lt:.3}, ring {lr:.3})"
        );
    }
}

#[test]
fn stamps_are_cached_across_calls() {
    let settings = Watermark {
        text: Some("© Jane".into()),
        ..Watermark::default()
    };
    let renderer = Renderer::new(&settings).unwrap();
    let a = renderer
        .stamp("© Jane", 40.0, 2, watermark::Ink::Light, 0.0, 3)
        .unwrap();
    let b = renderer
        .stamp("© Jane", 40.0, 2, watermark::Ink::Light, 0.0, 3)
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

/// A tiny logo with transparency: a filled circle.
fn logo_png() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (x as f32 - 31.5, y as f32 - 31.5);
        if dx * dx + dy * dy < 900.0 {
            image::Rgba([200, 40, 40, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The golden cases: (name, settings). Also the README's pictures.
fn golden_cases() -> Vec<(String, Watermark)> {
    let text = Some("© {year} Jane Doe".to_string());
    let base = Watermark {
        text: text.clone(),
        ..Watermark::default()
    };
    let mut cases: Vec<(String, Watermark)> = [
        Position::TopLeft,
        Position::Top,
        Position::TopRight,
        Position::Left,
        Position::Center,
        Position::Right,
        Position::BottomLeft,
        Position::Bottom,
        Position::BottomRight,
    ]
    .into_iter()
    .map(|p| {
        (
            format!(
                "position-{}",
                clap::ValueEnum::to_possible_value(&p).unwrap().get_name()
            ),
            Watermark {
                position: p,
                ..base.clone()
            },
        )
    })
    .collect();
    cases.push((
        "tile".into(),
        Watermark {
            position: Position::Tile,
            size: 5.0,
            ..base.clone()
        },
    ));
    cases.push((
        "two-lines-red".into(),
        Watermark {
            text: Some("© {year}\\nJane Doe".into()),
            colour: Colour::Rgb([230, 40, 40]),
            opacity: 0.9,
            ..base.clone()
        },
    ));
    cases.push((
        "plain-no-outline-no-shadow".into(),
        Watermark {
            outline: false,
            shadow: false,
            opacity: 1.0,
            colour: Colour::Rgb([255, 255, 255]),
            ..base.clone()
        },
    ));
    cases.push((
        "logo".into(),
        Watermark {
            text: None,
            logo: Some(Arc::new(logo_png())),
            logo_position: Position::TopRight,
            opacity: 0.8,
            ..base.clone()
        },
    ));
    cases.push((
        "notice-band".into(),
        Watermark {
            notice: Some("Not licensed for AI training".into()),
            ..base.clone()
        },
    ));
    cases.push((
        "notice-overlay".into(),
        Watermark {
            notice: Some("Not licensed for AI training".into()),
            notice_style: NoticeStyle::Overlay,
            position: Position::TopRight,
            ..base
        },
    ));
    cases
}

#[test]
fn golden_images_of_each_option() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let failures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/failures");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failed = Vec::new();
    for (name, settings) in golden_cases() {
        let renderer = Renderer::new(&settings).unwrap();
        let out = renderer.apply(photo(256, 170, 2), &tokens()).unwrap();
        let got = image::RgbImage::from_raw(out.width, out.height, out.data).unwrap();
        let path: PathBuf = dir.join(format!("{name}.png"));
        if bless {
            got.save(&path).unwrap();
            continue;
        }
        let want = image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with BLESS=1", path.display()))
            .into_rgb8();
        let worst = if want.dimensions() != got.dimensions() {
            255
        } else {
            got.as_raw()
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0)
        };
        if worst > 2 {
            std::fs::create_dir_all(&failures_dir).unwrap();
            got.save(failures_dir.join(format!("{name}.got.png"))).unwrap();
            if want.dimensions() == got.dimensions() {
                let diff = image::RgbImage::from_fn(got.width(), got.height(), |x, y| {
                    let (a, b) = (got.get_pixel(x, y).0, want.get_pixel(x, y).0);
                    image::Rgb([0, 1, 2].map(|c| a[c].abs_diff(b[c]).saturating_mul(8)))
                });
                diff.save(failures_dir.join(format!("{name}.diff.png"))).unwrap();
            }
            failed.push(format!("{name} (max channel difference {worst})"));
        }
    }
    assert!(
        failed.is_empty(),
        "golden images differ: {failed:?}; see tests/failures/, BLESS=1 to accept"
    );
}

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

#[test]
fn bad_watermark_settings_are_refused_before_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.jpg");
    std::fs::write(&input, common::camera_jpeg(64, 48, 1, 1)).unwrap();
    let not_a_font = dir.path().join("font.ttf");
    std::fs::write(&not_a_font, b"hello").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--font".into(),
                "/nonexistent/font.ttf".into(),
                "--text".into(),
                "x".into(),
            ],
            "cannot read font",
        ),
        (
            vec![
                "--font".into(),
                not_a_font.display().to_string(),
                "--text".into(),
                "x".into(),
            ],
            "not a TrueType or OpenType font",
        ),
        (
            vec!["--text".into(), "写真 © Jane".into()],
            "no glyph for '写' (U+5199), '真' (U+771F)",
        ),
        (
            vec!["--logo".into(), not_a_font.display().to_string()],
            "the logo cannot be read",
        ),
        (
            vec!["--logo".into(), "/nonexistent/logo.png".into()],
            "cannot read logo",
        ),
        (
            vec!["--text".into(), "x".into(), "--size".into(), "0".into()],
            "watermark size must be above 0",
        ),
        (
            vec!["--text".into(), "x".into(), "--size=-3".into()],
            "watermark size must be above 0",
        ),
        (
            vec!["--text".into(), "x".into(), "--opacity".into(), "1.5".into()],
            "opacity must be between 0 and 1",
        ),
        (
            vec![
                "--logo".into(),
                "x.png".into(),
                "--logo-size".into(),
                "150".into(),
            ],
            "cannot read logo",
        ),
        (
            vec!["--text".into(), "x".into(), "--color".into(), "purple".into()],
            "invalid colour",
        ),
    ];
    for (args, reason) in cases {
        photoshield()
            .arg("protect")
            .args(&args)
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("out.jpg"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(reason));
        assert!(!dir.path().join("out.jpg").exists());
    }
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, logo_png()).unwrap();
    photoshield()
        .args(["protect", "--logo-size", "150", "--logo"])
        .arg(&logo)
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o.jpg"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "logo size must be above 0 and at most 100",
        ));
}

#[test]
fn watermark_from_the_command_line_changes_only_its_corner() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.png");
    std::fs::write(&input, common::png_with_text(300, 200, 4)).unwrap();
    photoshield()
        .args(["protect", "--text", "© {year} Jane", "--position", "top-left"])
        .arg(&input)
        .assert()
        .success();
    let plain = image::open(&input).unwrap().into_rgb8();
    let marked = image::open(dir.path().join("a.protected.png"))
        .unwrap()
        .into_rgb8();
    let changed = |x0: u32, y0: u32, x1: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| plain.get_pixel(x, y) != marked.get_pixel(x, y))
            .count()
    };
    assert!(changed(0, 0, 150, 60) > 200, "no text in the top-left corner");
    assert_eq!(changed(0, 100, 300, 200), 0, "the bottom half changed");
}

#[test]
fn no_watermark_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "text = '© Jane'\nnotice = 'No AI'\n").unwrap();
    let input = common::png_with_text(120, 80, 1);
    let with = photoshield()
        .args(["protect", "--config"])
        .arg(&cfg)
        .arg("-")
        .write_stdin(input.clone())
        .assert()
        .success();
    let without = photoshield()
        .args(["protect", "--no-watermark", "--config"])
        .arg(&cfg)
        .arg("-")
        .write_stdin(input.clone())
        .assert()
        .success();
    let h = |b: &[u8]| image::load_from_memory(b).unwrap().height();
    assert!(h(&with.get_output().stdout) > 80, "the notice band adds rows");
    assert_eq!(h(&without.get_output().stdout), 80);
}
