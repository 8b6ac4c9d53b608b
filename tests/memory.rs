//! Memory per pixel (issue 20, item 8): small files that declare large pictures. Each is run
//! through the real binary and its peak resident memory (the child's own `ru_maxrss`, from
//! `wait4`) is held to twice the picture's 8-bit decoded size plus 100 MB, and `--max-memory`
//! must refuse what would not fit before the memory is taken.
//!
//! The fixtures are built here, a few megabytes each: a 16-bit 250 MP PNG, an animated WebP with a
//! 15000x16000 canvas around a tiny frame, and a 250 MP JPEG whose EXIF asks for a quarter turn.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use image::ImageEncoder;

mod common;

const MB: u64 = 1 << 20;

/// Runs photoshield with `args` under GNU time, returning its exit code, stderr and peak
/// resident bytes. GNU time's `%M` is taken from a process it forked itself: Linux carries the
/// high-water mark of the process that calls exec into the new program's `ru_maxrss`, so a
/// child spawned straight from this test would report this test's own peak (hundreds of MB of
/// fixtures) as its own.
fn run_measured(args: &[&str]) -> (i32, String, u64) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_photoshield"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    let report = std::fs::read_to_string(report.path()).unwrap();
    // The last line is %M; a line before it says when the command exited non-zero.
    let kb: u64 = report
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time said {report:?}"));
    (
        output.status.code().unwrap_or(128),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        kb * 1024,
    )
}

/// GNU time is the measuring tool; without it these tests skip (and fail when CI is set).
fn have_gnu_time() -> bool {
    let ok = Command::new("/usr/bin/time")
        .args(["-f", "%M", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip("/usr/bin/time (GNU time) not found; memory was not measured");
    }
    ok
}

fn png_chunk(out: &mut impl Write, kind: &[u8; 4], data: &[u8]) {
    out.write_all(&(data.len() as u32).to_be_bytes()).unwrap();
    out.write_all(kind).unwrap();
    out.write_all(data).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.write_all(&crc.finalize().to_be_bytes()).unwrap();
}

/// A flat 16-bit RGB PNG of `w` x `h`, compressed row by row (a few MB for 250 MP).
fn png16(path: &Path, w: u32, h: u32) {
    let mut row = vec![0u8; 1 + 6 * w as usize];
    for (i, b) in row[1..].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0x80 } else { 0x40 };
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[16, 2, 0, 0, 0]);
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    f.write_all(b"\x89PNG\r\n\x1a\n").unwrap();
    png_chunk(&mut f, b"IHDR", &ihdr);
    for piece in idat.chunks(1 << 20) {
        png_chunk(&mut f, b"IDAT", piece);
    }
    png_chunk(&mut f, b"IEND", &[]);
}

fn riff_chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

fn u24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// An animated WebP with a `cw` x `ch` canvas and one 8x8 lossless frame.
fn canvas_webp(path: &Path, cw: u32, ch: u32) {
    let mut small = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut small)
        .write_image(&common::landscape(8, 8, 3), 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    let vp8l = photoshield::container::riff::chunks(&small)
        .find(|c| &c.id == b"VP8L")
        .unwrap()
        .data
        .to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend_from_slice(&u24(cw - 1));
    vp8x.extend_from_slice(&u24(ch - 1));
    let mut anmf = Vec::new();
    for v in [0, 0, 7, 7, 100] {
        anmf.extend_from_slice(&u24(v));
    }
    anmf.push(0);
    riff_chunk(&mut anmf, b"VP8L", &vp8l);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    riff_chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
    riff_chunk(&mut body, b"ANMF", &anmf);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    std::fs::write(path, out).unwrap();
}

/// A valid greyscale baseline JPEG of `w` x `h` (multiples of 8), every block flat black, with
/// an EXIF orientation: one-code Huffman tables make each block two zero bits, so 250 MP take
/// under a megabyte.
fn flat_jpeg(path: &Path, w: u16, h: u16, orientation: u8) {
    let segment = |out: &mut Vec<u8>, marker: u8, data: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(data);
    };
    let mut out = vec![0xFF, 0xD8];
    let exif = common::exif_tiff(&common::ExifSpec {
        orientation: Some(orientation.into()),
        ..Default::default()
    });
    segment(&mut out, 0xE1, &[b"Exif\0\0".as_slice(), &exif].concat());
    segment(&mut out, 0xDB, &[[0u8].as_slice(), &[1u8; 64]].concat());
    let [wh, wl] = w.to_be_bytes();
    let [hh, hl] = h.to_be_bytes();
    segment(&mut out, 0xC0, &[8, hh, hl, wh, wl, 1, 1, 0x11, 0]);
    let mut one_code = [0u8; 17];
    one_code[1] = 1; // one code of length 1
    segment(
        &mut out,
        0xC4,
        &[&one_code[..], &[0], &[0x10], &one_code[1..], &[0]].concat(),
    );
    segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    let blocks = (w as usize / 8) * (h as usize / 8);
    // Two zero bits per block (DC difference 0, end of block), padded with one bits.
    out.resize(out.len() + blocks / 4, 0);
    if !blocks.is_multiple_of(4) {
        out.push(0xFF >> (2 * (blocks % 4)));
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    std::fs::write(path, out).unwrap();
}

struct Case {
    name: &'static str,
    /// The picture's 8-bit decoded size (RGB or RGBA, as the pipeline holds it).
    decoded: u64,
}

/// The estimate photoshield makes for `path` under `args` (the default options and those flags).
fn estimate(path: &Path, options: &photoshield::Options) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let format = photoshield::format::sniff(&bytes).unwrap();
    photoshield::memory::estimate(&bytes, format, options).unwrap()
}

/// Protects `case`; `None` when its peak stayed within twice the decoded size plus 100 MB and
/// within the estimate, else what went wrong.
fn check(dir: &Path, case: &Case) -> Option<String> {
    let input = dir.join(case.name);
    let out = dir.join(format!("out-{}", case.name));
    let (code, stderr, peak) =
        run_measured(&["protect", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let budget = 2 * case.decoded + 100 * MB;
    let estimate = estimate(&input, &photoshield::Options::default());
    eprintln!(
        "{}: exit {code}, peak {} MB, budget {} MB, estimate {} MB",
        case.name,
        peak / MB,
        budget / MB,
        estimate / MB
    );
    if code != 0 {
        return Some(format!("{}: exit {code}: {stderr}", case.name));
    }
    if peak > estimate {
        return Some(format!(
            "{}: peak {} MB over the estimate {} MB",
            case.name,
            peak / MB,
            estimate / MB
        ));
    }
    (peak > budget).then(|| {
        format!(
            "{}: peak {} MB over twice the decoded size plus 100 MB ({} MB)",
            case.name,
            peak / MB,
            budget / MB
        )
    })
}

/// The three files of the probe: a 16-bit 250 MP PNG, a 2.8 KB animated WebP with a 240 MP
/// canvas, a 250 MP JPEG turned a quarter by its EXIF. Each fits twice its decoded size plus
/// 100 MB and its estimate; under a lower `--max-memory` each is refused before it is decoded;
/// two at once under a budget that holds one run one after the other.
#[test]
fn large_pictures_stay_within_twice_their_decoded_size() {
    if !have_gnu_time() {
        return;
    }
    // MEMORY_FIXTURES=DIR keeps the fixtures there, for measuring by hand.
    let mut dir = tempfile::tempdir().unwrap();
    if let Some(keep) = std::env::var_os("MEMORY_FIXTURES") {
        dir = tempfile::tempdir_in(keep).unwrap();
        dir.disable_cleanup(true);
    }
    let d = dir.path();
    png16(&d.join("png16.png"), 15800, 15800);
    canvas_webp(&d.join("canvas.webp"), 15000, 16000);
    flat_jpeg(&d.join("turned.jpg"), 15800, 15800, 6);
    let cases = [
        Case {
            name: "png16.png",
            decoded: 15800 * 15800 * 3,
        },
        Case {
            name: "canvas.webp",
            decoded: 15000 * 16000 * 3,
        },
        Case {
            name: "turned.jpg",
            decoded: 15800 * 15800 * 3,
        },
    ];
    let failures: Vec<_> = cases.iter().filter_map(|case| check(d, case)).collect();
    assert!(failures.is_empty(), "{failures:#?}");

    // Refused before decoding: the run stays small and says why, naming the file.
    let out = d.join("refused");
    std::fs::create_dir(&out).unwrap();
    for case in &cases {
        let input = d.join(case.name);
        let (code, stderr, peak) = run_measured(&[
            "protect",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--max-memory",
            "500M",
        ]);
        assert_eq!(code, 1, "{}: {stderr}", case.name);
        assert!(
            stderr.contains(case.name)
                && stderr.contains("over the limit of 500 MB (raise it with --max-memory)"),
            "{}: {stderr}",
            case.name
        );
        assert!(
            peak < 100 * MB,
            "{}: refused after taking {} MB",
            case.name,
            peak / MB
        );
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "{}: an output was written",
            case.name
        );
    }

    // Two large files, two jobs, a budget that holds one: one after the other, all written.
    let both = d.join("both");
    std::fs::create_dir(&both).unwrap();
    for name in ["a.png", "b.png"] {
        std::fs::copy(d.join("png16.png"), both.join(name)).unwrap();
    }
    let one = estimate(&both.join("a.png"), &photoshield::Options::default());
    let limit = format!("{}K", (one + one / 2) >> 10);
    let out = d.join("both-out");
    let (code, stderr, peak) = run_measured(&[
        "protect",
        both.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-j",
        "2",
        "--max-memory",
        &limit,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.join("a.png").exists() && out.join("b.png").exists());
    assert!(
        peak <= one,
        "two files at once: peak {} MB over one file's estimate {} MB",
        peak / MB,
        one / MB
    );
}

/// The estimate is an upper bound on what a run takes, for photo-sized files of every format
/// and the options that add buffers (a tiled watermark, WebP and PNG output, a quarter turn,
/// perturbation and the mark), for 24-megapixel AVIFs (whole and a grid), and for the corpus's
/// HEIC, JPEG XL and progressive JPEG.
#[test]
fn the_estimate_bounds_real_runs() {
    if !have_gnu_time() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (w, h) = (6000, 4000);
    let rgb = common::landscape(w, h, 5);
    std::fs::write(d.join("photo.jpg"), common::jpeg(&rgb, w, h)).unwrap();
    let (turned, tw, th) = common::store_for_orientation(&rgb, w, h, 6);
    let turned = common::with_segments(
        &common::jpeg(&turned, tw, th),
        &[common::exif_segment(&common::ExifSpec {
            orientation: Some(6),
            ..Default::default()
        })],
    );
    std::fs::write(d.join("turned.jpg"), turned).unwrap();
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], p[0] / 2 + 100])
        .collect();
    image::save_buffer(d.join("alpha.png"), &rgba, w, h, image::ExtendedColorType::Rgba8).unwrap();
    let mut lossless = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut lossless)
        .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(d.join("lossless.webp"), lossless).unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_photoshield"))
        .args(["keygen", "-o"])
        .arg(d.join("key"))
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let mut inputs: Vec<std::path::PathBuf> = ["photo.jpg", "turned.jpg", "alpha.png", "lossless.webp"]
        .iter()
        .map(|n| d.join(n))
        .collect();
    // AVIF from the same pixels (libavif's avifenc, which CI installs): one 24-megapixel AV1
    // image with its alpha plane, and a 3x2 grid of them.
    for (name, extra) in [("whole.avif", &[][..]), ("grid.avif", &["-g", "3x2"][..])] {
        let run = Command::new("avifenc")
            .args(["-s", "10", "-j", "2"])
            .args(extra)
            .arg(d.join("alpha.png"))
            .arg(d.join(name))
            .output();
        match run {
            Ok(run) if run.status.success() => inputs.push(d.join(name)),
            Ok(run) => panic!("avifenc: {}", String::from_utf8_lossy(&run.stderr)),
            Err(_) => {
                common::skip("avifenc not installed (apt-get install libavif-bin); AVIF was not measured")
            }
        }
    }
    match common::corpus_dir() {
        Some(corpus) => inputs.extend(
            [
                "Apple_iPhone13ProMax_orient6.heic",
                "mat2_dirty_xmp.jxl",
                "icc_multisegment_progressive.jpg",
            ]
            .iter()
            .map(|n| corpus.join(n)),
        ),
        None => {
            common::skip("../shared/corpus not found; HEIC, JPEG XL and progressive JPEG were not measured")
        }
    }
    let key = d.join("key");
    let option_sets: [&[&str]; 5] = [
        &[],
        &["--text", "© Jane", "--position", "tile"],
        &["--format", "webp"],
        &["--format", "png"],
        &[
            "--perturb",
            "medium",
            "--mark",
            "7",
            "--key",
            key.to_str().unwrap(),
        ],
    ];
    let mut failures = Vec::new();
    for (i, extra) in option_sets.iter().enumerate() {
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let cli = photoshield_options(&args);
        for input in &inputs {
            let out = d.join(format!("out{i}"));
            std::fs::create_dir_all(&out).unwrap();
            let mut run = vec!["protect", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
            run.extend(extra.iter());
            let (code, stderr, peak) = run_measured(&run);
            let estimate = estimate(input, &cli);
            let name = input.file_name().unwrap().to_string_lossy();
            eprintln!(
                "{name} {extra:?}: peak {} MB, estimate {} MB",
                peak / MB,
                estimate / MB
            );
            if code != 0 {
                failures.push(format!("{name} {extra:?}: exit {code}: {stderr}"));
            } else if peak > estimate {
                failures.push(format!(
                    "{name} {extra:?}: peak {} MB over the estimate {} MB",
                    peak / MB,
                    estimate / MB
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The library options matching the few flags these runs use (what the estimate depends on).
fn photoshield_options(args: &[String]) -> photoshield::Options {
    let mut o = photoshield::Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--text" => o.watermark.text = it.next().cloned(),
            "--format" => o.format = photoshield::format::OutputFormat::from_extension(it.next().unwrap()),
            _ => {}
        }
    }
    o
}
