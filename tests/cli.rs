//! The `protect` command end to end, on fixtures built in code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use photoshield::metadata::{self, Kind};
use photoshield::Format;

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    // Never pick up the developer's own config file.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

/// Every file under `dir` with its bytes, sorted by relative path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A small shoot: nested folders, orientations, a PNG with text.
fn shoot() -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("shoot");
    fs::create_dir_all(root.join("day1/ceremony")).unwrap();
    fs::write(root.join("day1/a.jpg"), common::camera_jpeg(160, 120, 1, 1)).unwrap();
    fs::write(
        root.join("day1/ceremony/b.jpg"),
        common::camera_jpeg(120, 160, 6, 2),
    )
    .unwrap();
    fs::write(root.join("c.png"), common::png_with_text(90, 60, 3)).unwrap();
    fs::write(root.join("notes.txt"), "not a photo").unwrap();
    dir
}

fn decode(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().into_rgb8()
}

fn assert_clean(bytes: &[u8], format: Format) {
    let found = metadata::scan(bytes, format);
    assert!(
        found.iter().all(|f| f.kind == Kind::Icc),
        "metadata left: {found:?}"
    );
}

#[test]
fn version_carries_the_notices_the_licences_ask_for() {
    photoshield()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")))
        .stdout(predicate::str::contains(
            "based in part on the work of the Independent JPEG Group",
        ))
        .stdout(predicate::str::contains("THIRD_PARTY_LICENSES.md"));
}

#[test]
fn folder_tree_is_mirrored_clean_and_originals_untouched() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    let before = snapshot(&root);
    photoshield()
        .args(["protect", "-j", "2"])
        .arg(&root)
        .arg("-o")
        .arg(dir.path().join("out"))
        .assert()
        .success()
        .stderr(predicate::str::contains("3 written, 1 skipped, 0 failed"));
    assert_eq!(snapshot(&root), before, "originals changed");
    let out = snapshot(&dir.path().join("out"));
    let names: Vec<_> = out
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    // The marker that keeps a later run over a parent folder from protecting these again.
    assert_eq!(
        names,
        [".photoshield", "c.png", "day1/a.jpg", "day1/ceremony/b.jpg"]
    );
    for (path, bytes) in out.iter().filter(|(p, _)| p != Path::new(".photoshield")) {
        let format = photoshield::format::sniff(bytes).unwrap();
        assert_clean(bytes, format);
        assert_eq!(format == Format::Png, path.extension().unwrap() == "png");
    }
    // b.jpg is stored 160x120 with orientation 6: upright it is 120 wide, 160 high.
    let b = decode(&out.iter().find(|(p, _)| p.ends_with("b.jpg")).unwrap().1);
    assert_eq!(b.dimensions(), (120, 160));
}

#[test]
fn without_output_a_folder_gets_a_sibling_folder_and_a_file_a_sibling_file() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    photoshield().arg("protect").arg(&root).assert().success();
    assert!(dir.path().join("shoot-protected/day1/ceremony/b.jpg").is_file());
    let file = root.join("day1/a.jpg");
    photoshield().arg("protect").arg(&file).assert().success();
    assert!(root.join("day1/a.protected.jpg").is_file());
}

#[test]
fn single_file_to_named_output_takes_the_format_from_the_extension() {
    let dir = shoot();
    let out = dir.path().join("x.webp");
    photoshield()
        .arg("protect")
        .arg(dir.path().join("shoot/day1/a.jpg"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        photoshield::format::sniff(&fs::read(&out).unwrap()).unwrap(),
        Format::WebP
    );
}

#[test]
fn stdin_to_stdout() {
    let input = common::camera_jpeg(100, 80, 8, 5);
    let assert = photoshield()
        .args(["protect", "-"])
        .write_stdin(input)
        .assert()
        .success();
    let out = &assert.get_output().stdout;
    assert_clean(out, Format::Jpeg);
    assert_eq!(decode(out).dimensions(), (100, 80));
}

#[test]
fn jobs_1_and_jobs_2_give_identical_bytes() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    for jobs in ["1", "2"] {
        photoshield()
            .args(["protect", "-q", "-j", jobs])
            .arg(&root)
            .arg("-o")
            .arg(dir.path().join(jobs))
            .assert()
            .success();
    }
    assert_eq!(snapshot(&dir.path().join("1")), snapshot(&dir.path().join("2")));
}

#[test]
fn orientations_1_to_8_come_out_upright() {
    let (w, h) = (96, 64);
    let upright = common::quadrants(w, h);
    for o in 1..=8u8 {
        let (stored, sw, sh) = common::store_for_orientation(&upright, w, h, o);
        let spec = common::ExifSpec {
            orientation: Some(o as u16),
            ..Default::default()
        };
        let file = common::with_segments(&common::jpeg(&stored, sw, sh), &[common::exif_segment(&spec)]);
        let assert = photoshield()
            .args(["protect", "-"])
            .write_stdin(file)
            .assert()
            .success();
        let img = decode(&assert.get_output().stdout);
        assert_eq!(img.dimensions(), (w, h), "orientation {o}");
        for (x, y, left, top) in [
            (10, 10, true, true),
            (w - 10, 10, false, true),
            (10, h - 10, true, false),
            (w - 10, h - 10, false, false),
        ] {
            let got = img.get_pixel(x, y).0;
            let want = common::quadrant_colour(left, top);
            let diff = got
                .iter()
                .zip(want)
                .map(|(a, b)| (*a as i32 - b as i32).abs())
                .max()
                .unwrap();
            assert!(
                diff < 40,
                "orientation {o}: pixel ({x},{y}) is {got:?}, want {want:?}"
            );
        }
    }
}

#[test]
fn icc_profile_is_kept_by_default_and_dropped_on_request() {
    let input = common::camera_jpeg(64, 48, 1, 6);
    let kept = photoshield()
        .args(["protect", "-"])
        .write_stdin(input.clone())
        .assert()
        .success();
    let found = metadata::scan(&kept.get_output().stdout, Format::Jpeg);
    assert_eq!(found.iter().map(|f| f.kind).collect::<Vec<_>>(), [Kind::Icc]);
    let dropped = photoshield()
        .args(["protect", "--strip-icc", "-"])
        .write_stdin(input)
        .assert()
        .success();
    assert!(metadata::scan(&dropped.get_output().stdout, Format::Jpeg).is_empty());
}

#[test]
fn bad_inputs_fail_alone_with_a_one_line_reason() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    let bad = root.join("bad");
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("empty.jpg"), b"").unwrap();
    let good = common::camera_jpeg(64, 48, 1, 7);
    fs::write(bad.join("truncated.jpg"), &good[..good.len() / 2]).unwrap();
    fs::write(bad.join("bomb.png"), common::png_bomb_header(100_000, 100_000)).unwrap();
    fs::write(
        bad.join("random.jpg"),
        (0..4096u32).map(|i| common::noise(i, 0, 9)).collect::<Vec<u8>>(),
    )
    .unwrap();
    fs::write(bad.join("heic.jpg"), b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").unwrap();
    // A PNG named .jpg is still a PNG: processed, not refused.
    fs::write(bad.join("really_png.jpg"), common::png_with_text(20, 20, 1)).unwrap();
    std::os::unix::fs::symlink(&bad, bad.join("loop")).unwrap();
    std::os::unix::fs::symlink(bad.join("gone.jpg"), bad.join("dangling.jpg")).unwrap();

    let assert = photoshield()
        .arg("protect")
        .arg(&root)
        .arg("-o")
        .arg(dir.path().join("out"))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let expect = [
        ("bomb.png", "over the limit of 250.0 megapixels"),
        ("dangling.jpg", "no such file"),
        ("empty.jpg", "empty file"),
        ("heic.jpg", "cannot decode HEIC: no 'meta' box"),
        ("loop", "symbolic link loop"),
        ("random.jpg", "not an image"),
        ("truncated.jpg", "truncated"),
    ];
    for (name, reason) in expect {
        let line = stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stderr}"));
        assert!(
            line.starts_with("error: ") && line.contains(reason),
            "{name}: {line}"
        );
    }
    assert!(stderr.contains("4 written, 1 skipped, 7 failed"), "{stderr}");
    assert!(dir.path().join("out/bad/really_png.png").is_file());
    for name in ["empty", "truncated", "bomb", "random", "heic"] {
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("out/bad"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(name))
            .collect();
        assert!(leftovers.is_empty(), "{name}: something was written");
    }
    let names: Vec<_> = snapshot(&dir.path().join("out"))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        names
            .iter()
            .all(|p| !p.to_string_lossy().contains(".photoshield-")),
        "temporary file left: {names:?}"
    );
}

#[test]
fn unwritable_output_folder_fails_each_file_and_writes_nothing() {
    let dir = shoot();
    let blocker = dir.path().join("blocker");
    fs::write(&blocker, b"a file where a folder should be").unwrap();
    photoshield()
        .arg("protect")
        .arg(dir.path().join("shoot"))
        .arg("-o")
        .arg(blocker.join("out"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot create folder"))
        .stderr(predicate::str::contains("3 failed"));
}

#[test]
fn unreadable_file_is_reported() {
    let dir = shoot();
    let f = dir.path().join("shoot/day1/a.jpg");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = photoshield();
    if unsafe_is_root() {
        // Root reads any file: run the binary as the unprivileged user `nobody` (uid 65534),
        // from a copy it may execute, in a folder it may enter and write.
        use std::os::unix::process::CommandExt;
        let bin = dir.path().join("photoshield");
        fs::copy(assert_cmd::cargo::cargo_bin("photoshield"), &bin).unwrap();
        for p in [
            dir.path(),
            &dir.path().join("shoot"),
            &dir.path().join("shoot/day1"),
            &bin,
        ] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut std_cmd = std::process::Command::new(&bin);
        std_cmd
            .uid(65534)
            .gid(65534)
            .env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
        cmd = Command::from_std(std_cmd);
        if std::process::Command::new(&bin)
            .uid(65534)
            .gid(65534)
            .arg("--version")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            common::skip("running as root and the user nobody cannot run the binary: the unreadable-file test did not run");
            return;
        }
    }
    cmd.arg("protect")
        .arg(&f)
        .arg("-o")
        .arg(dir.path().join("o.jpg"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("permission denied"));
}

fn unsafe_is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn existing_outputs_follow_if_exists() {
    let dir = shoot();
    let file = dir.path().join("shoot/day1/a.jpg");
    let out = dir.path().join("o.jpg");
    fs::write(&out, b"precious").unwrap();
    photoshield()
        .arg("protect")
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "exists (use --if-exists skip or overwrite)",
        ));
    photoshield()
        .args(["protect", "--if-exists", "skip"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("0 written, 1 skipped"));
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    photoshield()
        .args(["protect", "--if-exists", "overwrite"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_clean(&fs::read(&out).unwrap(), Format::Jpeg);
}

#[test]
fn an_input_is_never_overwritten() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    let before = snapshot(&root);
    let file = root.join("day1/a.jpg");
    photoshield()
        .args(["protect", "--if-exists", "overwrite"])
        .arg(&file)
        .arg("-o")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-o names the input itself"));
    photoshield()
        .arg("protect")
        .arg(&root)
        .arg("-o")
        .arg(&root)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the output folder is the input folder"));
    assert_eq!(snapshot(&root), before);
}

#[test]
fn output_folder_inside_the_input_is_not_read_back() {
    let dir = shoot();
    let root = dir.path().join("shoot");
    for _ in 0..2 {
        photoshield()
            .args(["protect", "--if-exists", "overwrite"])
            .arg(&root)
            .arg("-o")
            .arg(root.join("protected"))
            .assert()
            .success()
            .stderr(predicate::str::contains("3 written"));
    }
    assert!(!root.join("protected/protected").exists());
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let dir = shoot();
    photoshield()
        .args(["protect", "--dry-run"])
        .arg(dir.path().join("shoot"))
        .arg("-o")
        .arg(dir.path().join("out"))
        .assert()
        .success()
        .stdout(predicate::str::contains("b.jpg -> "))
        .stderr(predicate::str::contains("3 would write"));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn json_gives_one_record_per_file_and_a_summary() {
    let dir = shoot();
    let assert = photoshield()
        .args(["protect", "--json"])
        .arg(dir.path().join("shoot"))
        .arg("-o")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 5);
    let b = records
        .iter()
        .find(|r| r["input"].as_str().is_some_and(|s| s.ends_with("b.jpg")))
        .unwrap();
    assert_eq!(b["status"], "written");
    assert_eq!(b["orientation"], 6);
    assert_eq!(b["output_size"], serde_json::json!([120, 160]));
    let removed: Vec<&str> = b["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["exif", "xmp", "comment"]);
    assert_eq!(records[4]["summary"]["written"], 3);
}

#[test]
fn max_size_and_presets_shrink_but_never_enlarge() {
    let input = common::camera_jpeg(300, 200, 6, 8);
    let a = photoshield()
        .args(["protect", "--max-size", "150", "-"])
        .write_stdin(input.clone())
        .assert()
        .success();
    assert_eq!(decode(&a.get_output().stdout).dimensions(), (150, 100));
    let b = photoshield()
        .args(["protect", "--max-size", "5000", "-"])
        .write_stdin(input.clone())
        .assert()
        .success();
    assert_eq!(decode(&b.get_output().stdout).dimensions(), (300, 200));
    let c = photoshield()
        .args(["protect", "--preset", "web", "-"])
        .write_stdin(input)
        .assert()
        .success();
    assert_eq!(
        photoshield::format::sniff(&c.get_output().stdout).unwrap(),
        Format::WebP
    );
}

#[test]
fn config_file_sets_defaults_and_flags_override_it() {
    let dir = shoot();
    let cfg = dir.path().join("config.toml");
    fs::write(&cfg, "max-size = 50\nformat = 'png'\n").unwrap();
    let input = common::camera_jpeg(200, 100, 1, 9);
    let a = photoshield()
        .args(["protect", "--config"])
        .arg(&cfg)
        .arg("-")
        .write_stdin(input.clone())
        .assert()
        .success();
    let out = &a.get_output().stdout;
    assert_eq!(photoshield::format::sniff(out).unwrap(), Format::Png);
    assert_eq!(decode(out).dimensions(), (50, 25));
    let b = photoshield()
        .args(["protect", "--max-size", "80", "--config"])
        .arg(&cfg)
        .arg("-")
        .write_stdin(input)
        .assert()
        .success();
    assert_eq!(decode(&b.get_output().stdout).dimensions(), (80, 40));
    // The default location is read too.
    let home = dir.path().join("xdg");
    fs::create_dir_all(home.join("photoshield")).unwrap();
    fs::write(home.join("photoshield/config.toml"), "qualty = 3").unwrap();
    photoshield()
        .env("XDG_CONFIG_HOME", &home)
        .args(["protect", "-"])
        .write_stdin(vec![1u8])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid config file"));
}

#[test]
fn usage_errors_exit_2() {
    photoshield()
        .args(["protect", "--quality", "0", "x.jpg"])
        .assert()
        .code(2);
    photoshield()
        .args(["protect", "/nonexistent/photo.jpg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such file or folder"));
    photoshield()
        .args(["protect", "-", "-o", "x.bmp"])
        .write_stdin(vec![0u8])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot tell the output format"));
}

#[test]
fn gif_keeps_the_first_frame_and_says_so() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut gif = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut gif);
        for v in [10u8, 200] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(8, 8, image::Rgba([v, v, v, 255])),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            enc.encode_frame(frame).unwrap();
        }
    }
    let assert = photoshield()
        .args(["protect", "--json", "-o", "-", "-"])
        .write_stdin(gif)
        .assert();
    // --json and stdout image output conflict: usage error.
    assert.code(2);
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("anim.gif");
    fs::write(&input, {
        let mut gif = Vec::new();
        let mut enc = GifEncoder::new(&mut gif);
        for v in [10u8, 200] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(8, 8, image::Rgba([v, v, v, 255])),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            enc.encode_frame(frame).unwrap();
        }
        drop(enc);
        gif
    })
    .unwrap();
    let assert = photoshield()
        .args(["protect", "--json"])
        .arg(&input)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains("animated: kept the first of 2 frames"),
        "{stdout}"
    );
    let png = fs::read(dir.path().join("anim.protected.png")).unwrap();
    assert_eq!(decode(&png).get_pixel(3, 3).0, [10, 10, 10]);
}

#[test]
fn sample_photos_in_the_repository_match_their_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    let hint = "run `cargo run --example make_fixtures`";
    for (rel, bytes) in common::sample_photos() {
        let committed = fs::read(root.join(rel)).unwrap();
        if !rel.ends_with(".jpg") {
            assert_eq!(committed, bytes, "{rel}: {hint}");
            continue;
        }
        // jpeg-encoder's AVX2 and scalar paths round a few DCT coefficients differently, so
        // the compressed data depends on the CPU: everything before it (the metadata segments
        // and tables) must be identical, and the pixels the same within rounding.
        let scan = |b: &[u8]| b.windows(2).position(|p| p == [0xFF, 0xDA]).unwrap();
        assert_eq!(
            committed[..scan(&committed)],
            bytes[..scan(&bytes)],
            "{rel}: {hint}"
        );
        let (a, b) = (decode(&committed), decode(&bytes));
        assert_eq!(a.dimensions(), b.dimensions(), "{rel}: {hint}");
        let diffs: Vec<u8> = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .collect();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let max = diffs.iter().copied().max().unwrap_or(0);
        assert!(
            mean < 0.5 && max <= 24,
            "{rel}: pixels differ (mean {mean:.3}, max {max}): {hint}"
        );
    }
}
