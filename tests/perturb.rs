//! The perturbation: its bound, its reference kernel, reproducibility, and `compare`.

mod common;

use assert_cmd::Command;
use proptest::prelude::*;

use photoshield::isa::Isa;
use photoshield::perturb::{self, NoiseKind, Perturb};
use photoshield::{FileContext, Layout, Options, Pipeline, Pixels};

fn photo(w: u32, h: u32, seed: u32, layout: Layout) -> Pixels {
    let rgb = common::landscape(w, h, seed);
    match layout {
        Layout::Rgb8 => Pixels::new(w, h, layout, rgb),
        Layout::Rgba8 => {
            let data = rgb
                .chunks_exact(3)
                .enumerate()
                .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 37 % 256) as u8])
                .collect();
            Pixels::new(w, h, layout, data)
        }
    }
}

const KINDS: [NoiseKind; 3] = [NoiseKind::Perlin, NoiseKind::Gabor, NoiseKind::Uniform];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_exceeds_epsilon_and_never_touches_alpha(
        w in 1u32..90, h in 1u32..90, seed in any::<u64>(), eps in 1u8..=16,
        kind in 0usize..3, mask in any::<bool>(), rgba in any::<bool>(), content in 0u32..100,
    ) {
        let layout = if rgba { Layout::Rgba8 } else { Layout::Rgb8 };
        let original = photo(w, h, content, layout);
        let mut out = original.clone();
        let settings = Perturb { epsilon: eps, kind: KINDS[kind], mask, seed };
        perturb::apply(&mut out, &settings, seed);
        let ch = original.channels();
        for (i, (a, b)) in original.data.iter().zip(&out.data).enumerate() {
            if ch == 4 && i % 4 == 3 {
                prop_assert_eq!(a, b, "alpha changed");
            } else {
                prop_assert!(a.abs_diff(*b) <= eps, "channel {} moved {} > {}", i, a.abs_diff(*b), eps);
            }
        }
    }
}

#[test]
fn fast_kernel_equals_its_reference_on_awkward_sizes() {
    for kind in KINDS {
        for mask in [true, false] {
            for w in [1u32, 3, 7, 17, 65] {
                for h in [1u32, 3, 7, 33] {
                    let settings = Perturb {
                        epsilon: 8,
                        kind,
                        mask,
                        seed: 42,
                    };
                    let base = photo(w, h, w * h, Layout::Rgb8);
                    let mut slow = base.clone();
                    perturb::apply_reference(&mut slow, &settings, 7);
                    // Every instruction set this CPU has (the baseline and AVX2 on most x86-64).
                    for isa in Isa::available() {
                        let mut fast = base.clone();
                        perturb::apply_with(&mut fast, &settings, 7, isa);
                        assert!(fast == slow, "{isa:?} {kind:?} mask={mask} {w}x{h}");
                    }
                }
            }
        }
    }
}

#[test]
fn every_instruction_set_gives_the_reference_bytes_on_a_photo() {
    let isas = Isa::available();
    if !isas.contains(&Isa::Avx2) {
        common::not_applicable("this CPU has no AVX2: only the baseline kernels were compared");
    }
    for layout in [Layout::Rgb8, Layout::Rgba8] {
        for kind in KINDS {
            let settings = Perturb {
                epsilon: 4,
                kind,
                mask: true,
                seed: 3,
            };
            let base = photo(1001, 301, 5, layout);
            let mut slow = base.clone();
            perturb::apply_reference(&mut slow, &settings, 11);
            for &isa in &isas {
                let mut fast = base.clone();
                perturb::apply_with(&mut fast, &settings, 11, isa);
                assert!(fast == slow, "{isa:?} {kind:?} {layout:?}");
            }
        }
    }
}

#[test]
fn perturbation_reaches_its_bound_and_is_structured() {
    let base = photo(400, 300, 1, Layout::Rgb8);
    let mut out = base.clone();
    perturb::apply(
        &mut out,
        &Perturb {
            epsilon: 8,
            kind: NoiseKind::Perlin,
            mask: false,
            seed: 1,
        },
        1,
    );
    let diffs: Vec<i32> = base
        .data
        .iter()
        .zip(&out.data)
        .map(|(a, b)| *b as i32 - *a as i32)
        .collect();
    // Unmasked, away from clipping, every pixel moves by exactly ±ε, the same on R, G and B.
    let exact = diffs.iter().filter(|d| d.abs() == 8).count() as f64 / diffs.len() as f64;
    assert!(exact > 0.95, "only {exact:.2} of the values moved by ε");
    for px in diffs.chunks_exact(3).take(1000) {
        if px.iter().all(|d| d.abs() == 8) {
            assert!(px[0] == px[1] && px[1] == px[2], "grey noise: {px:?}");
        }
    }
    // Masked: flat sky gets less than textured ground.
    let mut masked = base.clone();
    perturb::apply(
        &mut masked,
        &Perturb {
            epsilon: 8,
            kind: NoiseKind::Perlin,
            mask: true,
            seed: 1,
        },
        1,
    );
    let mean_abs = |y0: u32, y1: u32| {
        let mut s = 0u64;
        let mut n = 0u64;
        for y in y0..y1 {
            for x in 0..400 {
                let i = ((y * 400 + x) * 3) as usize;
                s += base.data[i].abs_diff(masked.data[i]) as u64;
                n += 1;
            }
        }
        s as f64 / n as f64
    };
    let (sky, ground) = (mean_abs(0, 60), mean_abs(260, 300));
    assert!(sky < ground * 0.7, "sky {sky:.2} vs textured ground {ground:.2}");
}

#[test]
fn same_seed_same_bytes_other_file_other_pattern() {
    let input = common::camera_jpeg(160, 120, 1, 3);
    let options = Options {
        perturb: Some(Perturb {
            seed: 9,
            ..Perturb::new(8)
        }),
        ..Options::default()
    };
    let pipeline = Pipeline::new(&options).unwrap();
    let a = pipeline
        .process(&input, &FileContext { name: "day1/a.jpg" })
        .unwrap()
        .bytes;
    let again = pipeline
        .process(&input, &FileContext { name: "day1/a.jpg" })
        .unwrap()
        .bytes;
    let other = pipeline
        .process(&input, &FileContext { name: "day1/b.jpg" })
        .unwrap()
        .bytes;
    assert_eq!(a, again);
    assert_ne!(a, other);
}

#[test]
fn perturbed_batches_are_identical_whatever_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..4 {
        std::fs::write(root.join(format!("p{i}.jpg")), common::camera_jpeg(96, 64, 1, i)).unwrap();
    }
    for jobs in ["1", "2"] {
        Command::cargo_bin("photoshield")
            .unwrap()
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .args(["protect", "-q", "--perturb", "medium", "--seed", "5", "-j", jobs])
            .arg(&root)
            .arg("-o")
            .arg(dir.path().join(jobs))
            .assert()
            .success();
    }
    for i in 0..4 {
        let name = format!("p{i}.jpg");
        assert_eq!(
            std::fs::read(dir.path().join("1").join(&name)).unwrap(),
            std::fs::read(dir.path().join("2").join(&name)).unwrap()
        );
    }
}

#[test]
fn compare_reports_the_bound_and_quality() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("o.png");
    std::fs::write(&original, common::png_with_text(200, 150, 2)).unwrap();
    let cmd = || {
        let mut c = Command::cargo_bin("photoshield").unwrap();
        c.env("XDG_CONFIG_HOME", "/nonexistent");
        c
    };
    cmd()
        .args(["protect", "--perturb", "6", "--no-mask"])
        .arg(&original)
        .assert()
        .success();
    let protected = dir.path().join("o.protected.png");
    let out = cmd()
        .args(["compare", "--json"])
        .arg(&original)
        .arg(&protected)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["max_abs_diff"], 6);
    let psnr = v["psnr_db"].as_f64().unwrap();
    // ±6 on nearly every value: PSNR close to 20·log10(255/6) = 32.6 dB.
    assert!((31.5..33.5).contains(&psnr), "{psnr}");
    assert!(v["ssim"].as_f64().unwrap() < 1.0);
    let same = cmd()
        .args(["compare"])
        .arg(&original)
        .arg(&original)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&same.get_output().stdout).contains("inf dB"));
}

#[test]
fn levels_out_of_range_are_usage_errors() {
    for level in ["0", "17", "extreme"] {
        Command::cargo_bin("photoshield")
            .unwrap()
            .args(["protect", "--perturb", level, "x.jpg"])
            .assert()
            .code(2);
    }
}
