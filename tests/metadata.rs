//! inspect, lossless strip and the rights notice, checked against exiftool, the independent
//! reader, on the repository's fixtures and the shared corpus.

mod common;

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use predicates::prelude::*;

use photoshield::inspect::{inspect, Category};
use photoshield::strip::{self, Rights, StripOptions};
use photoshield::{FileContext, Options, Pipeline};

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

/// exiftool's JSON for one file (numeric values), or None without exiftool.
fn exiftool(path: &Path, tags: &[&str]) -> Option<serde_json::Value> {
    if !common::have_exiftool() {
        return None;
    }
    let out = Process::new("exiftool")
        .args(["-j", "-n", "-a", "-G1"])
        .args(tags)
        .arg(path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v[0].clone())
}

fn decode_rgba(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes).unwrap().into_rgba8()
}

#[test]
fn inspect_finds_what_the_fixture_carries_and_nothing_after_strip_or_protect() {
    let file = common::camera_jpeg(200, 150, 6, 1);
    let ins = inspect(&file).unwrap();
    let (lat, lon) = ins.gps.unwrap();
    assert!(
        (lat - 48.858_37).abs() < 1e-5 && (lon - 2.294_48).abs() < 1e-5,
        "{lat} {lon}"
    );
    assert_eq!(ins.serials, ["SN-0042-7777"]);
    for cat in [
        Category::Owner,
        Category::Camera,
        Category::Time,
        Category::Thumbnail,
        Category::Xmp,
        Category::Comment,
    ] {
        assert!(
            ins.findings.iter().any(|f| f.category == cat && f.leak),
            "{cat:?} not found: {:?}",
            ins.findings
        );
    }
    assert!(ins.leaks());

    let stripped = strip::strip(&file, &StripOptions::default()).unwrap();
    let after = inspect(&stripped).unwrap();
    assert!(!after.leaks(), "{:?}", after.findings);
    assert!(after
        .findings
        .iter()
        .any(|f| f.category == Category::Orientation && f.detail == "orientation 6"));
    let protected = Pipeline::new(&Options::default())
        .unwrap()
        .process(&file, &FileContext::default())
        .unwrap();
    assert!(!inspect(&protected.bytes).unwrap().leaks());
}

#[test]
fn strip_keeps_the_pixels_exactly_and_is_idempotent() {
    let cases = [
        ("jpeg", common::camera_jpeg(123, 77, 3, 2)),
        ("png", common::png_with_text(61, 33, 3)),
    ];
    for (name, file) in cases {
        let once = strip::strip(&file, &StripOptions::default()).unwrap();
        assert!(once.len() < file.len(), "{name}: nothing removed");
        assert_eq!(decode_rgba(&once), decode_rgba(&file), "{name}: pixels changed");
        assert_eq!(
            strip::strip(&once, &StripOptions::default()).unwrap(),
            once,
            "{name}: not idempotent"
        );
    }
}

#[test]
fn strip_never_panics_on_truncated_or_corrupt_containers() {
    let files = [
        common::camera_jpeg(64, 48, 6, 3),
        common::png_with_text(40, 30, 1),
    ];
    for file in files {
        for cut in 0..file.len() {
            let _ = strip::strip(&file[..cut], &StripOptions::default());
            let _ = inspect(&file[..cut]);
        }
        // Flip bytes across the header region.
        for i in 0..file.len().min(600) {
            let mut bad = file.clone();
            bad[i] ^= 0xFF;
            let _ = strip::strip(&bad, &StripOptions::default());
            let _ = inspect(&bad);
        }
    }
    // An EXIF IFD that points to itself, offsets past the end and a 4 GB count.
    let mut tiff = b"MM\0\x2A\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 2]);
    tiff.extend_from_slice(&[0x01, 0x0F, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 8]);
    tiff.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8]);
    tiff.extend_from_slice(&[0, 0, 0, 8]);
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend(tiff);
    let hostile = common::with_segments(
        &common::jpeg(&common::landscape(16, 16, 1), 16, 16),
        &[(0xE1, seg)],
    );
    let ins = inspect(&hostile).unwrap();
    assert!(ins.leaks(), "an unreadable EXIF block is still reported");
    let clean = strip::strip(&hostile, &StripOptions::default()).unwrap();
    assert!(!inspect(&clean).unwrap().leaks());
}

#[test]
fn rights_packet_is_read_back_by_exiftool_and_is_not_a_leak() {
    let rights = Rights {
        notice: "© {year} Jane Doe".into(),
        creator: Some("Jane Doe".into()),
        web_statement: Some("https://example.com/licence".into()),
    };
    let options = Options {
        rights: Some(rights),
        ..Options::default()
    };
    let pipeline = Pipeline::new(&options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        ("a.jpg", common::camera_jpeg(80, 60, 1, 4)),
        ("b.png", common::png_with_text(40, 30, 2)),
    ];
    for (name, bytes) in sources {
        let protected = pipeline.process(&bytes, &FileContext { name }).unwrap();
        let stripped = pipeline.strip(&bytes, &FileContext { name }).unwrap();
        let webp = Pipeline::new(&Options {
            format: Some(photoshield::OutputFormat::WebP),
            ..options.clone()
        })
        .unwrap()
        .process(&bytes, &FileContext { name })
        .unwrap();
        for (kind, out) in [
            ("protect", &protected.bytes),
            ("strip", &stripped.bytes),
            ("webp", &webp.bytes),
        ] {
            let ins = inspect(out).unwrap();
            assert!(!ins.leaks(), "{name} {kind}: {:?}", ins.findings);
            assert!(
                ins.findings.iter().any(|f| f.category == Category::Rights),
                "{name} {kind}: no rights"
            );
            let path = dir.path().join(format!("{kind}-{name}"));
            std::fs::write(&path, out).unwrap();
            let Some(tags) = exiftool(&path, &[]) else {
                common::skip("exiftool is not installed; the rights read-back did not run");
                return;
            };
            assert_eq!(
                tags["XMP-plus:DataMining"],
                strip::DMI_PROHIBITED_AIML,
                "{kind} {name}: {tags}"
            );
            // The capture date of the fixtures is 2024; the PNG has none, so it gets today.
            let rights = tags["XMP-dc:Rights"].as_str().unwrap_or_default();
            assert!(
                rights.starts_with("© 20") && rights.ends_with(" Jane Doe"),
                "{kind} {name}: {tags}"
            );
            assert_eq!(tags["XMP-xmpRights:Marked"], true, "{kind} {name}: {tags}");
            assert_eq!(tags["XMP-xmpRights:WebStatement"], "https://example.com/licence");
            assert_eq!(tags["XMP-dc:Creator"], "Jane Doe");
            assert_eq!(tags["IFD0:Copyright"], rights, "{kind} {name}: EXIF Copyright");
            assert!(tags.get("GPS:GPSLatitude").is_none() && tags.get("ExifIFD:BodySerialNumber").is_none());
        }
    }
}

/// Corpus files (JPEG, PNG, WebP) that `strip` reads; the rest are refused with a reason.
#[test]
fn corpus_strip_is_clean_pixel_exact_and_inspect_recalls_gps_and_serials() {
    let Some(corpus) = common::corpus_dir() else {
        common::skip("../shared/corpus not found; the corpus metadata tests did not run");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stripped");
    let assert = photoshield()
        .args(["strip", "--json", "-j", "2"])
        .arg(&corpus)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let mut written = 0;
    for line in stdout.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(input) = r["input"].as_str() else {
            continue;
        };
        match r["status"].as_str().unwrap() {
            "written" => {
                written += 1;
                let (a, b) = (
                    std::fs::read(input).unwrap(),
                    std::fs::read(r["output"].as_str().unwrap()).unwrap(),
                );
                // Pixels: identical after decoding (animated files: the first frame).
                if let (Ok(x), Ok(y)) = (image::load_from_memory(&a), image::load_from_memory(&b)) {
                    assert!(x.into_rgba8() == y.into_rgba8(), "{input}: pixels changed");
                }
                assert!(
                    !inspect(&b).unwrap().leaks(),
                    "{input}: {:?}",
                    inspect(&b).unwrap().findings
                );
            }
            "failed" => {
                let reason = r["reason"].as_str().unwrap();
                // The AVIF (refused) and the JPEG XL of mat2_dirty_xmp both claim the output
                // mat2_dirty_xmp.jpg; whichever comes second is refused for it (a known sharp
                // edge, see CHANGELOG "Known issues").
                let collision = reason.contains("another input already writes")
                    && (input.ends_with("mat2_dirty_xmp.jxl") || input.ends_with("mat2_dirty_xmp.avif"));
                assert!(
                    reason.contains("unsupported format")
                        || reason.contains("truncated")
                        || reason.contains("lossless strip reads")
                        || collision,
                    "{input}: {reason}"
                );
            }
            _ => {}
        }
    }
    assert!(written >= 50, "only {written} written");
    if !common::have_exiftool() {
        common::skip("exiftool is not installed; the independent checks did not run");
        return;
    }
    let leakcheck = corpus.join("../tools/leakcheck.sh");
    let run = Process::new("bash")
        .arg(&leakcheck)
        .arg("-q")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "exiftool found leaks after strip:\n{}",
        String::from_utf8_lossy(&run.stdout)
    );

    // Recall: every GPS position and serial number exiftool finds, inspect finds too.
    let (mut gps_files, mut serial_files, mut serial_found) = (0, 0, 0);
    let mut missed = Vec::new();
    let mut undecoded = Vec::new();
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md" || e == "tsv") {
            continue;
        }
        let tags = exiftool(&path, &["-GPSLatitude", "-GPSLongitude", "-*Serial*"]).unwrap();
        let Ok(ins) = inspect(&std::fs::read(&path).unwrap()) else {
            continue;
        };
        let lat = tags
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, v)| k.ends_with(":GPSLatitude") && v.is_number());
        let lon = tags
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, v)| k.ends_with(":GPSLongitude") && v.is_number());
        if let (Some((_, lat)), Some((_, lon))) = (lat, lon) {
            gps_files += 1;
            let (la, lo) = ins
                .gps
                .unwrap_or_else(|| panic!("{}: GPS missed", path.display()));
            assert!(
                (la - lat.as_f64().unwrap()).abs() < 1e-5 && (lo - lon.as_f64().unwrap()).abs() < 1e-5,
                "{}: {la},{lo} vs exiftool {lat},{lon}",
                path.display()
            );
        }
        let serials: Vec<_> = tags
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| {
                k.contains("Serial") && !k.contains("Format") && v.to_string().trim_matches('"').trim() != ""
            })
            .collect();
        if !serials.is_empty() {
            serial_files += 1;
            if ins.findings.iter().any(|f| f.category == Category::Serial) {
                serial_found += 1;
                // The value decoded is the one exiftool reads (up to leading zeros).
                let norm = |s: &str| s.trim().trim_start_matches('0').to_string();
                let theirs: Vec<String> = serials
                    .iter()
                    .map(|(_, v)| norm(v.to_string().trim_matches('"')))
                    .collect();
                assert!(
                    ins.serials.iter().any(|s| theirs.contains(&norm(s))),
                    "{}: inspect read {:?}, exiftool {:?}",
                    path.display(),
                    ins.serials,
                    theirs
                );
            } else if ins
                .findings
                .iter()
                .any(|f| f.leak && matches!(f.category, Category::MakerNotes | Category::OtherMetadata))
            {
                // Not decoded, but the block that holds it is reported (and removed).
                undecoded.push(path.file_name().unwrap().to_string_lossy().into_owned());
            } else {
                missed.push(format!(
                    "{} ({:?})",
                    path.file_name().unwrap().to_string_lossy(),
                    serials.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
                ));
            }
            assert!(ins.leaks());
        }
    }
    common::figures(&format!(
        "GPS recall {gps_files}/{gps_files}; serials decoded in {serial_found}/{serial_files} files, \
         reported through the block holding them in {undecoded:?}"
    ));
    assert!(gps_files >= 5);
    assert!(
        missed.is_empty(),
        "serials exiftool finds and inspect does not report: {missed:?}"
    );
    assert!(
        undecoded.is_empty() && serial_found == serial_files,
        "serials decoded in only {serial_found}/{serial_files} files; not decoded in {undecoded:?}"
    );
}

#[test]
fn inspect_exit_codes_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let dirty = dir.path().join("dirty.jpg");
    std::fs::write(&dirty, common::camera_jpeg(64, 48, 1, 5)).unwrap();
    photoshield()
        .arg("inspect")
        .arg(&dirty)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("48.858370, 2.294480"));
    photoshield().arg("strip").arg(&dirty).assert().success();
    let clean = dir.path().join("dirty.protected.jpg");
    photoshield()
        .arg("inspect")
        .arg(&clean)
        .assert()
        .success()
        .stdout(predicate::str::contains("clean"));
    let assert = photoshield()
        .args(["inspect", "--json"])
        .arg(dir.path())
        .assert()
        .code(1);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&assert.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["leaks"], true);
    assert_eq!(lines[0]["inspection"]["serials"][0], "SN-0042-7777");
    assert_eq!(lines[1]["leaks"], false);
}
