//! The sharp edges a new user meets (issue 17, and the signal and file-name items of issue 20),
//! end to end through the binary: preset sizes, output names, text that does not fit, closed
//! pipes, notes, warnings, empty folders, existing outputs, signals, usage errors, `compare`
//! of resized copies, negative numbers, completions and the man page.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

use photoshield::pixels::{Layout, Pixels};
use photoshield::watermark::{NoticeStyle, Renderer, Tokens, Watermark};
use photoshield::{Options, Pipeline, Preset};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("photoshield")
}

fn photoshield() -> Command {
    let mut cmd = Command::cargo_bin("photoshield").unwrap();
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-photoshield-test");
    cmd
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).unwrap();
    (img.width(), img.height())
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A protected copy of a `w` x `h` photo through stdin/stdout with `args`.
fn protect_stdin(w: u32, h: u32, args: &[&str]) -> (Vec<u8>, String) {
    let out = photoshield()
        .args(["protect", "--no-config"])
        .args(args)
        .arg("-")
        .write_stdin(common::camera_jpeg(w, h, 1, 3))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    (out.stdout, err)
}

// Item 3: every preset delivers what its platform keeps, the notice band inside the budget.

#[test]
fn instagram_portraits_are_1080_wide_and_at_most_4_to_5_with_the_band() {
    // A 2:3 portrait was 720 px wide (Instagram enlarges it) and 717x1111 with a band.
    let (plain, _) = protect_stdin(1600, 2400, &["--preset", "instagram"]);
    assert_eq!(dims(&plain), (1080, 1350), "cropped to 4:5 as Instagram would");
    let (banded, err) = protect_stdin(
        1600,
        2400,
        &[
            "--preset",
            "instagram",
            "--notice",
            "Not licensed for AI training",
        ],
    );
    assert_eq!(dims(&banded), (1080, 1350), "the band is inside 1080x1350");
    assert!(err.contains("note: <stdin>: cropped to"), "{err}");
    // 4:5 exactly, landscape and square keep their shape; 1080 wide.
    let (square, _) = protect_stdin(1500, 1500, &["--preset", "instagram"]);
    assert_eq!(dims(&square), (1080, 1080));
    let (landscape, err) = protect_stdin(1800, 1200, &["--preset", "instagram"]);
    assert_eq!(dims(&landscape), (1080, 720));
    assert!(!err.contains("cropped"), "{err}");
    // A panorama is cropped to 1.91:1, the widest shape Instagram shows.
    let (pano, _) = protect_stdin(2400, 600, &["--preset", "instagram"]);
    let (w, h) = dims(&pano);
    assert_eq!(w, 1080);
    assert!((565..=566).contains(&h), "{w}x{h}");
    // Never enlarged: a small portrait keeps its width and gets the 4:5 shape.
    let (small, _) = protect_stdin(400, 600, &["--preset", "instagram"]);
    assert_eq!(dims(&small), (400, 500));
}

#[test]
fn long_edge_presets_count_the_notice_band_in_the_long_edge() {
    for (preset, edge) in [("facebook", 2048u32), ("web", 2048)] {
        let (out, _) = protect_stdin(1500, 3000, &["--preset", preset, "--notice", "No AI training"]);
        let (w, h) = dims(&out);
        assert!(h <= edge && h >= edge - 1, "{preset}: {w}x{h}");
        let (plain, _) = protect_stdin(1500, 3000, &["--preset", preset]);
        assert_eq!(dims(&plain), (1024, 2048), "{preset}");
    }
    let (out, _) = protect_stdin(3000, 1500, &["--max-size", "1000", "--notice", "No AI training"]);
    let (w, h) = dims(&out);
    assert_eq!(w, 1000);
    assert!(h < 1000 && h > 500, "{w}x{h}");
}

#[test]
fn the_library_sizes_agree_with_the_presets() {
    let p = Pipeline::new(&Options::preset(Preset::Instagram)).unwrap();
    let t = Tokens::default();
    assert_eq!(p.fitted_size(4000, 6000, &t), (1080, 1350));
    assert_eq!(p.fitted_size(6000, 4000, &t), (1080, 720));
    assert_eq!(p.fitted_size(720, 1080, &t), (720, 900));
    let x = Pipeline::new(&Options::preset(Preset::X)).unwrap();
    assert_eq!(x.fitted_size(8000, 6000, &t), (4096, 3072));
    assert_eq!(x.fitted_size(3000, 2000, &t), (3000, 2000));
}

// Item 4: an explicit output name's extension agrees with the format.

#[test]
fn the_output_extension_decides_the_format_or_the_contradiction_is_refused() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("in.jpg");
    fs::write(&input, common::camera_jpeg(300, 200, 1, 1)).unwrap();
    let webp = dir.path().join("x.webp");
    photoshield()
        .args(["protect", "--no-config", "--preset", "instagram"])
        .arg(&input)
        .arg("-o")
        .arg(&webp)
        .assert()
        .success();
    let bytes = fs::read(&webp).unwrap();
    assert_eq!(
        photoshield::format::sniff(&bytes).unwrap(),
        photoshield::Format::WebP
    );

    let png = dir.path().join("e4.png");
    photoshield()
        .args(["protect", "--no-config", "--format", "jpeg"])
        .arg(&input)
        .arg("-o")
        .arg(&png)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the extension says PNG but --format says JPEG",
        ));
    assert!(!png.exists());

    photoshield()
        .args(["protect", "--no-config"])
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("x.gif"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("writes .jpg, .png or .webp"));

    // strip keeps the data as it is: its output must be named for it.
    photoshield()
        .arg("strip")
        .arg(&input)
        .arg("-o")
        .arg(&png)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("strip keeps the input's JPEG data"));
    assert!(!png.exists());
    // Standard input is only known once read: the file fails with the same reason.
    photoshield()
        .args(["strip", "-", "-o"])
        .arg(&png)
        .write_stdin(common::camera_jpeg(64, 48, 1, 1))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is named .png but the data is JPEG"));
    assert!(!png.exists());
}

// Item 5: text that does not fit shrinks, then wraps, or is refused with a note; never clipped.

fn grey(w: u32, h: u32) -> Pixels {
    Pixels::new(w, h, Layout::Rgb8, vec![90; (w * h * 3) as usize])
}

#[test]
fn long_watermark_text_shrinks_to_fit_instead_of_being_clipped() {
    let settings = Watermark {
        text: Some("© 2008 Jane Doe Photography".into()),
        size: 12.0,
        ..Watermark::default()
    };
    let renderer = Renderer::new(&settings).unwrap();
    let img = grey(640, 427);
    let (mask, x, _) = renderer.text_coverage(&img, &Tokens::default()).unwrap().unwrap();
    // The glyphs lie inside the image: nothing of the text is cut.
    let inked: Vec<usize> = (0..mask.width)
        .filter(|&c| (0..mask.height).any(|r| mask.data[r * mask.width + c] > 0))
        .collect();
    let (first, last) = (inked[0] as i64 + x, *inked.last().unwrap() as i64 + x);
    assert!(first >= 0 && last < 640, "ink from {first} to {last}");
    let mut notes = Vec::new();
    renderer
        .apply_noting(img, &Tokens::default(), &mut notes)
        .unwrap();
    assert!(notes.iter().any(|n| n.contains("too wide")), "{notes:?}");
}

#[test]
fn a_notice_on_a_tiny_image_wraps_and_an_unbreakable_one_is_refused_with_a_note() {
    for style in [NoticeStyle::Band, NoticeStyle::Overlay] {
        let settings = Watermark {
            notice: Some("Not licensed for AI training".into()),
            notice_style: style,
            ..Watermark::default()
        };
        let renderer = Renderer::new(&settings).unwrap();
        let mut notes = Vec::new();
        let out = renderer
            .apply_noting(grey(100, 100), &Tokens::default(), &mut notes)
            .unwrap();
        assert_eq!(out.width, 100);
        assert!(
            notes.iter().any(|n| n.contains("broken into")),
            "{style:?}: {notes:?}"
        );
        if style == NoticeStyle::Band {
            // The band grew to hold the lines.
            assert!(out.height > 100 + 40, "{}", out.height);
        }
    }
    let settings = Watermark {
        text: Some("Supercalifragilisticexpialidocious".into()),
        ..Watermark::default()
    };
    let renderer = Renderer::new(&settings).unwrap();
    let mut notes = Vec::new();
    let img = grey(80, 80);
    let out = renderer
        .apply_noting(img.clone(), &Tokens::default(), &mut notes)
        .unwrap();
    assert_eq!(out.data, img.data, "nothing drawn");
    assert!(notes.iter().any(|n| n.contains("not drawn")), "{notes:?}");
}

#[test]
fn fitting_notes_reach_the_user() {
    let (_, err) = protect_stdin(
        200,
        150,
        &["--text", "© 2008 Jane Doe Photography", "--size", "12"],
    );
    assert!(
        err.contains("note: <stdin>: the watermark text was too wide"),
        "{err}"
    );
}

// Item 8: a closed pipe ends the run quietly with the documented code, never a panic.

#[test]
fn a_closed_stderr_or_stdout_ends_quietly_with_code_141() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("in");
    fs::create_dir(&root).unwrap();
    // More lines than a pipe holds (64 KB), so the closed end is hit whatever the timing.
    for i in 0..1500 {
        fs::write(root.join(format!("bad{i:04}.jpg")), b"not a jpeg").unwrap();
    }
    // stderr closed before the first error line.
    let mut child = Process::new(bin())
        .args(["protect", "--no-config", "-j", "1"])
        .arg(&root)
        .arg("-o")
        .arg(dir.path().join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{status:?}");

    // stdout closed under `inspect --json` after the first record.
    let mut child = Process::new(bin())
        .args(["inspect", "--json"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{status:?} {err}");
    assert!(!err.contains("panicked"), "{err}");
}

// Item 9: per-file notes as `note: FILE: ...` lines, not under --quiet.

#[test]
fn per_file_notes_are_printed_unless_quiet() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("a.jpg");
    fs::write(&input, common::camera_jpeg(160, 120, 1, 2)).unwrap();
    let args = ["--perturb", "low", "--quality", "60"];
    photoshield()
        .args(["protect", "--no-config"])
        .args(args)
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o1.jpg"))
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "note: {}: quality raised to 85",
            input.display()
        )));
    photoshield()
        .args(["protect", "--no-config", "-q"])
        .args(args)
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o2.jpg"))
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
}

// Item 10: watermark settings without anything to draw are checked and warned about.

#[test]
fn watermark_settings_without_text_are_validated_and_warned_about() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("a.jpg");
    fs::write(&input, common::camera_jpeg(80, 60, 1, 2)).unwrap();
    photoshield()
        .args(["protect", "--no-config", "--opacity", "1.5"])
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "opacity must be between 0 and 1, not 1.5",
        ));
    photoshield()
        .args([
            "protect",
            "--no-config",
            "--position",
            "tile",
            "--logo-size",
            "10",
        ])
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o.jpg"))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: --position has no effect without --text",
        ))
        .stderr(predicate::str::contains(
            "warning: --logo-size has no effect without --logo",
        ));
}

// Item 11: an empty folder says that no images were found and what was skipped.

#[test]
fn an_empty_folder_says_no_images_were_found() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("empty");
    fs::create_dir(&root).unwrap();
    photoshield()
        .args(["protect", "--no-config"])
        .arg(&root)
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: no images found in"));
    fs::write(root.join("notes.txt"), "hello").unwrap();
    fs::write(root.join("list.csv"), "a,b").unwrap();
    photoshield()
        .args(["protect", "--no-config"])
        .arg(&root)
        .assert()
        .success()
        .stderr(predicate::str::contains("no images found in"))
        .stderr(predicate::str::contains("2 files were skipped as not images"));
}

// Item 12: existing outputs are told in one line with the flag that resolves them.

#[test]
fn existing_outputs_are_collapsed_into_one_line() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("in");
    fs::create_dir(&root).unwrap();
    for i in 0..6 {
        fs::write(root.join(format!("p{i}.jpg")), common::camera_jpeg(64, 48, 1, i)).unwrap();
    }
    let out = dir.path().join("out");
    photoshield()
        .args(["protect", "--no-config"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let again = photoshield()
        .args(["protect", "--no-config"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let err = stderr_of(&again);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("exist")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("6 outputs exist already"), "{err}");
    assert!(lines[0].contains("--if-exists skip") && lines[0].contains("--if-exists overwrite"));
    // -v lists each one.
    let verbose = photoshield()
        .args(["protect", "--no-config", "-v"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        stderr_of(&verbose)
            .lines()
            .filter(|l| l.contains("exists"))
            .count(),
        6
    );
}

// Item 13 and issue 20 item 12: Ctrl-C and SIGTERM finish the files in flight, give every
// input a record, and end with 128 + the signal.

fn batch_folder(n: u32) -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("in");
    fs::create_dir(&root).unwrap();
    for i in 0..n {
        fs::write(
            root.join(format!("p{i:03}.jpg")),
            common::camera_jpeg(900, 600, 1, i),
        )
        .unwrap();
    }
    dir
}

fn interrupt_with(signal: i32, code: i32) {
    let n = 40;
    let dir = batch_folder(n);
    let (root, out) = (dir.path().join("in"), dir.path().join("out"));
    let child = Process::new(bin())
        .args(["protect", "--no-config", "--json", "-j", "1", "--perturb", "low"])
        .arg(&root)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no output appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(code));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("summary").is_none())
        .collect();
    assert_eq!(records.len(), n as usize, "every input has a record");
    let written = records.iter().filter(|r| r["status"] == "written").count();
    let not_started = records
        .iter()
        .filter(|r| r["status"] == "skipped" && r["reason"] == "interrupted before it started")
        .count();
    assert_eq!(
        written + not_started,
        n as usize,
        "in-flight files finish: {stdout}"
    );
    assert!(not_started > 0, "the batch was not interrupted");
    // The marker of an output folder is not an output.
    let files = fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".photoshield")
        .count();
    assert_eq!(
        files, written,
        "each written record has its file, no temporary file remains"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted: "));
}

#[test]
fn ctrl_c_gives_every_input_a_record() {
    interrupt_with(libc::SIGINT, 130);
}

#[test]
fn sigterm_stops_like_ctrl_c_with_code_143() {
    interrupt_with(libc::SIGTERM, 143);
}

// Item 14: usage errors exit 2; a missing input is reported first.

#[test]
fn usage_errors_exit_2_and_a_missing_input_comes_first() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("a.jpg");
    let original = common::camera_jpeg(64, 48, 1, 2);
    fs::write(&input, &original).unwrap();
    photoshield()
        .args(["protect", "--no-config", "--if-exists", "overwrite"])
        .arg(&input)
        .arg("-o")
        .arg(&input)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-o names the input itself"));
    assert_eq!(fs::read(&input).unwrap(), original);
    photoshield()
        .args(["protect", "--no-config"])
        .arg(dir.path().join("missing.jpg"))
        .arg("-o")
        .arg(dir.path().join("x1"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.jpg: no such file or folder"));
    photoshield()
        .arg("strip")
        .arg(dir.path().join("missing.jpg"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.jpg: no such file or folder"));
}

// Item 15: compare a resized copy against the original brought to its size.

#[test]
fn compare_accepts_a_resized_copy_and_says_so() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("a.jpg");
    fs::write(&input, common::camera_jpeg(600, 400, 1, 2)).unwrap();
    let copy = dir.path().join("c.jpg");
    photoshield()
        .args(["protect", "--no-config", "--max-size", "300", "--perturb", "low"])
        .arg(&input)
        .arg("-o")
        .arg(&copy)
        .assert()
        .success();
    let out = photoshield()
        .arg("compare")
        .arg(&input)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("300x200 (the original, 600x400, resized to the copy's size"),
        "{text}"
    );
    let psnr: f64 = text
        .lines()
        .find(|l| l.starts_with("PSNR"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        psnr > 30.0,
        "a resized copy is close to the resized original: {psnr}"
    );
    let json = photoshield()
        .args(["compare", "--json"])
        .arg(&input)
        .arg(&copy)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["original_resized_from"], serde_json::json!([600, 400]));
    // Another shape (a notice band) is refused with the reason.
    let banded = dir.path().join("b.jpg");
    photoshield()
        .args(["protect", "--no-config", "--notice", "No AI"])
        .arg(&input)
        .arg("-o")
        .arg(&banded)
        .assert()
        .success();
    photoshield()
        .arg("compare")
        .arg(&input)
        .arg(&banded)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("differ in shape"));
}

// Item 16: negative numbers get the range error, not clap's `-- -1` tip.

#[test]
fn negative_numbers_get_the_range_error() {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("a.jpg");
    fs::write(&input, common::camera_jpeg(64, 48, 1, 2)).unwrap();
    for (flag, expected) in [
        ("--opacity", "opacity must be between 0 and 1, not -1"),
        ("--quality", "-1 is not in 1..=100"),
        ("--size", "watermark size must be above 0"),
        ("--jobs", "-1 is not in 0..=4096"),
        ("--max-megapixels", "max-megapixels must be a positive number"),
    ] {
        photoshield()
            .args(["protect", "--no-config", flag, "-1", "--text", "a", "--dry-run"])
            .arg(&input)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected))
            .stderr(predicate::str::contains("-- -1").not());
    }
}

// Item 17: completions and the man page, from the same definitions as --help.

#[test]
fn completions_for_every_shell_and_the_man_pages() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = photoshield().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("photoshield"), "{shell}");
        assert!(script.contains("preset"), "{shell} completes --preset");
        assert!(script.contains("instagram"), "{shell} completes the preset names");
    }
    if Path::new("/bin/bash").exists() {
        let script = photoshield()
            .args(["completions", "bash"])
            .output()
            .unwrap()
            .stdout;
        let dir = TempDir::new().unwrap();
        let file = dir.path().join("c.bash");
        fs::write(&file, script).unwrap();
        let check = Process::new("/bin/bash").arg("-n").arg(&file).status().unwrap();
        assert!(check.success(), "the bash script parses");
    }
    let man = photoshield().arg("man").output().unwrap();
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.contains(".TH photoshield 1"), "{page}");
    for command in ["protect", "strip", "inspect", "detect", "keygen", "compare"] {
        assert!(page.contains(command), "the main page lists {command}");
    }
    let protect = String::from_utf8(photoshield().args(["man", "protect"]).output().unwrap().stdout).unwrap();
    assert!(protect.contains(".TH photoshield-protect 1"));
    assert!(protect.contains("preset"));
    photoshield().args(["man", "nosuch"]).assert().code(2);
}

// Item 19: CI never skips.

#[test]
fn ci_is_recognised_as_the_ci_systems_set_it() {
    assert!(common::ci_says(Some("1")));
    assert!(common::ci_says(Some("true")));
    assert!(!common::ci_says(None));
    assert!(!common::ci_says(Some("")));
    assert!(!common::ci_says(Some("0")));
    assert!(!common::ci_says(Some("false")));
}

// Issue 20 item 13: control characters in names cannot forge lines.

#[test]
fn a_newline_in_a_file_name_cannot_forge_an_error_line() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("in");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("x.jpg\nerror: forged.jpg"), b"not an image").unwrap();
    fs::write(root.join("esc\u{1b}[31mred.jpg"), b"not an image").unwrap();
    let out = photoshield()
        .args(["protect", "--no-config"])
        .arg(&root)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!err.lines().any(|l| l.starts_with("error: forged")), "{err}");
    assert!(err.contains("x.jpg\\nerror: forged.jpg"), "{err}");
    assert!(
        !err.contains('\u{1b}') && err.contains("esc\\x1b[31mred.jpg"),
        "{err}"
    );
    let inspect = photoshield().arg("inspect").arg(&root).output().unwrap();
    let err = stderr_of(&inspect);
    assert!(!err.lines().any(|l| l.starts_with("error: forged")), "{err}");
}
