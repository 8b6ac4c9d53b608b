//! Hostile files, faults while writing, interruption and concurrent runs: nothing is lost, no
//! partial file remains, no panic reaches the user.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

use photoshield::{FileContext, Options, Pipeline};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("photoshield")
}

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

/// Every file below `dir`, as paths.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn assert_no_temporary_files(dir: &Path) {
    let tmp: Vec<_> = files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".photoshield-"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

/// Every output decodes completely.
fn assert_complete(dir: &Path) {
    for f in files(dir)
        .into_iter()
        .filter(|p| !p.ends_with(photoshield::batch::OUTPUT_MARKER))
    {
        let bytes = fs::read(&f).unwrap();
        assert!(
            photoshield::container::jpeg::is_complete(&bytes) || !bytes.starts_with(&[0xFF, 0xD8]),
            "{} is partial",
            f.display()
        );
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn truncations_and_corruptions_never_panic_the_pipeline() {
    let options = Options {
        max_pixels: 4_000_000,
        ..Options::default()
    };
    let pipeline = Pipeline::new(&options).unwrap();
    let webp = {
        let px = photoshield::Pixels::new(40, 30, photoshield::Layout::Rgb8, common::landscape(40, 30, 1));
        photoshield::codec::encode(
            &px,
            photoshield::codec::EncodeSettings {
                format: photoshield::OutputFormat::WebP,
                quality: 80,
            },
            None,
        )
        .unwrap()
    };
    let sources = [
        common::camera_jpeg(48, 32, 6, 1),
        common::png_with_text(40, 30, 2),
        webp,
    ];
    let start = Instant::now();
    for file in &sources {
        let step = (file.len() / 300).max(1);
        for cut in (0..file.len()).step_by(step) {
            let _ = pipeline.process(&file[..cut], &FileContext::default());
        }
        for i in (0..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[i] = bad[i].wrapping_add(0x55);
            let _ = pipeline.process(&bad, &FileContext::default());
        }
    }
    assert!(start.elapsed() < Duration::from_secs(20));
}

/// Crafted headers: huge claimed sizes in every format, frames by the thousand, a TIFF with a
/// huge strip count. Each is refused or handled quickly, within the pixel limit.
#[test]
fn decompression_bombs_and_crafted_headers_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("bomb.png"), common::png_bomb_header(100_000, 100_000)).unwrap();
    // JPEG SOF0 claiming 65000 x 65000.
    let mut jpeg = common::jpeg(&common::landscape(16, 16, 1), 16, 16);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    fs::write(d.join("bomb.jpg"), &jpeg).unwrap();
    // WebP VP8X canvas of 16384 x 16384 with no image data.
    let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\xff\x3f\0\xff\x3f\0".to_vec();
    let len = (webp.len() - 8) as u32;
    webp[4..8].copy_from_slice(&len.to_le_bytes());
    fs::write(d.join("bomb.webp"), &webp).unwrap();
    // A GIF with 5000 frames.
    let mut gif = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff".to_vec();
    for _ in 0..5000 {
        gif.extend_from_slice(b"\x2c\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0");
    }
    gif.push(0x3B);
    fs::write(d.join("frames.gif"), &gif).unwrap();
    // A TIFF with a strip count of 2^30.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32, u32); 6] = [
        (256, 4, 1, 64),
        (257, 4, 1, 64),
        (258, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1 << 30, 8),
        (279, 4, 1 << 30, 8),
    ];
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, count, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&typ.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&[0; 4]);
    fs::write(d.join("strips.tif"), &tiff).unwrap();

    let start = Instant::now();
    let out = photoshield()
        .args(["protect", "--json"])
        .arg(d)
        .arg("-o")
        .arg(d.join("out"))
        .assert()
        .code(1);
    assert!(start.elapsed() < Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let record = |name: &str| -> serde_json::Value {
        stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["input"].as_str().is_some_and(|i| i.ends_with(name)))
            .unwrap()
    };
    assert!(record("bomb.png")["reason"]
        .as_str()
        .unwrap()
        .contains("over the limit"));
    assert!(record("bomb.jpg")["reason"]
        .as_str()
        .unwrap()
        .contains("over the limit"));
    assert_eq!(record("bomb.webp")["status"], "failed");
    assert_eq!(record("strips.tif")["status"], "failed");
    let frames = record("frames.gif");
    assert_eq!(frames["status"], "written", "{frames}");
    assert!(frames["notes"][0].as_str().unwrap().contains("5000 frames"));
}

#[test]
fn odd_file_system_entries_are_reported_and_the_rest_processed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    fs::create_dir_all(root.join("folder.jpg")).unwrap(); // a folder with an image name
    fs::write(root.join("good.jpg"), common::camera_jpeg(32, 24, 1, 1)).unwrap();
    let bad_name = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    fs::write(root.join(bad_name), common::camera_jpeg(32, 24, 1, 2)).unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("elsewhere.jpg"), common::camera_jpeg(32, 24, 1, 3)).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let out = dir.path().join("out");
    photoshield()
        .arg("protect")
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("3 written"));
    assert!(out.join(bad_name).is_file(), "a non-UTF-8 name is kept as it is");
    assert!(
        out.join("link/elsewhere.jpg").is_file(),
        "links are followed; outputs stay inside the output tree"
    );
    assert!(files(&outside).len() == 1, "nothing written outside");
}

#[test]
fn a_full_disk_fails_the_files_it_hits_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("small.png"), common::png_with_text(16, 16, 1)).unwrap();
    fs::write(root.join("big.png"), common::png_with_text(400, 300, 2)).unwrap();
    let before = fs::read(root.join("big.png")).unwrap();
    let out = dir.path().join("out");
    // A file-size limit of 20 KB stands in for a disk that fills up: writes past it fail.
    let mut cmd = Process::new(bin());
    cmd.args(["protect", "--no-config"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 20_000,
                rlim_max: 20_000,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("big.png: cannot write"), "{stderr}");
    assert!(out.join("small.png").is_file());
    assert!(!out.join("big.png").exists());
    assert_no_temporary_files(&out);
    assert_eq!(fs::read(root.join("big.png")).unwrap(), before);
}

fn batch_folder(n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    fs::create_dir_all(&root).unwrap();
    let photo = common::camera_jpeg(1200, 900, 1, 1);
    for i in 0..n {
        fs::write(root.join(format!("p{i:03}.jpg")), &photo).unwrap();
    }
    dir
}

#[test]
fn ctrl_c_stops_promptly_keeps_complete_outputs_and_a_rerun_finishes() {
    let dir = batch_folder(60);
    let (root, out) = (dir.path().join("in"), dir.path().join("out"));
    let mut child = Process::new(bin())
        .args([
            "protect",
            "--no-config",
            "-q",
            "-j",
            "1",
            "--text",
            "© Jane",
            "--perturb",
            "low",
        ])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first outputs, then interrupt.
    let start = Instant::now();
    while files(&out)
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".photoshield-"))
        .count()
        < 2
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no output appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let interrupted = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        interrupted.elapsed() < Duration::from_secs(5),
        "did not stop promptly"
    );
    assert_eq!(status.code(), Some(130));
    let written = files(&out).len();
    assert!(written < 60, "the batch was not interrupted ({written} written)");
    assert_no_temporary_files(&out);
    assert_complete(&out);
    photoshield()
        .args([
            "protect",
            "-q",
            "--if-exists",
            "skip",
            "-j",
            "2",
            "--text",
            "© Jane",
            "--perturb",
            "low",
        ])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let outputs = files(&out);
    assert_eq!(
        outputs
            .iter()
            .filter(|p| !p.ends_with(photoshield::batch::OUTPUT_MARKER))
            .count(),
        60
    );
    assert_complete(&out);
}

#[test]
fn two_runs_into_the_same_folder_do_not_corrupt_each_other() {
    let dir = batch_folder(24);
    let (root, out) = (dir.path().join("in"), dir.path().join("out"));
    let spawn = |text: &str| {
        Process::new(bin())
            .args([
                "protect",
                "--no-config",
                "-q",
                "-j",
                "2",
                "--if-exists",
                "overwrite",
                "--text",
                text,
            ])
            .arg(&root)
            .arg("-o")
            .arg(&out)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("run A"), spawn("run B"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let outputs: Vec<_> = files(&out)
        .into_iter()
        .filter(|p| !p.ends_with(photoshield::batch::OUTPUT_MARKER))
        .collect();
    assert_eq!(outputs.len(), 24);
    assert_no_temporary_files(&out);
    assert_complete(&out);
}
