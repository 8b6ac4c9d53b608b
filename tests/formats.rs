//! HEIC, AVIF and JPEG XL in, camera RAW refused by content, broken files refused in one line.
//!
//! The corpus photos (../shared/corpus) are checked against independent reference decoders:
//! Debian's `heif-convert` (libheif-examples) for HEIC and AVIF and `djxl` (libjxl-tools) for
//! JPEG XL. AVIFs of every kind are made by `avifenc` (libavif-bin), a second independent
//! implementation, and decoded by both photoshield and `heif-convert`.
//! Without the corpus or those tools the corpus tests are skipped on a plain clone, saying so;
//! with `CI` set they fail instead, because CI installs them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use photoshield::codec::{self, DecodeLimits};
use photoshield::format::Format;

const HEICS: [&str; 3] = [
    "Apple_iPhone11ProMax_gps.heic",
    "Apple_iPhone13ProMax_orient6.heic",
    "Samsung_S22_motionphoto_gps.heic",
];
const JXL: &str = "mat2_dirty_xmp.jxl";
const AVIF: &str = "mat2_dirty_xmp.avif";
const LIMITS: DecodeLimits = DecodeLimits {
    max_pixels: 100_000_000,
};

/// The tools in `tools` that are not on PATH.
fn missing_tools<'a>(tools: &[&'a str]) -> Vec<&'a str> {
    tools
        .iter()
        .copied()
        .filter(|t| {
            Process::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect()
}

/// The corpus, when it and the reference `tools` are there; None (skipped) on a plain clone.
fn corpus_with(tools: &[&str]) -> Option<PathBuf> {
    let missing = missing_tools(tools);
    let corpus = common::corpus_dir();
    let why = match (&corpus, missing.is_empty()) {
        (None, _) => "../shared/corpus not found".to_string(),
        (_, false) => format!(
            "{} not installed (apt-get install libheif-examples libjxl-tools libimage-exiftool-perl)",
            missing.join(", ")
        ),
        _ => return corpus,
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the format tests: {why}");
    }
    common::skip(&format!("{why}; the HEIC/JPEG XL corpus tests did not run"));
    None
}

/// True when every tool in `tools` is on PATH; otherwise the test is skipped on a plain machine
/// (saying so) and fails under CI, which installs them.
fn have_tools(tools: &[&str]) -> bool {
    let missing = missing_tools(tools);
    if missing.is_empty() {
        return true;
    }
    common::skip(&format!(
        "{} not installed (apt-get install libavif-bin libheif-examples); the AVIF checks did not run",
        missing.join(", ")
    ));
    false
}

/// The reference decoder's RGB for `file`.
fn reference(file: &Path, tmp: &Path) -> image::RgbImage {
    let out = tmp.join(format!("{}.png", file.file_name().unwrap().to_string_lossy()));
    let tool = if file.extension().unwrap() == "jxl" {
        "djxl"
    } else {
        "heif-convert"
    };
    let run = Process::new(tool).arg(file).arg(&out).output().unwrap();
    assert!(
        run.status.success(),
        "{tool} {}: {}",
        file.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    image::open(&out).unwrap().into_rgb8()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / a.len() as f64)).log10()
}

fn rgb(decoded: &codec::Decoded) -> Vec<u8> {
    match decoded.pixels.layout {
        photoshield::Layout::Rgb8 => decoded.pixels.data.clone(),
        photoshield::Layout::Rgba8 => decoded
            .pixels
            .data
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
    }
}

#[test]
fn corpus_heic_avif_and_jxl_decode_within_45_db_of_the_reference_decoders_upright() {
    let Some(corpus) = corpus_with(&["heif-convert", "djxl"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for name in HEICS.iter().chain([&JXL, &AVIF]) {
        let path = corpus.join(name);
        let bytes = fs::read(&path).unwrap();
        let format = photoshield::format::sniff(&bytes).unwrap();
        let decoded = codec::decode(&bytes, format, LIMITS).unwrap();
        let want = reference(&path, tmp.path());
        // Same size means the same turn: each photo here is taller or wider once turned.
        assert_eq!(
            (decoded.pixels.width, decoded.pixels.height),
            want.dimensions(),
            "{name}"
        );
        let db = psnr(&rgb(&decoded), want.as_raw());
        common::figures(&format!("{name}: {db:.1} dB PSNR against the reference decoder"));
        assert!(db >= 45.0, "{name}: {db:.1} dB");
    }
}

/// The classic double-rotation bug: the iPhone 13 photo is stored landscape with `irot` (a
/// quarter turn) AND EXIF Orientation 6, which describe the same turn. Applied once it is a
/// portrait, as Photos and Preview show it; applied twice it would be landscape, upside down.
#[test]
fn iphone_heic_is_turned_by_irot_once_never_again_by_its_exif_orientation() {
    let Some(corpus) = corpus_with(&["heif-convert"]) else {
        return;
    };
    let path = corpus.join("Apple_iPhone13ProMax_orient6.heic");
    let bytes = fs::read(&path).unwrap();
    assert_eq!(
        photoshield::strip::exif_orientation(&bytes, Format::Heif),
        1,
        "strip reads no EXIF from HEIC"
    );
    let heif = photoshield::container::isobmff::Heif::parse(&bytes).unwrap();
    assert_eq!(heif.rotation, 3, "irot: three quarter turns anticlockwise");
    let exif = heif.exif(&bytes).unwrap();
    assert_eq!(
        image::metadata::Orientation::from_exif_chunk(&exif)
            .unwrap()
            .to_exif(),
        6
    );

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("upright.jpg");
    let assert = Command::cargo_bin("photoshield")
        .unwrap()
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .args(["protect", "--json"])
        .arg(&path)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let record: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&assert.get_output().stdout)
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["orientation"], 1, "{record}");
    let written = image::open(&out).unwrap().into_rgb8();
    assert_eq!(written.dimensions(), (3024, 4032), "portrait, turned once");
    let want = reference(&path, tmp.path());
    let db = psnr(written.as_raw(), want.as_raw());
    assert!(
        db > 30.0,
        "the JPEG is the reference picture, upright ({db:.1} dB)"
    );
}

/// A folder straight from a phone: HEIC, JPEG, PNG (and an AVIF and a JPEG XL from the web). One
/// run, no refusal, JPEG out for HEIC, AVIF and JPEG XL, colour profile kept, nothing
/// identifying left (our scanner and exiftool), the
/// capture year read from the HEIC's EXIF item for the notice.
#[test]
fn phone_folder_protects_in_one_run_clean_with_colours_and_dates() {
    let Some(corpus) = corpus_with(&["exiftool"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("DCIM");
    fs::create_dir(&input).unwrap();
    for name in HEICS
        .iter()
        .chain([&JXL, &"Apple_iPhone6_hdr_gps.jpg", &"png_iccp.png"])
    {
        fs::copy(corpus.join(name), input.join(name)).unwrap();
    }
    // The AVIF shares the JPEG XL's name: in a folder of its own, as the two would both be
    // written as mat2_dirty_xmp.jpg (the batch refuses a second input writing one output).
    fs::create_dir(input.join("web")).unwrap();
    fs::copy(corpus.join(AVIF), input.join("web").join(AVIF)).unwrap();
    let out = tmp.path().join("out");
    let assert = Command::cargo_bin("photoshield")
        .unwrap()
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .args(["protect", "--json", "--rights", "© {year} Jane Doe"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let years = [
        ("Apple_iPhone11ProMax_gps", "2021"),
        ("Apple_iPhone13ProMax_orient6", "2022"),
        ("Samsung_S22_motionphoto_gps", "2023"),
    ];
    for name in HEICS.iter().chain([&JXL, &AVIF]) {
        let r = records
            .iter()
            .find(|r| r["input"].as_str().is_some_and(|i| i.ends_with(name)))
            .unwrap();
        assert_eq!(r["status"], "written", "{r}");
        let output = r["output"].as_str().unwrap();
        assert!(output.ends_with(".jpg"), "{name} becomes a JPEG: {output}");
        let bytes = fs::read(output).unwrap();
        assert_eq!(photoshield::format::sniff(&bytes).unwrap(), Format::Jpeg);
        let left = photoshield::metadata::scan(&bytes, Format::Jpeg);
        let has_icc = left.iter().any(|f| f.kind == photoshield::metadata::Kind::Icc);
        // The iPhones' Display P3 profile is kept; the Samsung, JPEG XL and AVIF files carry none.
        assert_eq!(has_icc, name.starts_with("Apple"), "{name}: {left:?}");
        if let Some((_, year)) = years.iter().find(|(n, _)| name.starts_with(n)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.contains(&format!("© {year} Jane Doe")),
                "{name}: the capture year {year} from the EXIF item"
            );
        }
    }
    let run = Process::new("bash")
        .arg(corpus.join("../tools/leakcheck.sh"))
        .args(["-a", "copyright,xmp", "-q"])
        .arg(&out)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && report.contains("7 files, 0 with leaks"),
        "{report}"
    );
}

#[test]
fn inspect_names_the_samsung_video_and_the_iphone_depth_and_gain_maps() {
    let Some(corpus) = common::corpus_dir() else {
        common::skip("../shared/corpus not found");
        return;
    };
    let details = |name: &str| {
        let ins = photoshield::inspect::inspect(&fs::read(corpus.join(name)).unwrap()).unwrap();
        assert!(ins.leaks(), "{name}");
        ins.findings
            .iter()
            .map(|f| f.detail.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let samsung = details("Samsung_S22_motionphoto_gps.heic");
    assert!(
        samsung.contains("embedded motion-photo video ('mpvd' box, 2193666 bytes)"),
        "{samsung}"
    );
    assert!(
        samsung.contains("12.960378, 77.705525"),
        "the GPS position: {samsung}"
    );
    let iphone = details("Apple_iPhone13ProMax_orient6.heic");
    assert!(
        iphone.contains("HDR gain map") || iphone.contains("auxiliary image"),
        "{iphone}"
    );
    assert!(iphone.contains("thumbnail image"), "{iphone}");
    let jxl = details(JXL);
    assert!(jxl.contains("XMP") || jxl.contains("Artist"), "{jxl}");
}

#[test]
fn strip_refuses_heic_and_avif_by_name_and_strips_jpeg_xl_box_by_box() {
    let Some(corpus) = common::corpus_dir() else {
        common::skip("../shared/corpus not found");
        return;
    };
    let options = photoshield::strip::StripOptions::default();
    let heic = fs::read(corpus.join(HEICS[0])).unwrap();
    let err = photoshield::strip::strip(&heic, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("HEIC") && err.contains("protect"), "{err}");
    let avif = fs::read(corpus.join(AVIF)).unwrap();
    let err = photoshield::strip::strip(&avif, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("AVIF") && err.contains("protect"), "{err}");

    let jxl = fs::read(corpus.join(JXL)).unwrap();
    let stripped = photoshield::strip::strip(&jxl, &options).unwrap();
    let kinds: Vec<[u8; 4]> = photoshield::container::isobmff::boxes(&stripped, 0..stripped.len())
        .unwrap()
        .iter()
        .map(|b| b.kind)
        .collect();
    assert_eq!(kinds, [*b"JXL ", *b"ftyp", *b"jxlc"]);
    let before = codec::decode(&jxl, Format::Jxl, LIMITS).unwrap();
    let after = codec::decode(&stripped, Format::Jxl, LIMITS).unwrap();
    assert_eq!(
        before.pixels.data, after.pixels.data,
        "the codestream is untouched"
    );
    assert!(!photoshield::inspect::inspect(&stripped).unwrap().leaks());
    if common::have_exiftool() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("clean.jxl"), &stripped).unwrap();
        let run = Process::new("bash")
            .arg(corpus.join("../tools/leakcheck.sh"))
            .arg(tmp.path())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && report.contains("1 files, 0 with leaks"),
            "{report}"
        );
    }
}

/// A little-endian TIFF with IFD0 holding `entries` (tag, type, count, value) and a 2x2 RGB
/// strip, so that a TIFF decoder would happily read it.
fn tiff(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
    let mut all = entries.to_vec();
    let defaults = [
        (256, 3, 1, 2),
        (257, 3, 1, 2),
        (258, 3, 1, 8),
        (262, 3, 1, 2),
        (273, 4, 1, 0),
        (277, 3, 1, 3),
        (279, 4, 1, 12),
    ];
    all.extend(
        defaults
            .into_iter()
            .filter(|d| !entries.iter().any(|e| e.0 == d.0)),
    );
    let pixels_at = 8 + 2 + 12 * all.len() + 4;
    for e in all.iter_mut().filter(|e| e.0 == 273) {
        e.3 = pixels_at as u32;
    }
    all.sort_by_key(|e| e.0);
    let mut b = b"II*\0\x08\0\0\0".to_vec();
    b.extend_from_slice(&(all.len() as u16).to_le_bytes());
    for (tag, kind, n, v) in all {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[200; 12]);
    b
}

#[test]
fn camera_raws_are_refused_by_content_whatever_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let make_at = 8 + 2 + 12 * 9 + 4 + 12; // after the IFD (9 entries) and the pixels
    let mut nef = tiff(&[(254, 4, 1, 1), (271, 2, 6, make_at as u32)]);
    nef.extend_from_slice(b"NIKON\0");
    let mut cr3 = b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom".to_vec();
    cr3.extend_from_slice(&[0; 32]);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "IMG_0001.tif",
            tiff(&[(0xC612, 1, 4, 0x0104)]),
            "camera RAW (DNG)",
        ),
        ("DSC_0001.jpg", nef, "camera RAW (Nikon NEF)"),
        ("IMG_0002.heic", cr3, "camera RAW (Canon CR3)"),
        (
            "DSCF0001.png",
            b"FUJIFILMCCD-RAW 0201FF383501"
                .iter()
                .copied()
                .chain([0; 64])
                .collect(),
            "camera RAW (Fujifilm RAF)",
        ),
        (
            "sensor.tiff",
            tiff(&[(262, 3, 1, 32803)]),
            "camera RAW (TIFF-based)",
        ),
    ];
    for (name, bytes, want) in cases {
        let input = tmp.path().join(name);
        fs::write(&input, &bytes).unwrap();
        let out = tmp.path().join(format!("out-{name}.png"));
        let assert = Command::cargo_bin("photoshield")
            .unwrap()
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .arg("protect")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .assert()
            .failure();
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        let line = stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: {stderr}"));
        assert!(
            line.contains(want) && line.contains("export a JPEG"),
            "{name}: {line}"
        );
        assert!(!out.exists(), "{name}: nothing written");
        assert_eq!(fs::read(&input).unwrap(), bytes, "{name}: input untouched");
    }
    // A plain TIFF photo (no camera preview, no sensor data) still reads.
    let plain = tiff(&[]);
    assert_eq!(photoshield::format::sniff(&plain).unwrap(), Format::Tiff);
    let decoded = codec::decode(&plain, Format::Tiff, LIMITS).unwrap();
    assert_eq!((decoded.pixels.width, decoded.pixels.height), (2, 2));
}

/// An ISOBMFF box.
fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A HEIF whose primary item is a grid of `tiles` tiles, each claiming `tile` x `tile` pixels,
/// for a declared output of 512x512.
fn grid_heif(tiles: u32, tile: u32) -> Vec<u8> {
    let mut infe = Vec::new();
    let mut ipma = Vec::new();
    let mut dimg = 1u16.to_be_bytes().to_vec();
    dimg.extend_from_slice(&(tiles as u16).to_be_bytes());
    for id in 1..=tiles + 1 {
        let kind = if id == 1 { b"grid" } else { b"hvc1" };
        let mut body = vec![2, 0, 0, 0];
        body.extend_from_slice(&(id as u16).to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(kind);
        body.push(0);
        infe.extend(bx(b"infe", &body));
        ipma.extend_from_slice(&(id as u16).to_be_bytes());
        ipma.extend_from_slice(&[1, if id == 1 { 1 } else { 2 }]);
        if id > 1 {
            dimg.extend_from_slice(&(id as u16).to_be_bytes());
        }
    }
    let mut iinf = vec![0, 0, 0, 0];
    iinf.extend_from_slice(&((tiles + 1) as u16).to_be_bytes());
    iinf.extend(infe);
    let ispe = |w: u32, h: u32| {
        let mut b = vec![0, 0, 0, 0];
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        bx(b"ispe", &b)
    };
    let mut ipco = ispe(512, 512);
    ipco.extend(ispe(tile, tile));
    let mut ipma_box = vec![0, 0, 0, 0];
    ipma_box.extend_from_slice(&(tiles + 1).to_be_bytes());
    ipma_box.extend(ipma);
    let mut iprp = bx(b"ipco", &ipco);
    iprp.extend(bx(b"ipma", &ipma_box));
    let mut meta = vec![0, 0, 0, 0];
    meta.extend(bx(b"hdlr", b"\0\0\0\0\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0"));
    meta.extend(bx(b"pitm", &[0, 0, 0, 0, 0, 1]));
    meta.extend(bx(b"iinf", &iinf));
    meta.extend(bx(
        b"iref",
        &[[0, 0, 0, 0].as_slice(), &bx(b"dimg", &dimg)].concat(),
    ));
    meta.extend(bx(b"iprp", &iprp));
    let mut file = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
    file.extend(bx(b"meta", &meta));
    file
}

/// A bare JPEG XL codestream whose header claims `w` x `h` (both 262144 at most).
fn jxl_header(w: u32, h: u32) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut push = |v: u32, n: u32| (0..n).for_each(|i| bits.push(v >> i & 1 == 1));
    push(0, 1); // not a multiple of 8
    push(2, 2); // height - 1 in 18 bits
    push(h - 1, 18);
    push(0, 3); // explicit width
    push(2, 2);
    push(w - 1, 18);
    push(1, 1); // all_default metadata
    let mut out = vec![0xFF, 0x0A];
    out.extend(
        bits.chunks(8)
            .map(|c| c.iter().enumerate().fold(0u8, |a, (i, &b)| a | (b as u8) << i)),
    );
    out.extend_from_slice(&[0; 16]);
    out
}

#[test]
fn broken_and_hostile_files_get_one_line_errors_before_any_large_allocation() {
    let limits = DecodeLimits {
        max_pixels: 50_000_000,
    };
    // A grid of 10000 tiles, each claiming 8192x8192, behind a 512x512 output.
    let grid = grid_heif(10_000, 8192);
    let err = codec::decode(&grid, photoshield::format::sniff(&grid).unwrap(), limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tiles claim") && err.contains("over the limit"),
        "{err}"
    );
    // The same grid in an AVIF: refused by the same walk before the AV1 decoder starts.
    if cfg!(feature = "avif") {
        let mut avif = grid.clone();
        let at = avif
            .windows(16)
            .position(|w| w == b"heic\0\0\0\0mif1heic")
            .unwrap();
        avif[at..at + 16].copy_from_slice(b"avif\0\0\0\0mif1avif");
        assert_eq!(photoshield::format::sniff(&avif).unwrap(), Format::Avif);
        let err = codec::decode(&avif, Format::Avif, limits)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tiles claim") && err.contains("over the limit"),
            "{err}"
        );
    }
    // 100000 x 100000 declared in a JPEG XL header.
    let huge = jxl_header(100_000, 100_000);
    assert_eq!(photoshield::format::sniff(&huge).unwrap(), Format::Jxl);
    let err = codec::decode(&huge, Format::Jxl, limits).unwrap_err().to_string();
    assert!(
        err.contains("100000x100000") && err.contains("over the limit"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    let Some(corpus) = common::corpus_dir() else {
        common::skip("../shared/corpus not found; truncated corpus files not tried");
        return;
    };
    for name in HEICS.iter().chain([&JXL, &AVIF]) {
        let bytes = fs::read(corpus.join(name)).unwrap();
        // Cut at 40 points spread over the file, and at every byte of the first 64.
        let cuts = (0..40).map(|k| bytes.len() * k / 40).chain(0..64);
        for cut in cuts {
            let part = &bytes[..cut];
            let result = std::panic::catch_unwind(|| {
                photoshield::format::sniff(part).and_then(|f| codec::decode(part, f, limits).map(|_| ()))
            });
            let result = result.unwrap_or_else(|_| panic!("{name} cut at {cut}: panicked"));
            let err = result.expect_err(&format!("{name} cut at {cut} decoded"));
            assert_eq!(err.to_string().lines().count(), 1, "{name} cut at {cut}: {err}");
        }
    }
    // The HEIC's item locations pointing past the end of the file: cut 1000 bytes and shorten
    // the 'mdat' box to match, so that the boxes agree and only the 'iloc' entries are wrong.
    let mut bytes = fs::read(corpus.join(HEICS[0])).unwrap();
    let mdat = photoshield::container::isobmff::boxes(&bytes, 0..bytes.len())
        .unwrap()
        .into_iter()
        .find(|b| &b.kind == b"mdat")
        .unwrap();
    assert_eq!(mdat.range.end, bytes.len(), "mdat is the last box");
    bytes.truncate(bytes.len() - 1000);
    let size = (mdat.range.len() - 1000) as u32;
    bytes[mdat.range.start..mdat.range.start + 4].copy_from_slice(&size.to_be_bytes());
    let err = codec::decode(&bytes, Format::Heif, limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("past the end of the file"), "{err}");
}

/// Random mutations of the corpus HEIC, AVIF and JPEG XL (bytes flipped, runs zeroed, lengths
/// changed): every decode ends in pixels or an error, never a panic. The same code runs
/// unbounded in the `formats` fuzz target.
#[test]
fn mutated_heic_avif_and_jxl_never_panic() {
    let Some(corpus) = common::corpus_dir() else {
        common::skip("../shared/corpus not found");
        return;
    };
    let limits = DecodeLimits {
        max_pixels: 20_000_000,
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // The smaller files keep this quick; the header region is where the walkers work.
    for name in ["Apple_iPhone11ProMax_gps.heic", JXL, AVIF] {
        let original = fs::read(corpus.join(name)).unwrap();
        for round in 0..24 {
            let mut bytes = original.clone();
            let span = if round % 2 == 0 {
                4096.min(bytes.len())
            } else {
                bytes.len()
            };
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize) % span;
                match next() % 3 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes[at] = [0, 0xFF, 0x7F, 0x80][(next() % 4) as usize],
                    _ => bytes[at..(at + 4).min(span)].fill(0xFF),
                }
            }
            let result = std::panic::catch_unwind(|| {
                let _ = photoshield::inspect::inspect(&bytes);
                photoshield::format::sniff(&bytes).and_then(|f| codec::decode(&bytes, f, limits).map(|_| ()))
            });
            assert!(result.is_ok(), "{name} mutation round {round} panicked");
        }
    }
}

/// Encodes `rgba` (w x h) as AVIF with `avifenc` and the given options.
fn avifenc(rgba: &[u8], w: u32, h: u32, args: &[&str], tmp: &Path, name: &str) -> PathBuf {
    let png = tmp.join(format!("{name}.png"));
    image::RgbaImage::from_raw(w, h, rgba.to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    let out = tmp.join(format!("{name}.avif"));
    let run = Process::new("avifenc")
        .args(["-s", "10", "--min", "8", "--max", "16"])
        .args(args)
        .arg(&png)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "avifenc {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// Every kind of AVIF that cameras, phones and web tools write: 4:2:0, 4:2:2, 4:4:4 and
/// monochrome; 10 and 12 bits; studio range; a grid of tiles; alpha (also in a grid); every
/// `irot`/`imir`; BT.709, BT.601, identity matrices, Display P3, BT.2020 with PQ; premultiplied
/// alpha. Made by libavif, decoded by
/// photoshield (rav1d) and by libheif: the same size (so the same turn), within 45 dB, alpha kept.
#[test]
fn avif_of_every_kind_decodes_within_45_db_of_libheif_upright() {
    if !have_tools(&["avifenc", "heif-convert"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Not square, so that a quarter turn shows in the size; 2x2 tiles of 128x96.
    let (w, h) = (256, 192);
    let photo = common::landscape(w, h, 7);
    let opaque: Vec<u8> = photo.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let translucent: Vec<u8> = photo
        .chunks(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i as u32 % w * 255 / w) as u8])
        .collect();
    let cases: &[(&str, &[&str], bool)] = &[
        ("yuv420", &["-y", "420"], false),
        ("yuv422", &["-y", "422"], false),
        ("yuv444", &["-y", "444"], false),
        ("mono", &["-y", "400"], false),
        ("10bit", &["-d", "10", "-y", "420"], false),
        ("12bit", &["-d", "12", "-y", "444"], false),
        ("limited", &["-r", "limited", "-y", "420"], false),
        ("grid", &["-g", "2x2", "-y", "420"], false),
        ("alpha", &["-y", "420"], true),
        ("alpha-grid", &["-g", "2x2", "-y", "444"], true),
        ("irot1", &["--irot", "1"], false),
        ("irot2-imir0", &["--irot", "2", "--imir", "0"], false),
        ("irot3-imir1", &["--irot", "3", "--imir", "1"], false),
        ("imir0", &["--imir", "0"], false),
        ("imir1", &["--imir", "1"], false),
        ("bt709", &["--cicp", "1/13/1", "-y", "420"], false),
        ("bt601", &["--cicp", "1/13/6", "-y", "420"], false),
        ("identity", &["--cicp", "1/13/0", "-y", "444"], false),
        ("p3", &["--cicp", "12/13/6", "-y", "420"], false),
        ("bt2020-pq", &["--cicp", "9/16/9", "-d", "10", "-y", "420"], false),
        ("premultiplied", &["-p", "-y", "444"], true),
    ];
    for &(name, args, alpha) in cases {
        let source = if alpha { &translucent } else { &opaque };
        let file = avifenc(source, w, h, args, tmp.path(), name);
        let bytes = fs::read(&file).unwrap();
        assert_eq!(
            photoshield::format::sniff(&bytes).unwrap(),
            Format::Avif,
            "{name}"
        );
        let decoded = codec::decode(&bytes, Format::Avif, LIMITS).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference_png = tmp.path().join(format!("{name}.ref.png"));
        let run = Process::new("heif-convert")
            .arg(&file)
            .arg(&reference_png)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "heif-convert {name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let want = image::open(&reference_png).unwrap().into_rgba8();
        assert_eq!(
            (decoded.pixels.width, decoded.pixels.height),
            want.dimensions(),
            "{name}: same size as libheif's, so the same turn"
        );
        let want_rgb: Vec<u8> = want.as_raw().chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let ours = if name == "premultiplied" {
            // libheif hands premultiplied colour back as it is stored; photoshield divides it by
            // alpha (a PNG holds straight alpha). Multiplied again, the two must agree.
            decoded
                .pixels
                .data
                .chunks(4)
                .flat_map(|p| [0, 1, 2].map(|c| ((p[c] as u32 * p[3] as u32 + 127) / 255) as u8))
                .collect()
        } else {
            rgb(&decoded)
        };
        let db = psnr(&ours, &want_rgb);
        common::figures(&format!("AVIF {name}: {db:.1} dB PSNR against libheif"));
        assert!(db >= 45.0, "{name}: {db:.1} dB");
        // A half turn or a mirror keeps the size: the PSNR above is what shows it was right.
        assert_eq!(
            decoded.high_bit_depth,
            args.contains(&"10") || args.contains(&"12"),
            "{name}"
        );
        if alpha {
            assert_eq!(decoded.pixels.layout, photoshield::Layout::Rgba8, "{name}");
            let ours: Vec<u8> = decoded.pixels.data.chunks(4).map(|p| p[3]).collect();
            let theirs: Vec<u8> = want.as_raw().chunks(4).map(|p| p[3]).collect();
            let db = psnr(&ours, &theirs);
            assert!(db >= 45.0, "{name}: alpha {db:.1} dB");
        } else {
            assert_eq!(decoded.pixels.layout, photoshield::Layout::Rgb8, "{name}");
        }
        let profile = decoded.icc.is_some();
        let needs_profile = name == "p3" || name == "bt2020-pq";
        assert_eq!(
            profile, needs_profile,
            "{name}: a profile only where the colours need one"
        );
    }
}

/// A corrupt AVIF on which rav1d 1.1 panics inside its C-style API, which aborts the process
/// (found by the `formats` fuzz target): the decode runs in a child process, so this file fails
/// alone with one line and the rest of the folder is written.
#[test]
fn an_avif_that_crashes_the_av1_decoder_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/formats");
    fs::copy(
        regressions.join("rav1d-aborts-on-this-frame-header.avif"),
        input.join("broken.avif"),
    )
    .unwrap();
    fs::copy(regressions.join("seed_64x48_alpha.avif"), input.join("good.avif")).unwrap();
    let (w, h) = (64, 48);
    fs::write(
        input.join("photo.jpg"),
        common::jpeg(&common::landscape(w, h, 1), w, h),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let assert = Command::cargo_bin("photoshield")
        .unwrap()
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .args(["protect", "-j", "2"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("broken.avif") && errors[0].contains("AV1 decoder crashed"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.join("good.jpg").is_file() && out.join("photo.jpg").is_file());
    assert!(!out.join("broken.jpg").exists());
}
