//! Measures the invisible mark's failure rate on real photos: every photo is marked with many
//! random 32-bit IDs, saved as the pipeline saves it (JPEG q90), put through what platforms do,
//! and read back. Unmarked copies and a wrong key measure the false positives.
//!
//! usage: cargo run --release --example mark_eval -- [--quick|--main] [--ids N] [--seed S]
//!            [--rows FILE.tsv] [--only SCENARIO] PHOTO...
//!
//! Scenarios: `full` marks the photo at its own size (no preset) and applies the attacks of
//! docs/invisible-mark.md; the preset scenarios first crop and resize the photo to the size a preset
//! delivers (a 1080x1350 and a 720x1080 portrait, a 1080x566 landscape), mark it there, and
//! recompress it as a platform would. `--quick` runs 4 IDs per photo and fewer attacks;
//! `--main` all the IDs, but at full size only the attacks issue 17 names (1080 px + JPEG q75,
//! WebP q80).
//! `benches/mark_measure.sh` fetches the photos and runs the quick and the full configuration.
//!
//! Prints, per scenario and attack, the IDs verified out of those tried, the 95% Wilson
//! interval of the rate, the spread across photos, wrong IDs (must be 0) and the score range;
//! `--rows` writes one line per detection for finding what failures have in common (the ID
//! column says `unmarked` or `wrong key` for the false-positive checks).

use std::fmt::Write as _;
use std::time::Instant;

use photoshield::codec::{self, EncodeSettings};
use photoshield::mark::{self, Detection, Detector, Key, MarkId};
use photoshield::{OutputFormat, Pixels};

/// What the copy went through after marking.
#[derive(Clone, Copy, PartialEq)]
enum Attack {
    None,
    Jpeg(u8),
    WebP(u8),
    /// Resize to this width, then JPEG at this quality.
    Width(u32, u8),
    /// Crop keeping 90% of each side, centred.
    CentreCrop90,
    /// Crop keeping 92% x 95%, flush right, then 1080 px + JPEG q80.
    OffCentreCrop,
    /// The widest 4:5 portrait crop, then 1080 px + JPEG q80.
    Crop45,
    HalfAndBack,
    Brighter10,
}

impl Attack {
    fn name(self) -> String {
        match self {
            Attack::None => "none (JPEG q90 as written)".into(),
            Attack::Jpeg(q) => format!("JPEG q{q}"),
            Attack::WebP(q) => format!("WebP q{q}"),
            Attack::Width(w, q) => format!("{w} px wide + JPEG q{q}"),
            Attack::CentreCrop90 => "centre crop 90%".into(),
            Attack::OffCentreCrop => "off-centre crop + 1080 px + JPEG q80".into(),
            Attack::Crop45 => "4:5 crop + 1080 px + JPEG q80".into(),
            Attack::HalfAndBack => "shrink to half and back".into(),
            Attack::Brighter10 => "brightness +10%".into(),
        }
    }

    fn apply(self, p: &Pixels) -> Pixels {
        let (w, h) = (p.width, p.height);
        match self {
            Attack::None => p.clone(),
            Attack::Jpeg(q) => reencode(p, OutputFormat::Jpeg, q),
            Attack::WebP(q) => reencode(p, OutputFormat::WebP, q),
            Attack::Width(tw, q) => reencode(&to_width(p, tw), OutputFormat::Jpeg, q),
            Attack::CentreCrop90 => crop(p, w / 20, h / 20, w * 9 / 10, h * 9 / 10),
            Attack::OffCentreCrop => {
                let c = crop(p, w - w * 92 / 100, 0, w * 92 / 100, h * 95 / 100);
                reencode(&to_width(&c, 1080), OutputFormat::Jpeg, 80)
            }
            Attack::Crop45 => {
                let (cw, ch) = if w * 5 > h * 4 {
                    (h * 4 / 5, h)
                } else {
                    (w, w * 5 / 4)
                };
                let c = crop(p, (w - cw) / 3, (h - ch) / 2, cw, ch);
                reencode(&to_width(&c, 1080.min(cw)), OutputFormat::Jpeg, 80)
            }
            Attack::HalfAndBack => {
                let half = photoshield::resize::resize_exact(p, w / 2, h / 2).unwrap();
                photoshield::resize::resize_exact(&half, w, h).unwrap()
            }
            Attack::Brighter10 => {
                let data = p
                    .data
                    .iter()
                    .map(|&v| (v as f32 * 1.1).round().min(255.0) as u8)
                    .collect();
                Pixels::new(w, h, p.layout, data)
            }
        }
    }
}

/// Where the photo is marked: at its own size, or at a preset's size.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// Crop to this aspect (w/h) and resize to this size before marking; None: as it is.
    size: Option<(u32, u32)>,
}

fn reencode(p: &Pixels, format: OutputFormat, quality: u8) -> Pixels {
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

/// The centre crop of `p` with the aspect of `w` x `h`, resized to exactly that size.
fn fit(p: &Pixels, (w, h): (u32, u32)) -> Pixels {
    let (cw, ch) = if p.width as u64 * h as u64 > p.height as u64 * w as u64 {
        ((p.height as u64 * w as u64 / h as u64) as u32, p.height)
    } else {
        (p.width, (p.width as u64 * h as u64 / w as u64) as u32)
    };
    let c = crop(p, (p.width - cw) / 2, (p.height - ch) / 2, cw, ch);
    photoshield::resize::resize_exact(&c, w, h).unwrap()
}

/// SplitMix64: reproducible IDs from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Counts for one (scenario, attack).
#[derive(Default)]
struct Tally {
    tried: usize,
    verified: usize,
    wrong: usize,
    /// Per photo: (verified, tried).
    per_photo: Vec<(usize, usize)>,
    scores: Vec<f64>,
    millis: Vec<f64>,
}

/// 95% Wilson score interval of k successes in n.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let r = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / d;
    ((c - r).max(0.0), (c + r).min(1.0))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut quick, mut ids, mut seed, mut rows_path) = (false, 20usize, 1u64, None);
    let mut only = String::new();
    let mut main_only = false;
    let mut photos = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--main" => main_only = true,
            "--ids" => ids = args.next().and_then(|v| v.parse().ok()).expect("--ids N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            "--rows" => rows_path = args.next(),
            "--only" => only = args.next().expect("--only SCENARIO"),
            _ => photos.push(a),
        }
    }
    if quick {
        ids = ids.min(4);
    }
    assert!(
        !photos.is_empty(),
        "usage: mark_eval [--quick|--main] [--ids N] [--seed S] [--rows FILE] PHOTO..."
    );

    let full_attacks: Vec<Attack> = if quick {
        vec![
            Attack::None,
            Attack::Width(1080, 75),
            Attack::WebP(80),
            Attack::Crop45,
        ]
    } else if main_only {
        vec![Attack::None, Attack::Width(1080, 75), Attack::WebP(80)]
    } else {
        vec![
            Attack::None,
            Attack::Jpeg(75),
            Attack::Jpeg(50),
            Attack::HalfAndBack,
            Attack::Width(1080, 75),
            Attack::Width(1080, 80),
            Attack::CentreCrop90,
            Attack::OffCentreCrop,
            Attack::Crop45,
            Attack::WebP(80),
            Attack::Brighter10,
        ]
    };
    // A platform keeps a preset's size and recompresses; one that shows photos 1080 px wide
    // upscales a 720 px one first.
    let preset_attacks = vec![
        Attack::None,
        Attack::Jpeg(75),
        Attack::WebP(80),
        Attack::Width(1080, 75),
    ];
    let scenarios = [
        Scenario {
            name: "full size",
            size: None,
        },
        Scenario {
            name: "1080x1350 portrait",
            size: Some((1080, 1350)),
        },
        Scenario {
            name: "1080x566 landscape",
            size: Some((1080, 566)),
        },
        Scenario {
            name: "720x1080 portrait",
            size: Some((720, 1080)),
        },
        Scenario {
            name: "720x900 portrait",
            size: Some((720, 900)),
        },
    ];

    let key = Key::from_bytes(*b"photoshield mark_eval key 000001");
    let wrong_key = Detector::new(&Key::from_bytes(*b"photoshield mark_eval key 000002"));
    let detector = Detector::new(&key);
    let mut rng = Rng(seed);
    let mut rows = String::from("scenario\tattack\tphoto\tid\tverified\twrong_id\tscore\tcrc_ok\tzoom\tms\n");
    // Rows are written after every photo, so that an interrupted run keeps what it measured.
    let save_rows = |rows: &str| {
        if let Some(p) = &rows_path {
            std::fs::write(p, rows).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    };
    let attacks_of = |s: &Scenario| {
        if s.size.is_none() {
            &full_attacks
        } else {
            &preset_attacks
        }
    };
    let mut tallies: Vec<Vec<Tally>> = scenarios
        .iter()
        .map(|s| (0..attacks_of(s).len()).map(|_| Tally::default()).collect())
        .collect();
    // False positives: unmarked copies through every attack, and marked ones read with the
    // wrong key.
    let (mut fp_tried, mut fp_verified, mut fp_crc, mut fp_max) = (0usize, 0usize, 0usize, 0f64);
    let (mut wk_tried, mut wk_verified, mut wk_max) = (0usize, 0usize, 0f64);
    let started = Instant::now();

    for (pi, path) in photos.iter().enumerate() {
        let original = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| photoshield::compare::load(&b).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped {path}: {e}");
                continue;
            }
        };
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        eprintln!(
            "[{:>4.0}s] {name} {}x{}",
            started.elapsed().as_secs_f64(),
            original.width,
            original.height
        );
        for t in tallies.iter_mut().flatten() {
            t.per_photo.push((0, 0));
        }
        for (si, s) in scenarios.iter().enumerate() {
            if !s.name.contains(&only) {
                continue;
            }
            let base = match s.size {
                Some(size) => fit(&original, size),
                None => original.clone(),
            };
            let attacks = attacks_of(s);
            // Unmarked: the photo as saved, through every attack.
            let unmarked = reencode(&base, OutputFormat::Jpeg, 90);
            for a in attacks {
                let d = detector.detect(&a.apply(&unmarked));
                fp_tried += 1;
                fp_verified += d.verified() as usize;
                fp_crc += d.crc_ok as usize;
                fp_max = fp_max.max(d.score);
                writeln!(
                    rows,
                    "{}\t{}\t{name}\tunmarked\t{}\t0\t{:.2}\t{}\t{:.4}\t",
                    s.name,
                    a.name(),
                    d.verified() as u8,
                    d.score,
                    d.crc_ok as u8,
                    d.zoom
                )
                .unwrap();
            }
            for _ in 0..ids {
                let id = MarkId {
                    value: rng.next() & 0xFFFF_FFFF,
                    bits: 32,
                };
                let mut marked = base.clone();
                if let Err(e) = mark::embed(&mut marked, &key, id) {
                    eprintln!("  {}: {e}", s.name);
                    break;
                }
                let saved = reencode(&marked, OutputFormat::Jpeg, 90);
                for (ai, a) in attacks.iter().enumerate() {
                    let copy = a.apply(&saved);
                    let t0 = Instant::now();
                    let d: Detection = detector.detect(&copy);
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    let ok = d.id == Some(id);
                    let wrong = d.id.is_some() && !ok;
                    let t = &mut tallies[si][ai];
                    t.tried += 1;
                    t.verified += ok as usize;
                    t.wrong += wrong as usize;
                    t.per_photo[pi].0 += ok as usize;
                    t.per_photo[pi].1 += 1;
                    t.scores.push(d.score);
                    t.millis.push(ms);
                    writeln!(
                        rows,
                        "{}\t{}\t{name}\t{id}\t{}\t{}\t{:.2}\t{}\t{:.4}\t{ms:.1}",
                        s.name,
                        a.name(),
                        ok as u8,
                        wrong as u8,
                        d.score,
                        d.crc_ok as u8,
                        d.zoom
                    )
                    .unwrap();
                    if *a == Attack::None {
                        let w = wrong_key.detect(&copy);
                        wk_tried += 1;
                        wk_verified += w.verified() as usize;
                        wk_max = wk_max.max(w.score);
                        writeln!(
                            rows,
                            "{}\t{}\t{name}\twrong key\t{}\t0\t{:.2}\t{}\t{:.4}\t",
                            s.name,
                            a.name(),
                            w.verified() as u8,
                            w.score,
                            w.crc_ok as u8,
                            w.zoom
                        )
                        .unwrap();
                    }
                }
            }
        }
        save_rows(&rows);
    }

    save_rows(&rows);
    println!(
        "{} photos, {ids} random 32-bit IDs each (seed {seed}), {:.0} s",
        photos.len(),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| where marked | attack | ID verified | rate (95% interval) | photos with a miss | worst photo | wrong IDs | score median (min) | detect median |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (si, s) in scenarios.iter().enumerate() {
        for (ai, a) in attacks_of(s).iter().enumerate() {
            let t = &mut tallies[si][ai];
            if t.tried == 0 {
                println!(
                    "| {} | {} | none (not run, or too small to mark) | | | | | | |",
                    s.name,
                    a.name()
                );
                continue;
            }
            let (lo, hi) = wilson(t.verified, t.tried);
            let missed = t.per_photo.iter().filter(|(k, n)| *n > 0 && k < n).count();
            let photos_tried = t.per_photo.iter().filter(|(_, n)| *n > 0).count();
            let worst = t
                .per_photo
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|&(k, n)| (k as f64 / n as f64, k, n))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k, n)| format!("{k}/{n}"))
                .unwrap_or_default();
            let min_score = t.scores.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "| {} | {} | {}/{} | {:.1}% ({:.1}-{:.1}%) | {missed}/{photos_tried} | {worst} | {} | {:.1} ({:.1}) | {:.0} ms |",
                s.name,
                a.name(),
                t.verified,
                t.tried,
                100.0 * t.verified as f64 / t.tried as f64,
                100.0 * lo,
                100.0 * hi,
                t.wrong,
                median(&mut t.scores),
                min_score,
                median(&mut t.millis),
            );
        }
    }
    let (lo, hi) = wilson(fp_verified, fp_tried);
    println!();
    println!(
        "false positives: unmarked copies {fp_verified}/{fp_tried} verified (95% interval {:.1}-{:.1}%), {fp_crc} CRC matches, highest score {fp_max:.1} (threshold {})",
        100.0 * lo,
        100.0 * hi,
        mark::THRESHOLD
    );
    println!("false positives: marked copies read with a wrong key {wk_verified}/{wk_tried} verified, highest score {wk_max:.1}");
}
