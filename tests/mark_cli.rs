//! `keygen`, `protect --mark` and `detect` end to end.

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

/// `photoshield keygen` writing `name` in `dir`; returns the key's path.
fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    photoshield()
        .args(["keygen", "-o"])
        .arg(&key)
        .assert()
        .success()
        .stderr(predicate::str::contains("fingerprint"));
    key
}

/// A folder of camera JPEGs large enough to carry the mark, and a small one that is not.
fn shoot(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("shoot");
    fs::create_dir_all(root.join("day2")).unwrap();
    fs::write(root.join("a.jpg"), common::camera_jpeg(1600, 1067, 1, 11)).unwrap();
    fs::write(root.join("day2/b.jpg"), common::camera_jpeg(1200, 1600, 6, 12)).unwrap();
    fs::write(root.join("c.jpg"), common::camera_jpeg(1400, 933, 3, 13)).unwrap();
    root
}

#[test]
fn keygen_writes_a_private_key_and_never_replaces_one() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let text = fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("photoshield mark key v1\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The key itself is never printed.
    let hex = text.lines().nth(1).unwrap();
    photoshield()
        .args(["keygen", "-o"])
        .arg(&key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing to replace a key"))
        .stderr(predicate::str::contains(hex).not());
    assert_eq!(fs::read_to_string(&key).unwrap(), text);
    // Two keys differ.
    let other = keygen(dir.path(), "other.key");
    assert_ne!(fs::read_to_string(&other).unwrap(), text);
}

#[test]
fn protect_marks_every_file_and_detect_reads_the_ids_back() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let root = shoot(dir.path());
    let out = dir.path().join("out");
    photoshield()
        .args([
            "protect",
            "-q",
            "--mark",
            "0xC0FFEE42",
            "--text",
            "© Jane",
            "--perturb",
            "low",
            "--key",
        ])
        .arg(&key)
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let assert = photoshield()
        .args(["detect", "--json", "--key"])
        .arg(&key)
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let records: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 3, "{stdout}");
    for r in &records {
        assert_eq!(r["detected"], true, "{r}");
        assert_eq!(r["id"], "0xc0ffee42", "{r}");
        assert_eq!(r["payload_hex"], "c0ffee42", "{r}");
        assert!(r["score"].as_f64().unwrap() >= 7.0, "{r}");
    }
    photoshield()
        .args(["detect", "--key"])
        .arg(&key)
        .arg(out.join("a.jpg"))
        .assert()
        .success()
        .stdout(predicate::str::contains("a.jpg: mark 0xc0ffee42 (score"));

    // The originals carry nothing: exit 1, 'no mark found', no ID.
    photoshield()
        .args(["detect", "--key"])
        .arg(&key)
        .arg(&root)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no mark found").count(3))
        .stdout(predicate::str::contains("0xc0ffee42").not());
    // Nor does a mark read with another key.
    let other = keygen(dir.path(), "other.key");
    photoshield()
        .args(["detect", "--key"])
        .arg(&other)
        .arg(out.join("a.jpg"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no mark found"));
}

/// Issue 17: `--preset instagram` made a 2:3 portrait 720 px wide, under the mark's minimum,
/// and wrote it unmarked with only a JSON note. Every size a preset delivers carries the mark.
#[test]
fn preset_sized_portraits_and_landscapes_carry_the_mark() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let root = dir.path().join("shoot");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("portrait.jpg"), common::camera_jpeg(1600, 2400, 1, 21)).unwrap();
    fs::write(root.join("tall.jpg"), common::camera_jpeg(1600, 2000, 1, 22)).unwrap();
    fs::write(root.join("wide.jpg"), common::camera_jpeg(2400, 1258, 1, 23)).unwrap();
    let out = dir.path().join("out");
    let assert = photoshield()
        .args([
            "protect",
            "--json",
            "--preset",
            "instagram",
            "--mark",
            "0x4A414E45",
            "--key",
        ])
        .arg(&key)
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(!stdout.contains("no invisible mark"), "{stdout}");
    for name in ["portrait.jpg", "tall.jpg", "wide.jpg"] {
        let written = image::open(out.join(name)).unwrap();
        assert!(
            written.width() < 1100,
            "{name}: {}x{}",
            written.width(),
            written.height()
        );
        photoshield()
            .args(["detect", "--key"])
            .arg(&key)
            .arg(out.join(name))
            .assert()
            .success()
            .stdout(predicate::str::contains("mark 0x4a414e45"));
    }
}

#[test]
fn marked_outputs_are_identical_whatever_the_jobs() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let root = shoot(dir.path());
    for jobs in ["1", "2"] {
        photoshield()
            .args(["protect", "-q", "--mark", "77", "-j", jobs, "--key"])
            .arg(&key)
            .arg(&root)
            .arg("-o")
            .arg(dir.path().join(jobs))
            .assert()
            .success();
    }
    for name in ["a.jpg", "day2/b.jpg", "c.jpg"] {
        assert_eq!(
            fs::read(dir.path().join("1").join(name)).unwrap(),
            fs::read(dir.path().join("2").join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_64_bit_id_needs_mark_bits_64() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let root = shoot(dir.path());
    photoshield()
        .args(["protect", "--mark", "0x123456789", "--key"])
        .arg(&key)
        .arg(root.join("a.jpg"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "does not fit in 32 bits; use --mark-bits 64",
        ));
    let out = dir.path().join("a64.jpg");
    photoshield()
        .args([
            "protect",
            "-q",
            "--mark",
            "0x123456789",
            "--mark-bits",
            "64",
            "--key",
        ])
        .arg(&key)
        .arg(root.join("a.jpg"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    photoshield()
        .args(["detect", "--key"])
        .arg(&key)
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("mark 0x0000000123456789"));
}

#[test]
fn bad_keys_and_ids_are_usage_errors_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let root = shoot(dir.path());
    let photo = root.join("a.jpg");
    let bad = dir.path().join("bad.key");
    fs::write(&bad, "just some text\n").unwrap();
    let missing = dir.path().join("missing.key");
    for (args, message) in [
        (vec!["--mark", "5"], "--mark needs --key KEYFILE".to_string()),
        (
            vec!["--key", bad.to_str().unwrap()],
            "--key goes with --mark".to_string(),
        ),
        (
            vec!["--mark", "5", "--key", bad.to_str().unwrap()],
            format!("{}: not a photoshield key file", bad.display()),
        ),
        (
            vec!["--mark", "5", "--key", missing.to_str().unwrap()],
            format!("cannot read key file {}: no such file", missing.display()),
        ),
        (
            vec!["--mark", "five", "--key", bad.to_str().unwrap()],
            "is not a number".to_string(),
        ),
    ] {
        photoshield()
            .arg("protect")
            .args(&args)
            .arg(&photo)
            .arg("-o")
            .arg(dir.path().join("never.jpg"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message));
    }
    assert!(!dir.path().join("never.jpg").exists());
    photoshield()
        .args(["detect", "--key"])
        .arg(&bad)
        .arg(&photo)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a photoshield key file"));
}

/// Protecting `photo` with a mark it cannot carry at full strength writes the output with a
/// note saying `why`; with `--require-mark` the file fails with `error` and nothing is written.
fn assert_written_with_note_unless_required(photo: &Path, why: &[&str], error: &str) {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "mark.key");
    let ext = photo.extension().unwrap().to_str().unwrap();
    let out = dir.path().join(format!("out.{ext}"));
    let assert = photoshield()
        .args(["protect", "--json", "--mark", "5", "--key"])
        .arg(&key)
        .arg(photo)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(why.iter().all(|w| stdout.contains(w)), "{stdout}");
    assert!(out.exists());
    let required = dir.path().join(format!("required.{ext}"));
    let name = photo.file_name().unwrap().to_str().unwrap();
    photoshield()
        .args(["protect", "--require-mark", "--mark", "5", "--key"])
        .arg(&key)
        .arg(photo)
        .arg("-o")
        .arg(&required)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(name).and(predicate::str::contains(error)));
    assert!(!required.exists());
}

#[test]
fn a_photo_too_small_for_the_mark_is_still_protected_unless_the_mark_is_required() {
    let dir = TempDir::new().unwrap();
    let small = dir.path().join("small.jpg");
    fs::write(&small, common::camera_jpeg(480, 320, 1, 3)).unwrap();
    assert_written_with_note_unless_required(
        &small,
        &["no invisible mark", "512 px"],
        "too small to carry the mark",
    );
}

#[test]
fn a_flat_image_gets_a_weak_mark_with_a_note_or_fails_when_the_mark_is_required() {
    let dir = TempDir::new().unwrap();
    let flat = dir.path().join("flat.png");
    image::RgbImage::from_pixel(1200, 800, image::Rgb([40, 40, 40]))
        .save(&flat)
        .unwrap();
    assert_written_with_note_unless_required(&flat, &["too flat for the mark"], "too flat for the mark");
}
