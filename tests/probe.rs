//! Regressions for what an independent reliability and privacy probe found: an output folder
//! inside the input that replaced originals, metadata hidden where `strip` copied whole
//! segments, metadata bombs, FIFOs and devices, one orientation rule, half JPEGs, stale
//! temporary files, earlier outputs read again.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use photoshield::{FileContext, Options, Pipeline};
use proptest::prelude::*;

const PLANTED: &[u8] = b"SECRETSERIAL42";

fn photoshield() -> Command {
    let mut c = Command::cargo_bin("photoshield").unwrap();
    c.env("XDG_CONFIG_HOME", "/nonexistent")
        .timeout(Duration::from_secs(60));
    c
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every way out of the library: a lossless strip and a protected copy.
fn outputs(input: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let ctx = FileContext { name: "x" };
    let stripped = pipeline.strip(input, &ctx).unwrap().bytes;
    let protected = pipeline.process(input, &ctx).unwrap().bytes;
    vec![("strip", stripped), ("protect", protected)]
}

fn assert_nothing_planted_survives(what: &str, input: &[u8]) {
    assert!(
        contains(input, PLANTED),
        "{what}: the fixture carries the planted string"
    );
    let ins = photoshield::inspect::inspect(input).unwrap();
    assert!(
        ins.leaks(),
        "{what}: inspect calls the input clean: {:?}",
        ins.findings
    );
    for (how, out) in outputs(input) {
        assert!(
            !contains(&out, PLANTED),
            "{what}: the planted string survives {how}"
        );
        image::load_from_memory(&out).unwrap_or_else(|e| panic!("{what}: {how} output does not decode: {e}"));
        let after = photoshield::inspect::inspect(&out).unwrap();
        assert!(
            !after.leaks(),
            "{what}: {how} output still leaks: {:?}",
            after.findings
        );
    }
}

fn small_jpeg() -> Vec<u8> {
    common::jpeg(&common::landscape(48, 32, 3), 48, 32)
}

/// A JPEG whose first segment is `app0` instead of jpeg-encoder's JFIF header.
fn with_app0(app0: Vec<u8>) -> Vec<u8> {
    let plain = small_jpeg();
    // jpeg-encoder writes SOI then a JFIF APP0 of 16 bytes (marker, length, 14 bytes).
    assert_eq!(&plain[2..4], &[0xFF, 0xE0]);
    let rest = &plain[4 + u16::from_be_bytes([plain[4], plain[5]]) as usize..];
    common::with_segments(&[&plain[..2], rest].concat(), &[(0xE0, app0)])
}

#[test]
fn a_jfif_thumbnail_and_bytes_past_defined_fields_are_removed() {
    // JFIF 1.02 with a 4x1 RGB thumbnail that spells the planted string, then more.
    let mut app0 = b"JFIF\0\x01\x02\x01\0\x48\0\x48\x04\x01".to_vec();
    app0.extend_from_slice(b"SECRETSERIAL");
    app0.extend_from_slice(PLANTED);
    assert_nothing_planted_survives("JFIF thumbnail", &with_app0(app0));

    let mut adobe = b"Adobe\0\x64\0\0\0\0\x01".to_vec();
    adobe.extend_from_slice(PLANTED);
    let jpeg = common::with_segments(&small_jpeg(), &[(0xEE, adobe)]);
    assert_nothing_planted_survives("Adobe APP14 tail", &jpeg);
}

/// A PNG chunk.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&common::crc32(&body).to_be_bytes());
    out
}

fn plain_png() -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &common::landscape(24, 16, 1),
            24,
            16,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

use image::ImageEncoder;

/// A PNG with `chunks` inserted after IHDR.
fn png_with(chunks: &[Vec<u8>]) -> Vec<u8> {
    let plain = plain_png();
    [&plain[..33], &chunks.concat(), &plain[33..]].concat()
}

#[test]
fn oversized_png_chunks_are_rebuilt_from_their_fields() {
    let mut phys = vec![0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1];
    phys.extend_from_slice(PLANTED);
    assert_nothing_planted_survives("pHYs tail", &png_with(&[chunk(b"pHYs", &phys)]));
    let mut bkgd = vec![0, 1, 0, 2, 0, 3];
    bkgd.extend_from_slice(PLANTED);
    assert_nothing_planted_survives("bKGD tail", &png_with(&[chunk(b"bKGD", &bkgd)]));
}

/// An ICC profile (v2) whose description and device text name a person.
fn personal_icc() -> Vec<u8> {
    let text = |sig: &[u8; 4], s: &str| -> Vec<u8> {
        let mut d = b"desc\0\0\0\0".to_vec();
        d.extend_from_slice(&(s.len() as u32 + 1).to_be_bytes());
        d.extend_from_slice(s.as_bytes());
        d.push(0);
        d.extend_from_slice(&[0; 79]);
        let _ = sig;
        d
    };
    let mut cprt = b"text\0\0\0\0".to_vec();
    cprt.extend_from_slice(b"Copyright Jane SECRETSERIAL42\0");
    let tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
        (b"desc", text(b"desc", "Jane Doe SECRETSERIAL42 monitor")),
        (b"cprt", cprt),
        (b"dmdd", text(b"dmdd", "Panel SECRETSERIAL42")),
        (
            b"wtpt",
            b"XYZ \0\0\0\0\0\0\xf6\xd6\0\x01\0\0\0\0\xd3\x2d".to_vec(),
        ),
    ];
    let mut out = common::tiny_icc()[..128].to_vec();
    out.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    let table = out.len();
    out.resize(table + 12 * tags.len(), 0);
    for (i, (sig, data)) in tags.iter().enumerate() {
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        let at = out.len() as u32;
        out.extend_from_slice(data);
        let e = &mut out[table + 12 * i..table + 12 * i + 12];
        e[0..4].copy_from_slice(*sig);
        e[4..8].copy_from_slice(&at.to_be_bytes());
        e[8..12].copy_from_slice(&(data.len() as u32).to_be_bytes());
    }
    let size = out.len() as u32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    out
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

#[test]
fn colour_profiles_keep_their_colour_and_lose_their_names() {
    let icc = personal_icc();
    let jpeg = common::with_segments(&small_jpeg(), &[common::icc_segment(&icc)]);
    let ins = photoshield::inspect::inspect(&jpeg).unwrap();
    let shown = format!("{:?}", ins.findings);
    assert!(
        shown.contains("Jane Doe SECRETSERIAL42 monitor"),
        "inspect shows the text: {shown}"
    );
    assert_nothing_planted_survives("ICC text in JPEG", &jpeg);
    for (how, out) in outputs(&jpeg) {
        let layout = photoshield::container::jpeg::layout(&out);
        let kept =
            photoshield::container::jpeg::icc(&layout).unwrap_or_else(|| panic!("{how}: profile kept"));
        let fields = photoshield::icc::text_fields(&kept);
        assert!(
            fields.iter().any(|(t, _)| t == "wtpt") || kept.windows(4).any(|w| w == b"wtpt"),
            "{how}"
        );
        assert!(
            fields.iter().all(|(_, s)| !s.contains("Jane")),
            "{how}: {fields:?}"
        );
    }

    // PNG: the profile's text, and the iCCP chunk's own name.
    let mut iccp = b"Jane SECRETSERIAL42\0\0".to_vec();
    iccp.extend(zlib(&icc));
    assert_nothing_planted_survives("iCCP name and text", &png_with(&[chunk(b"iCCP", &iccp)]));
}

#[test]
fn a_colour_profile_bomb_is_dropped_with_a_note() {
    // 64 MB of zeros compress to about 64 KB: the cap is 4 MB.
    let mut iccp = b"ICC profile\0\0".to_vec();
    iccp.extend(zlib(&vec![0u8; 64 << 20]));
    let png = png_with(&[chunk(b"iCCP", &iccp)]);
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let ctx = FileContext { name: "bomb.png" };
    let protected = pipeline.process(&png, &ctx).unwrap();
    assert!(
        protected.bytes.len() < 64 << 10,
        "{} bytes",
        protected.bytes.len()
    );
    assert!(
        protected
            .report
            .notes
            .iter()
            .any(|n| n.contains("colour profile dropped")),
        "{:?}",
        protected.report.notes
    );
    let stripped = pipeline.strip(&png, &ctx).unwrap();
    assert!(stripped.bytes.len() < 64 << 10);
    assert_eq!(
        stripped.report.input_size,
        (24, 16),
        "the size is read without inflating the profile"
    );
    assert!(!photoshield::inspect::inspect(&stripped.bytes).unwrap().leaks());
}

#[test]
fn an_exif_block_whose_entries_share_one_large_value_is_not_expanded() {
    // Big-endian TIFF: IFD0 with 4,000 UNDEFINED entries, each 200 KB, all at the same offset.
    let n = 4000u16;
    let value_at = 8 + 2 + 12 * n as u32 + 4;
    let mut tiff = b"MM\0\x2A\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&n.to_be_bytes());
    for i in 0..n {
        tiff.extend_from_slice(&(0xC000 + i).to_be_bytes());
        tiff.extend_from_slice(&7u16.to_be_bytes());
        tiff.extend_from_slice(&(200_000u32).to_be_bytes());
        tiff.extend_from_slice(&value_at.to_be_bytes());
    }
    tiff.extend_from_slice(&[0; 4]);
    tiff.resize(tiff.len() + 200_000, b'x');
    let png = png_with(&[chunk(b"eXIf", &tiff)]);
    // 800 MB of declared values in a 250 KB block: refused before any reader copies them.
    let start = Instant::now();
    let ins = photoshield::inspect::inspect(&png).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(ins.leaks());
    assert!(
        format!("{:?}", ins.findings).contains("crafted"),
        "{:?}",
        ins.findings
    );
    assert!(photoshield::metadata::exif_values_are_bounded(&tiff).is_err());
    assert!(
        photoshield::metadata::exif_values_are_bounded(&common::exif_tiff(&common::ExifSpec {
            serial: Some("SN"),
            ..Default::default()
        }))
        .is_ok()
    );
}

/// A lossless WebP of a tiny image, as its VP8L chunk's payload.
fn vp8l_frame() -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(&common::landscape(8, 8, 2), 8, 8, image::ExtendedColorType::Rgb8)
        .unwrap();
    let chunks: Vec<_> = photoshield::container::riff::chunks(&out).collect();
    chunks.iter().find(|c| &c.id == b"VP8L").unwrap().data.to_vec()
}

fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (id, data) in chunks {
        photoshield::container::riff::push_chunk(&mut body, id, data);
    }
    [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat()
}

#[test]
fn metadata_inside_an_animation_frame_is_removed() {
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(common::exif_tiff(&common::ExifSpec {
        serial: Some("SECRETSERIAL42"),
        gps: Some((48.8, 2.3)),
        artist: Some("Jane Private"),
        ..Default::default()
    }));
    let mut frame = vec![0u8; 16];
    frame[6..9].copy_from_slice(&[7, 0, 0]); // width - 1
    frame[9..12].copy_from_slice(&[7, 0, 0]); // height - 1
    frame[12..15].copy_from_slice(&[100, 0, 0]); // duration
    let mut anmf = frame.clone();
    photoshield::container::riff::push_chunk(&mut anmf, b"VP8L", &vp8l_frame());
    photoshield::container::riff::push_chunk(&mut anmf, b"EXIF", &exif);
    photoshield::container::riff::push_chunk(&mut anmf, b"XMP ", b"<x:xmpmeta>SECRETSERIAL42</x:xmpmeta>");
    let mut vp8x = vec![0x02u8, 0, 0, 0];
    vp8x.extend_from_slice(&[7, 0, 0, 7, 0, 0]);
    let webp = riff(&[
        (b"VP8X", vp8x),
        (b"ANIM", vec![0, 0, 0, 0, 0, 0]),
        (b"ANMF", anmf.clone()),
        (b"ANMF", anmf),
    ]);
    assert_nothing_planted_survives("EXIF and XMP in an ANMF frame", &webp);
}

#[test]
fn one_orientation_rule_for_protect_strip_and_inspect() {
    let (w, h) = (40, 24);
    let stored = common::jpeg(&common::landscape(w, h, 4), w, h);
    let seg = |o: u16| {
        common::exif_segment(&common::ExifSpec {
            orientation: Some(o),
            ..Default::default()
        })
    };
    // Two EXIF segments: the first counts, as in browsers and exiftool.
    let jpeg = common::with_segments(&stored, &[seg(6), seg(3)]);
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let ctx = FileContext { name: "x.jpg" };
    let protected = pipeline.process(&jpeg, &ctx).unwrap();
    assert_eq!(protected.report.orientation, 6);
    assert_eq!(protected.report.output_size, (h, w));
    let stripped = pipeline.strip(&jpeg, &ctx).unwrap().bytes;
    assert_eq!(
        photoshield::metadata::orientation(&stripped, photoshield::Format::Jpeg),
        6
    );
    let ins = format!("{:?}", photoshield::inspect::inspect(&jpeg).unwrap().findings);
    assert!(
        ins.contains("orientation 6") && !ins.contains("orientation 3"),
        "{ins}"
    );

    // A big-endian EXIF chunk in a WebP (as iPhones write), with the JPEG-style prefix.
    let mut lossless = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut lossless)
        .write_image(&common::landscape(w, h, 5), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    let vp8l = photoshield::container::riff::chunks(&lossless)
        .find(|c| &c.id == b"VP8L")
        .unwrap()
        .data
        .to_vec();
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend(common::exif_tiff(&common::ExifSpec {
        orientation: Some(6),
        ..Default::default()
    }));
    let mut vp8x = vec![0x08u8, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let webp = riff(&[(b"VP8X", vp8x), (b"VP8L", vp8l), (b"EXIF", exif)]);
    let protected = pipeline.process(&webp, &ctx).unwrap();
    assert_eq!(protected.report.orientation, 6, "big-endian WebP EXIF");
    assert!(
        format!("{:?}", photoshield::inspect::inspect(&webp).unwrap().findings).contains("orientation 6")
    );

    // A PNG eXIf after the image data: browsers ignore it, so does everything here.
    let plain = plain_png();
    let iend = plain.len() - 12;
    let exif = common::exif_tiff(&common::ExifSpec {
        orientation: Some(6),
        ..Default::default()
    });
    let png = [&plain[..iend], &chunk(b"eXIf", &exif), &plain[iend..]].concat();
    let protected = pipeline.process(&png, &ctx).unwrap();
    assert_eq!(protected.report.orientation, 1);
    let stripped = pipeline.strip(&png, &ctx).unwrap().bytes;
    assert_eq!(
        photoshield::metadata::orientation(&stripped, photoshield::Format::Png),
        1
    );
    let ins = format!("{:?}", photoshield::inspect::inspect(&png).unwrap().findings);
    assert!(ins.contains("after the image data"), "{ins}");
}

#[test]
fn the_first_half_of_a_jpeg_with_an_end_marker_is_refused() {
    let whole = common::jpeg(&common::landscape(64, 64, 6), 64, 64);
    let half = [&whole[..whole.len() / 2], &[0xFF, 0xD9][..]].concat();
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let err = pipeline
        .process(&half, &FileContext { name: "half.jpg" })
        .unwrap_err();
    assert!(err.to_string().contains("truncated image data"), "{err}");
    // The whole file, and every real camera file of the fixtures, is complete.
    assert!(pipeline
        .process(&whole, &FileContext { name: "whole.jpg" })
        .is_ok());
    let layout = photoshield::container::jpeg::layout(&whole);
    let scan = photoshield::entropy::check(&whole, &layout).unwrap();
    assert!(scan.complete() && scan.unused.is_empty(), "{scan:?}");
}

#[test]
fn bytes_hidden_between_the_image_data_and_the_end_marker_are_removed() {
    let whole = common::jpeg(&common::landscape(64, 48, 7), 64, 48);
    let eoi = whole.len() - 2;
    let hidden = [&whole[..eoi], PLANTED, &whole[eoi..]].concat();
    assert_nothing_planted_survives("bytes before EOI", &hidden);
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let stripped = pipeline
        .strip(&hidden, &FileContext { name: "x.jpg" })
        .unwrap()
        .bytes;
    assert_eq!(stripped.len(), whole.len(), "exactly the planted bytes went");
}

/// A tree of originals with distinct contents.
fn originals(root: &Path, names: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let bytes = common::camera_jpeg(40, 30, 1, i as u32 + 1);
            fs::write(&path, &bytes).unwrap();
            (path, bytes)
        })
        .collect()
}

fn assert_untouched(originals: &[(PathBuf, Vec<u8>)]) {
    for (path, bytes) in originals {
        let now = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(now == *bytes, "original {} was changed", path.display());
    }
}

#[test]
fn an_output_folder_inside_the_input_never_replaces_originals() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let files = originals(&input, &["photo.jpg", "sub/photo.jpg"]);
    for op in ["protect", "strip"] {
        let assert = photoshield()
            .args([op, "--if-exists", "overwrite"])
            .arg(&input)
            .arg("-o")
            .arg(input.join("sub"))
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(
            stderr.contains("sub/photo.jpg") && stderr.contains("inside the input folder"),
            "{stderr}"
        );
        assert_untouched(&files);
    }
    // Two explicit inputs, one of which is the other's output (one job at a time, so the first
    // input is the one that meets the second as its output).
    let assert = photoshield()
        .args(["protect", "-j", "1", "--if-exists", "overwrite"])
        .arg(&files[0].0)
        .arg(&files[1].0)
        .arg("-o")
        .arg(input.join("sub"))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("is one of the inputs"), "{stderr}");
    assert_untouched(&files);
}

#[test]
fn earlier_outputs_temporary_files_and_fifos_are_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let files = originals(&input, &["a.jpg"]);
    photoshield()
        .arg("protect")
        .arg(&input)
        .arg("-o")
        .arg(input.join("out_a"))
        .assert()
        .success();
    assert!(input.join("out_a/.photoshield").is_file());
    photoshield().arg("protect").arg(&files[0].0).assert().success(); // in/a.protected.jpg
                                                                      // A temporary file a killed run left, stale, in the next output folder.
    let out_b = dir.path().join("out_b");
    fs::create_dir_all(&out_b).unwrap();
    let stale = out_b.join(".photoshield-AbC123.tmp");
    fs::write(&stale, b"half").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::write(input.join(".photoshield-XyZ789.tmp"), b"half").unwrap();
    #[cfg(unix)]
    {
        let fifo = std::ffi::CString::new(input.join(".hidden.fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/dev/zero", input.join("zero.jpg")).unwrap();
    }
    let assert = photoshield()
        .args(["protect", "-v"])
        .arg(&input)
        .arg("-o")
        .arg(&out_b)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("1 written"), "{stderr}");
    assert!(
        stderr.contains("out_a: a folder of earlier photoshield outputs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a.protected.jpg: an earlier photoshield output"),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        assert!(
            stderr.contains(".hidden.fifo: not a regular file (a FIFO)"),
            "{stderr}"
        );
        assert!(
            stderr.contains("zero.jpg: not a regular file (a device)"),
            "{stderr}"
        );
    }
    assert!(
        !stderr.contains(".photoshield-XyZ789.tmp"),
        "temporary files are not inputs: {stderr}"
    );
    assert!(!stale.exists(), "the stale temporary file was removed");
    let written: Vec<_> = fs::read_dir(&out_b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written.len(), 2, "{written:?}"); // a.jpg and the marker
    assert_untouched(&files);
}

#[cfg(unix)]
#[test]
fn keys_are_read_only_from_small_regular_files_and_exposure_is_warned() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("a.jpg");
    fs::write(&photo, common::camera_jpeg(40, 30, 1, 1)).unwrap();
    let fifo = dir.path().join("key.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for key in [fifo.as_path(), Path::new("/dev/zero")] {
        let assert = photoshield()
            .args(["detect", "--key"])
            .arg(key)
            .arg(&photo)
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
    let key = dir.path().join("mark.key");
    photoshield().args(["keygen", "-o"]).arg(&key).assert().success();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let assert = photoshield()
        .args(["detect", "--key"])
        .arg(&key)
        .arg(&photo)
        .assert();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("warning: key file") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the layout of inputs and output folder, and whatever the mode, no original is
    /// ever changed or removed.
    #[test]
    fn no_layout_and_no_mode_replaces_an_original(
        names in proptest::sample::subsequence(vec!["a.jpg", "sub/a.jpg", "sub/b.jpg", "x/y/a.jpg", "out/a.jpg", "a.protected.jpg"], 1..6),
        out in proptest::sample::select(vec!["in/sub", "in/out", "in", "in/x/y", "out", "in/new"]),
        op in proptest::sample::select(vec!["protect", "strip"]),
        policy in proptest::sample::select(vec!["overwrite", "skip", "error"]),
        explicit in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let files = originals(&input, &names);
        let mut cmd = photoshield();
        cmd.args([op, "--if-exists", policy]);
        if explicit {
            for (p, _) in &files {
                cmd.arg(p);
            }
        } else {
            cmd.arg(&input);
        }
        let out = cmd.arg("-o").arg(dir.path().join(out)).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(matches!(out.status.code(), Some(0..=2)), "{out:?}");
        prop_assert!(!stderr.contains("Usage:"), "the command line is right: {stderr}");
        assert_untouched(&files);
    }
}

/// Item 4, the tails of compressed picture data: bytes after the end of a PNG's zlib stream
/// (inside its last IDAT, or in an IDAT of their own) and after a VP8 bitstream (a still
/// WebP's, an animation frame's) are read by no decoder; strip drops them, inspect reports
/// them, and the pictures are unchanged.
#[test]
fn bytes_after_the_compressed_picture_data_are_removed() {
    // PNG: the planted bytes at the end of the last IDAT, then as an IDAT of their own.
    let plain = plain_png();
    let chunks: Vec<_> = photoshield::container::png::chunks(&plain).collect();
    let idat = chunks.iter().find(|c| &c.kind == b"IDAT").unwrap();
    let rebuilt = |extra: Vec<Vec<u8>>| -> Vec<u8> {
        [&plain[..idat.offset], &extra.concat(), &plain[idat.end..]].concat()
    };
    let tailed = rebuilt(vec![chunk(b"IDAT", &[idat.data, PLANTED].concat())]);
    assert_nothing_planted_survives("bytes after the zlib stream in IDAT", &tailed);
    let own = rebuilt(vec![chunk(b"IDAT", idat.data), chunk(b"IDAT", PLANTED)]);
    assert_nothing_planted_survives("an IDAT after the zlib stream", &own);
    let pipeline = Pipeline::new(&Options::default()).unwrap();
    let ctx = FileContext { name: "x" };
    for input in [&tailed, &own] {
        let stripped = pipeline.strip(input, &ctx).unwrap().bytes;
        assert_eq!(
            image::load_from_memory(&stripped).unwrap().into_rgb8().into_raw(),
            common::landscape(24, 16, 1),
            "the PNG's picture changed"
        );
    }

    // WebP: a lossy still and an animation frame with a tail after the VP8 bitstream.
    let (w, h) = (64, 48);
    let rgb = common::landscape(w, h, 6);
    let lossy = photoshield::codec::encode(
        &photoshield::Pixels::new(w, h, photoshield::Layout::Rgb8, rgb),
        photoshield::codec::EncodeSettings {
            format: photoshield::format::OutputFormat::WebP,
            quality: 80,
        },
        None,
    )
    .unwrap();
    let vp8 = photoshield::container::riff::chunks(&lossy)
        .find(|c| &c.id == b"VP8 ")
        .unwrap()
        .data
        .to_vec();
    let tail = [PLANTED, &[0x55; 40][..]].concat();
    let still = riff(&[(b"VP8 ", [&vp8[..], &tail].concat())]);
    assert_nothing_planted_survives("bytes after a VP8 bitstream", &still);
    let stripped = pipeline.strip(&still, &ctx).unwrap().bytes;
    assert_eq!(
        image::load_from_memory(&stripped).unwrap().into_rgb8().into_raw(),
        image::load_from_memory(&lossy).unwrap().into_rgb8().into_raw(),
        "the WebP's picture changed"
    );
    let mut anmf = vec![0u8; 16];
    anmf[6..9].copy_from_slice(&((w - 1).to_le_bytes()[..3]));
    anmf[9..12].copy_from_slice(&((h - 1).to_le_bytes()[..3]));
    anmf[12] = 100;
    photoshield::container::riff::push_chunk(&mut anmf, b"VP8 ", &[&vp8[..], &tail].concat());
    let mut vp8x = vec![0x02u8, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let animation = riff(&[(b"VP8X", vp8x), (b"ANIM", vec![0; 6]), (b"ANMF", anmf)]);
    assert_nothing_planted_survives("bytes after an animation frame's VP8 bitstream", &animation);
    // An ordinary file keeps every byte of its bitstream.
    assert_eq!(pipeline.strip(&lossy, &ctx).unwrap().bytes.len(), lossy.len());
}
