//! `inspect`: everything in a file that identifies a person, a place or a device, decoded for
//! people (GPS in degrees, serial numbers, names) and classified as a leak or not. Reads the
//! containers through the same walkers and rules as `strip` (`metadata`) and EXIF through
//! kamadak-exif; decodes pixels only to compare an embedded thumbnail with the main image.

use serde::Serialize;

use crate::codec;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::metadata::{self, classify_jpeg_segment, Kind};

/// What kind of information a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Gps,
    Serial,
    Owner,
    Camera,
    Time,
    Software,
    MakerNotes,
    Thumbnail,
    Xmp,
    Iptc,
    Comment,
    Text,
    Trailer,
    Mpf,
    C2pa,
    OtherMetadata,
    /// A rights notice (copyright, AI-training reservation): wanted, not a leak.
    Rights,
    /// Colour profile: not identifying.
    Icc,
    /// Orientation tag alone: not identifying.
    Orientation,
}

/// One thing found in a file.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub category: Category,
    /// What it says, for people ("48.858370, 2.294480", "SerialNumber: SN-0042").
    pub detail: String,
    /// Whether it identifies a person, place or device (or may).
    pub leak: bool,
}

/// Everything found in one file.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub format: String,
    /// GPS position in decimal degrees (latitude, longitude), when the file has one.
    pub gps: Option<(f64, f64)>,
    /// Serial numbers found (body, lens, maker-note, XMP).
    pub serials: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Inspection {
    pub fn leaks(&self) -> bool {
        self.findings.iter().any(|f| f.leak)
    }

    fn add(&mut self, category: Category, detail: impl Into<String>, leak: bool) {
        self.findings.push(Finding {
            category,
            detail: detail.into(),
            leak,
        });
    }
}

/// Properties of an XMP packet that make up a rights notice (what `--rights` writes).
const RIGHTS_PROPERTIES: &[&str] = &[
    "dc:rights",
    "dc:creator",
    "xmpRights:Marked",
    "xmpRights:WebStatement",
    "plus:DataMining",
];

/// Inspects one file.
pub fn inspect(bytes: &[u8]) -> Result<Inspection> {
    let format = match crate::format::sniff(bytes) {
        Ok(f) => f,
        Err(Error::Unsupported(what)) if bytes.get(4..8) == Some(b"ftyp") => {
            return Ok(inspect_isobmff(bytes, what));
        }
        Err(e) => return Err(e),
    };
    let mut ins = Inspection {
        format: format.to_string(),
        gps: None,
        serials: Vec::new(),
        findings: Vec::new(),
    };
    match format {
        Format::Jpeg => inspect_jpeg(bytes, &mut ins),
        Format::Png => inspect_png(bytes, &mut ins),
        Format::WebP => inspect_webp(bytes, &mut ins),
        Format::Tiff => inspect_exif(bytes, &mut ins, None),
        Format::Heif | Format::Avif | Format::Jxl => inspect_boxes(bytes, format, &mut ins),
        Format::Gif => inspect_gif(bytes, &mut ins),
    }
    report_orientation(bytes, format, &mut ins);
    ins.findings.sort_by_key(|f| f.category);
    Ok(ins)
}

/// Bytes after `end`, where the format's structure says the file ends.
fn report_trailer(bytes: &[u8], end: Option<usize>, ins: &mut Inspection) {
    if let Some(end) = end.filter(|&e| e < bytes.len()) {
        ins.add(
            Category::Trailer,
            format!("{} bytes after the end of the image", bytes.len() - end),
            true,
        );
    }
}

/// GIF's extension blocks: comments, XMP, and any application or plain-text block that is not
/// one of the animation loop blocks every viewer knows; bytes after the trailer.
fn inspect_gif(bytes: &[u8], ins: &mut Inspection) {
    let layout = crate::container::gif::layout(bytes);
    for block in &layout.extensions {
        match block.label {
            0xFE => ins.add(
                Category::Comment,
                format!("GIF comment ({} bytes)", block.len),
                true,
            ),
            0xFF if block.app.starts_with(b"XMP Data") => {
                ins.add(Category::Xmp, format!("XMP packet ({} bytes)", block.len), true)
            }
            0xFF if matches!(block.app, b"NETSCAPE2.0" | b"ANIMEXTS1.0") => {}
            0xFF => ins.add(
                Category::OtherMetadata,
                format!(
                    "application block \"{}\" ({} bytes)",
                    printable(block.app, 11),
                    block.len
                ),
                true,
            ),
            0x01 => ins.add(
                Category::OtherMetadata,
                format!("plain-text block ({} bytes)", block.len),
                true,
            ),
            _ => {}
        }
    }
    report_trailer(bytes, layout.end, ins);
}

/// The orientation that counts ([`metadata::orientation`], the rule `protect` and `strip`
/// follow), and any EXIF block whose orientation does not count and why.
fn report_orientation(bytes: &[u8], format: Format, ins: &mut Inspection) {
    if let Some(o) = metadata::exif_block(bytes, format).and_then(metadata::tiff_orientation) {
        ins.add(Category::Orientation, format!("orientation {o}"), false);
    }
    let ignored = match format {
        Format::Jpeg => {
            let n = crate::container::jpeg::header(bytes)
                .segments
                .iter()
                .filter(|s| s.marker == 0xE1 && s.data.starts_with(b"Exif\0"))
                .count();
            (n > 1).then(|| format!("{n} EXIF segments: only the first counts, as in browsers and exiftool"))
        }
        Format::Png => crate::container::png::chunks(bytes)
            .skip_while(|c| &c.kind != b"IDAT")
            .any(|c| &c.kind == b"eXIf")
            .then(|| {
                "eXIf chunk after the image data: browsers ignore it, so its orientation does not count"
                    .into()
            }),
        _ => None,
    };
    if let Some(why) = ignored {
        ins.add(Category::Orientation, why, false);
    }
}

/// AVIF (and other ISO media files photoshield does not decode): no pixels for us, but the
/// HEIF box walk names their items (EXIF, XMP, thumbnails, auxiliary images) all the same.
fn inspect_isobmff(bytes: &[u8], what: &str) -> Inspection {
    let mut ins = Inspection {
        format: what.split(';').next().unwrap_or(what).to_string(),
        gps: None,
        serials: Vec::new(),
        findings: Vec::new(),
    };
    inspect_boxes(bytes, Format::Heif, &mut ins);
    if !ins.findings.iter().any(|f| f.category == Category::Xmp) && memfind(bytes, b"<x:xmpmeta").is_some() {
        ins.add(Category::Xmp, "XMP packet", true);
    }
    ins.findings.sort_by_key(|f| f.category);
    ins
}

/// HEIC and JPEG XL: EXIF and XMP read like any other; every other part of the file
/// (thumbnails, depth maps, gain maps, an embedded video) named from the box walk.
fn inspect_boxes(bytes: &[u8], format: Format, ins: &mut Inspection) {
    use crate::container::isobmff;
    let parts = match format {
        Format::Heif | Format::Avif => isobmff::heif_parts(bytes),
        _ => isobmff::jxl_parts(bytes),
    };
    for part in parts {
        match (part.kind, part.data) {
            (Kind::Exif, Some(data)) => {
                // HEIF and JPEG XL put a 4-byte offset to the TIFF header first.
                let skip = data
                    .get(0..4)
                    .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
                match data.get(4usize.saturating_add(skip)..) {
                    Some(tiff) => inspect_exif(tiff, ins, None),
                    None => ins.add(Category::OtherMetadata, format!("damaged {}", part.detail), true),
                }
            }
            (Kind::Xmp, Some(data)) => inspect_xmp(&data, ins),
            (kind, _) => {
                let category = match kind {
                    Kind::Thumbnail => Category::Thumbnail,
                    Kind::Auxiliary => Category::Mpf,
                    Kind::Trailer => Category::Trailer,
                    Kind::C2pa => Category::C2pa,
                    Kind::Exif | Kind::Xmp => Category::Xmp,
                    _ => Category::OtherMetadata,
                };
                ins.add(category, part.detail, true);
            }
        }
    }
}

/// Reports a colour profile with its text fields. It is a leak when its text may identify a
/// person or device (`protect` and `strip` replace that text), or when it is larger than any
/// real profile (they drop it).
fn inspect_icc(what: &str, profile: &[u8], ins: &mut Inspection) {
    if profile.len() > crate::icc::MAX_PROFILE {
        ins.add(
            Category::OtherMetadata,
            format!(
                "{what} of {} KB, larger than any real profile",
                profile.len() >> 10
            ),
            true,
        );
        return;
    }
    let fields: Vec<String> = crate::icc::text_fields(profile)
        .into_iter()
        .map(|(tag, text)| format!("{tag} \"{}\"", printable(text.as_bytes(), 60)))
        .collect();
    let detail = match fields.is_empty() {
        true => format!("{what} ({} bytes)", profile.len()),
        false => format!("{what} ({} bytes): {}", profile.len(), fields.join(", ")),
    };
    ins.add(Category::Icc, detail, crate::icc::has_identifying_text(profile));
}

/// Reports bytes a kept piece carries past its defined fields: nothing a reader uses, a place
/// to hide anything.
fn unknown_data(ins: &mut Inspection, extra: usize, place: &str) {
    if extra > 0 {
        ins.add(
            Category::OtherMetadata,
            format!("{extra} bytes of unknown data in {place}"),
            true,
        );
    }
}

fn inspect_jpeg(bytes: &[u8], ins: &mut Inspection) {
    let layout = crate::container::jpeg::layout(bytes);
    if let Some(err) = layout.error {
        ins.add(
            Category::OtherMetadata,
            format!("damaged structure: {err}"),
            false,
        );
    }
    if let Some(profile) = crate::container::jpeg::icc(&layout) {
        inspect_icc("ICC profile", &profile, ins);
    }
    if let Some(scan) = crate::entropy::check(bytes, &layout) {
        if !scan.complete() {
            ins.add(
                Category::OtherMetadata,
                format!(
                    "truncated image data ({} of {} blocks present)",
                    scan.found, scan.expected
                ),
                false,
            );
        }
        let extra: usize = scan.unused.iter().map(|r| r.len()).sum();
        unknown_data(ins, extra, "the image data (bytes no block uses)");
    }
    for seg in &layout.segments {
        let data = seg.data;
        if seg.marker == 0xE0 && data.starts_with(b"JFIF\0") {
            let (w, h) = (
                data.get(12).copied().unwrap_or(0),
                data.get(13).copied().unwrap_or(0),
            );
            if w > 0 && h > 0 {
                ins.add(
                    Category::Thumbnail,
                    format!("JFIF thumbnail {w}x{h} (may show an uncropped original)"),
                    true,
                );
            }
            let defined = 14 + 3 * w as usize * h as usize;
            unknown_data(ins, data.len().saturating_sub(defined), "the JFIF segment");
        }
        if seg.marker == 0xEE && data.starts_with(b"Adobe") {
            unknown_data(ins, data.len().saturating_sub(12), "the Adobe segment");
        }
        let defined = crate::container::jpeg::defined_len(seg.marker, data);
        unknown_data(
            ins,
            data.len() - defined,
            &format!("the segment with marker 0xFF{:02X}", seg.marker),
        );
        match classify_jpeg_segment(seg.marker, data) {
            Some(Kind::Exif) => inspect_exif(&data[6..], ins, Some(bytes)),
            Some(Kind::Xmp) => inspect_xmp(data, ins),
            Some(Kind::Iptc) => inspect_iptc(data, ins),
            Some(Kind::Comment) => ins.add(
                Category::Comment,
                format!("JPEG comment: {}", printable(data, 60)),
                true,
            ),
            Some(Kind::Icc) => {}
            Some(Kind::Thumbnail) => ins.add(Category::Thumbnail, "JFIF extension thumbnail", true),
            Some(Kind::Mpf) => ins.add(Category::Mpf, "MPF index of secondary images", true),
            Some(Kind::C2pa) => ins.add(
                Category::C2pa,
                format!("JUMBF/C2PA manifest ({} bytes)", data.len()),
                true,
            ),
            Some(Kind::Other) => {
                ins.add(
                    Category::OtherMetadata,
                    format!(
                        "APP{} segment \"{}\" ({} bytes)",
                        seg.marker - 0xE0,
                        printable(&data[..data.len().min(12)], 12),
                        data.len()
                    ),
                    true,
                );
                if seg.marker == 0xEC {
                    for serial in picture_info_serials(data) {
                        ins.serials.push(serial.clone());
                        ins.add(
                            Category::Serial,
                            format!("APP12 picture info serial: {serial}"),
                            true,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(end) = layout.end.filter(|&e| e < bytes.len()) {
        let rest = &bytes[end..];
        let what = if memfind(rest, b"ftyp").is_some() {
            "an embedded video (motion photo)"
        } else if rest.starts_with(&[0xFF, 0xD8]) {
            "another JPEG image (MPF secondary image or appended file)"
        } else {
            "unidentified data"
        };
        ins.add(
            Category::Trailer,
            format!("{} bytes after the end of the image: {what}", rest.len()),
            true,
        );
    }
}

fn inspect_png(bytes: &[u8], ins: &mut Inspection) {
    for chunk in crate::container::png::chunks(bytes) {
        match &chunk.kind {
            b"tEXt" | b"zTXt" | b"iTXt" => {
                let keyword = chunk.data.split(|&b| b == 0).next().unwrap_or_default();
                if keyword == b"XML:com.adobe.xmp" {
                    let start = keyword.len() + 5;
                    inspect_xmp(chunk.data.get(start..).unwrap_or_default(), ins);
                } else if let Some(exif) = raw_profile_exif(&chunk.kind, chunk.data) {
                    // ImageMagick's way of keeping EXIF in a PNG. Browsers ignore it, and so
                    // does photoshield's orientation: only eXIf counts.
                    ins.add(
                        Category::Text,
                        format!(
                            "{} chunk \"Raw profile type exif\": a whole EXIF block as hex text (its orientation is ignored, as browsers ignore it)",
                            String::from_utf8_lossy(&chunk.kind)
                        ),
                        true,
                    );
                    inspect_exif(&exif, ins, None);
                } else {
                    let key = String::from_utf8_lossy(keyword);
                    ins.add(
                        Category::Text,
                        format!("{} chunk \"{key}\"", String::from_utf8_lossy(&chunk.kind)),
                        true,
                    );
                }
            }
            b"eXIf" => inspect_exif(chunk.data, ins, None),
            b"tIME" => ins.add(Category::Time, "tIME: last modification time", true),
            b"iCCP" => {
                let name_end = chunk.data.iter().take(80).position(|&b| b == 0).unwrap_or(0);
                let name = printable(&chunk.data[..name_end], 40);
                match crate::container::png::iccp_profile(chunk.data) {
                    Ok(profile) => inspect_icc(&format!("iCCP colour profile \"{name}\""), &profile, ins),
                    Err(why) => ins.add(Category::OtherMetadata, why, true),
                }
            }
            b"pHYs" | b"bKGD" | b"gAMA" | b"cHRM" | b"sRGB" => {
                let defined = match &chunk.kind {
                    b"pHYs" => 9,
                    b"bKGD" => 6,
                    b"gAMA" => 4,
                    b"cHRM" => 32,
                    _ => 1,
                };
                unknown_data(
                    ins,
                    chunk.data.len().saturating_sub(defined),
                    &format!("the {} chunk", String::from_utf8_lossy(&chunk.kind)),
                );
            }
            b"caBX" => ins.add(Category::C2pa, "caBX C2PA manifest", true),
            // The picture, its animation and its colour: what `strip` keeps.
            b"IHDR" | b"PLTE" | b"IDAT" | b"IEND" | b"tRNS" | b"sBIT" | b"cICP" | b"mDCV" | b"cLLI"
            | b"acTL" | b"fcTL" | b"fdAT" => {}
            kind => ins.add(
                Category::OtherMetadata,
                format!("chunk \"{}\" ({} bytes)", printable(kind, 4), chunk.data.len()),
                true,
            ),
        }
    }
    let chunks: Vec<_> = crate::container::png::chunks(bytes).collect();
    let past_stream: usize = chunks
        .iter()
        .zip(crate::image_data::png_used(&chunks))
        .map(|(c, used)| c.data.len() - used)
        .sum();
    unknown_data(
        ins,
        past_stream,
        "the image data (bytes after its compressed stream)",
    );
    let end = chunks.iter().find(|c| &c.kind == b"IEND").map(|c| c.end);
    report_trailer(bytes, end, ins);
}

fn inspect_webp(bytes: &[u8], ins: &mut Inspection) {
    report_trailer(bytes, crate::container::riff::end(bytes), ins);
    let chunks: Vec<_> = crate::container::riff::chunks(bytes).collect();
    let size = crate::container::riff::canvas_size(&chunks);
    for chunk in &chunks {
        match &chunk.id {
            b"EXIF" => {
                // Some writers keep the JPEG-style "Exif\0\0" prefix.
                let data = chunk.data.strip_prefix(b"Exif\0\0").unwrap_or(chunk.data);
                inspect_exif(data, ins, None)
            }
            b"XMP " => inspect_xmp(chunk.data, ins),
            b"ICCP" => inspect_icc("ICCP colour profile", chunk.data, ins),
            b"ANMF" => inspect_webp_frame(chunk.data, ins),
            b"VP8X" => unknown_data(ins, chunk.data.len().saturating_sub(10), "the VP8X chunk"),
            b"ANIM" => unknown_data(ins, chunk.data.len().saturating_sub(6), "the ANIM chunk"),
            id @ (b"VP8 " | b"VP8L" | b"ALPH") => unknown_data(
                ins,
                chunk.data.len() - crate::image_data::webp_chunk_used_len(id, chunk.data, size),
                &format!(
                    "the {} chunk (bytes after its bitstream)",
                    printable(id, 4).trim_end()
                ),
            ),
            id => ins.add(
                Category::OtherMetadata,
                format!(
                    "unknown chunk \"{}\" ({} bytes)",
                    printable(id, 4),
                    chunk.data.len()
                ),
                true,
            ),
        }
    }
}

/// The chunks inside an animation frame: only the picture (`ALPH`, `VP8 `, `VP8L`) belongs
/// there, but readers skip anything else, so metadata can hide in a frame.
fn inspect_webp_frame(data: &[u8], ins: &mut Inspection) {
    let size = crate::container::riff::anmf_size(data);
    for (id, body) in crate::container::riff::anmf_subchunks(data) {
        match &id {
            b"VP8 " | b"VP8L" | b"ALPH" => unknown_data(
                ins,
                body.len() - crate::image_data::webp_chunk_used_len(&id, body, size),
                &format!(
                    "an animation frame's {} chunk (bytes after its bitstream)",
                    printable(&id, 4).trim_end()
                ),
            ),
            b"EXIF" => {
                ins.add(
                    Category::OtherMetadata,
                    "EXIF chunk inside an animation frame",
                    true,
                );
                inspect_exif(body.strip_prefix(b"Exif\0\0").unwrap_or(body), ins, None);
            }
            b"XMP " => {
                ins.add(
                    Category::OtherMetadata,
                    "XMP chunk inside an animation frame",
                    true,
                );
                inspect_xmp(body, ins);
            }
            _ => ins.add(
                Category::OtherMetadata,
                format!(
                    "unknown chunk \"{}\" inside an animation frame ({} bytes)",
                    printable(&id, 4),
                    body.len()
                ),
                true,
            ),
        }
    }
}

/// The EXIF block of ImageMagick's "Raw profile type exif" text chunk: a header line, a length,
/// then hex digits (after an optional "Exif\0\0").
pub(crate) fn raw_profile_exif(kind: &[u8; 4], data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let keyword_end = data.iter().position(|&b| b == 0)?;
    if !data[..keyword_end].eq_ignore_ascii_case(b"Raw profile type exif") {
        return None;
    }
    let text: Vec<u8> = match kind {
        b"tEXt" => data[keyword_end + 1..].to_vec(),
        b"zTXt" => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(data.get(keyword_end + 2..)?)
                .take(16 << 20)
                .read_to_end(&mut out)
                .ok()?;
            out
        }
        _ => return None,
    };
    let text = String::from_utf8_lossy(&text);
    let mut words = text.split_whitespace();
    let _name = words.next()?;
    let len: usize = words.next()?.parse().ok()?;
    let hex: String = words.collect();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map_while(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .take(len)
        .collect();
    let tiff = bytes.strip_prefix(b"Exif\0\0").unwrap_or(&bytes);
    (tiff.starts_with(b"II") || tiff.starts_with(b"MM")).then(|| tiff.to_vec())
}

/// Reports an EXIF block (a TIFF structure). `jpeg` is the whole file, to compare a thumbnail.
fn inspect_exif(tiff: &[u8], ins: &mut Inspection, jpeg: Option<&[u8]>) {
    if let Err(why) = metadata::exif_values_are_bounded(tiff) {
        ins.add(Category::OtherMetadata, why, true);
        return;
    }
    let parsed = exif::Reader::new()
        .continue_on_error(true)
        .read_raw(tiff.to_vec());
    let mut damage = Vec::new();
    let parsed = parsed.or_else(|e| {
        e.distill_partial_result(|errors| damage = errors.iter().map(|e| e.to_string()).collect())
    });
    if !damage.is_empty() {
        ins.add(
            Category::OtherMetadata,
            format!(
                "EXIF block partly unreadable ({}), {} bytes",
                damage.join("; "),
                tiff.len()
            ),
            true,
        );
    }
    match parsed {
        Ok(exif) => report_exif(&exif, ins, jpeg),
        Err(e) => ins.add(
            Category::OtherMetadata,
            format!("EXIF block that cannot be parsed ({e}), {} bytes", tiff.len()),
            true,
        ),
    }
}

fn report_exif(exif: &exif::Exif, ins: &mut Inspection, jpeg: Option<&[u8]>) {
    use exif::{In, Tag, Value};
    let text = |tag: Tag| -> Option<String> {
        let field = exif.get_field(tag, In::PRIMARY)?;
        let s = match &field.value {
            Value::Ascii(v) => v
                .iter()
                .map(|s| String::from_utf8_lossy(s).trim().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            _ => field.display_value().to_string(),
        };
        let s = s
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string();
        (!s.is_empty()).then_some(s)
    };
    let mut leaky_fields = 0;
    // Place.
    if let Some((lat, lon)) = gps_degrees(exif) {
        ins.gps = Some((lat, lon));
        ins.add(Category::Gps, format!("{lat:.6}, {lon:.6}"), true);
        leaky_fields += 1;
    } else if exif
        .fields()
        .any(|f| f.ifd_num == In::PRIMARY && is_gps_tag(f.tag) && f.tag != Tag::GPSVersionID)
    {
        ins.add(Category::Gps, "GPS fields without a position", true);
        leaky_fields += 1;
    }
    // Device and person.
    for (tag, name) in [
        (Tag::BodySerialNumber, "BodySerialNumber"),
        (Tag::LensSerialNumber, "LensSerialNumber"),
    ] {
        if let Some(v) = text(tag) {
            ins.serials.push(v.clone());
            ins.add(Category::Serial, format!("{name}: {v}"), true);
            leaky_fields += 1;
        }
    }
    for (tag, name) in [(Tag::Artist, "Artist"), (Tag::CameraOwnerName, "CameraOwnerName")] {
        if let Some(v) = text(tag) {
            ins.add(Category::Owner, format!("{name}: {v}"), true);
            leaky_fields += 1;
        }
    }
    let camera: Vec<String> = [Tag::Make, Tag::Model, Tag::LensMake, Tag::LensModel]
        .into_iter()
        .filter_map(text)
        .collect();
    if !camera.is_empty() {
        ins.add(Category::Camera, camera.join(" "), true);
        leaky_fields += 1;
    }
    for tag in [Tag::DateTimeOriginal, Tag::DateTimeDigitized, Tag::DateTime] {
        if let Some(v) = text(tag) {
            ins.add(Category::Time, format!("{tag}: {v}"), true);
            leaky_fields += 1;
            break;
        }
    }
    if let Some(v) = text(Tag::Software) {
        ins.add(Category::Software, v, true);
        leaky_fields += 1;
    }
    for tag in [Tag::ImageDescription, Tag::UserComment] {
        if exif
            .get_field(tag, In::PRIMARY)
            .is_some_and(|f| !is_blank(&f.value))
        {
            ins.add(Category::Comment, format!("{tag}"), true);
            leaky_fields += 1;
        }
    }
    // Copyright alone is a rights notice (what --rights writes).
    if let Some(v) = text(Tag::Copyright) {
        ins.add(Category::Rights, format!("EXIF Copyright: {v}"), false);
    }
    if let Some(field) = exif.get_field(Tag::MakerNote, In::PRIMARY) {
        if let Value::Undefined(note, offset) = &field.value {
            let vendor = text(Tag::Make).unwrap_or_else(|| "unknown maker".into());
            ins.add(
                Category::MakerNotes,
                format!("{vendor} maker notes ({} bytes)", note.len()),
                true,
            );
            leaky_fields += 1;
            for serial in maker_note_serials(exif.buf(), *offset as usize, note, exif.little_endian()) {
                ins.serials.push(serial.clone());
                ins.add(Category::Serial, format!("maker note serial: {serial}"), true);
            }
        }
    }
    // The thumbnail: the classic leak is a thumbnail that still shows the uncropped original.
    let thumb = exif
        .get_field(Tag::JPEGInterchangeFormat, In::THUMBNAIL)
        .and_then(|f| f.value.get_uint(0));
    let thumb_len = exif
        .get_field(Tag::JPEGInterchangeFormatLength, In::THUMBNAIL)
        .and_then(|f| f.value.get_uint(0));
    if let (Some(off), Some(len)) = (thumb, thumb_len) {
        let data = exif
            .buf()
            .get(off as usize..(off as usize).saturating_add(len as usize));
        let detail = match (data, jpeg) {
            (Some(t), Some(main)) => format!("EXIF thumbnail ({len} bytes): {}", compare_thumbnail(t, main)),
            _ => format!("EXIF thumbnail ({len} bytes)"),
        };
        ins.add(Category::Thumbnail, detail, true);
        leaky_fields += 1;
    }
    // The orientation is reported once for the file, by the rule decoding follows (`inspect`).
    // Anything else in the block (other tags in IFD0/EXIF/GPS/IFD1) counts as metadata too.
    let harmless = [
        Tag::Orientation,
        Tag::Copyright,
        Tag::XResolution,
        Tag::YResolution,
        Tag::ResolutionUnit,
        Tag::ExifVersion,
        Tag::ColorSpace,
        Tag::PixelXDimension,
        Tag::PixelYDimension,
        Tag::YCbCrPositioning,
        Tag::ExifIFDPointer,
        Tag::GPSInfoIFDPointer,
        Tag::InteropIFDPointer,
        // The thumbnail's own IFD describes it; the thumbnail itself is reported above.
        Tag::Compression,
        Tag::JPEGInterchangeFormat,
        Tag::JPEGInterchangeFormatLength,
    ];
    // In any IFD: the thumbnail's IFD (IFD1) can hold an Artist as well as IFD0.
    let others = exif.fields().filter(|f| !harmless.contains(&f.tag)).count();
    if leaky_fields == 0 && others > 0 {
        ins.add(
            Category::OtherMetadata,
            format!("{others} other EXIF fields (exposure, dates, ...)"),
            true,
        );
    }
}

fn is_blank(v: &exif::Value) -> bool {
    match v {
        exif::Value::Ascii(s) => s.iter().all(|s| s.iter().all(|&b| b == 0 || b == b' ')),
        exif::Value::Undefined(s, _) => s.iter().skip(8).all(|&b| b == 0 || b == b' '),
        _ => false,
    }
}

fn is_gps_tag(tag: exif::Tag) -> bool {
    tag.context() == exif::Context::Gps
}

/// GPS position in decimal degrees, when latitude and longitude are both present.
pub(crate) fn gps_degrees(exif: &exif::Exif) -> Option<(f64, f64)> {
    use exif::{In, Tag, Value};
    let dms = |tag: Tag| -> Option<f64> {
        let ratio = |num: f64, denom: f64| if denom == 0.0 { 0.0 } else { num / denom };
        let parts: Vec<f64> = match &exif.get_field(tag, In::PRIMARY)?.value {
            Value::Rational(v) => v.iter().map(|r| ratio(r.num as f64, r.denom as f64)).collect(),
            Value::SRational(v) => v.iter().map(|r| ratio(r.num as f64, r.denom as f64)).collect(),
            Value::Double(v) => v.clone(),
            Value::Float(v) => v.iter().map(|&f| f as f64).collect(),
            _ => return None,
        };
        let part = |i: usize| parts.get(i).copied().unwrap_or(0.0);
        (!parts.is_empty()).then(|| part(0) + part(1) / 60.0 + part(2) / 3600.0)
    };
    let sign = |tag: Tag, negative: u8| -> f64 {
        match &exif.get_field(tag, In::PRIMARY).map(|f| &f.value) {
            Some(Value::Ascii(v)) if v.first().and_then(|s| s.first()) == Some(&negative) => -1.0,
            _ => 1.0,
        }
    };
    let lat = dms(Tag::GPSLatitude)? * sign(Tag::GPSLatitudeRef, b'S');
    let lon = dms(Tag::GPSLongitude)? * sign(Tag::GPSLongitudeRef, b'W');
    Some((lat, lon))
}

/// Serial numbers in an APP12 "picture info" text segment (Agfa, Olympus, ...): lines such as
/// `Serial#=#00000001` or `SerialNumber=...`.
fn picture_info_serials(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    if !text.contains("[picture info]") && !text.contains("[camera info]") {
        return Vec::new();
    }
    text.split(['\r', '\n'])
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            ((key == "serial#" || key == "serialnumber" || key == "serial")
                && value.chars().any(|c| c.is_ascii_alphanumeric()))
            .then(|| printable(value.as_bytes(), 64))
        })
        .collect()
}

/// Reconyx HyperFire maker notes (version word 0xF101): fixed 16-bit fields; the serial is 15
/// UTF-16LE characters at byte 42 (the layout exiftool and metadata-extractor read).
fn reconyx_serial(note: &[u8]) -> Option<String> {
    if !note.starts_with(&[0x01, 0xF1]) {
        return None;
    }
    let units: Vec<u16> = note
        .get(42..72)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let serial = String::from_utf16_lossy(&units);
    serial
        .chars()
        .any(|c| c.is_ascii_alphanumeric())
        .then(|| printable(serial.as_bytes(), 64))
}

/// Serial numbers kept in IFD-style maker notes (Canon, Nikon type 3, Panasonic, ...): the tags
/// these makers use for the body serial. Bounded: one IFD, entries within the block.
fn maker_note_serials(tiff: &[u8], note_offset: usize, note: &[u8], little_endian: bool) -> Vec<String> {
    if let Some(serial) = reconyx_serial(note) {
        return vec![serial];
    }
    // (header prefix, IFD offset within the note, offsets relative to: the note's own TIFF
    // header at this position, or None for the outer TIFF), serial tags.
    let (ifd, base, le): (usize, Option<usize>, bool) = if note.starts_with(b"Nikon\0\x02") {
        let le = note.get(10..12) == Some(b"II");
        let first = read_u32(note, 14, le).unwrap_or(8) as usize;
        (10 + first, Some(10), le)
    } else if note.starts_with(b"Panasonic\0\0\0") {
        (12, None, little_endian)
    } else if note.starts_with(b"FUJIFILM") {
        let first = read_u32(note, 8, true).unwrap_or(12) as usize;
        (first, Some(0), true)
    } else {
        // Canon and others: a bare IFD, offsets relative to the outer TIFF header.
        (0, None, little_endian)
    };
    let serial_tags: &[u16] = &[0x000C, 0x001D, 0x0025, 0x0096, 0x0010, 0x8002, 0x1101];
    let mut out = Vec::new();
    let entries = match read_u16(note, ifd, le) {
        Some(n) if n > 0 && n < 512 => n as usize,
        _ => return out,
    };
    for i in 0..entries {
        let e = ifd + 2 + i * 12;
        let (Some(tag), Some(typ), Some(count)) = (
            read_u16(note, e, le),
            read_u16(note, e + 2, le),
            read_u32(note, e + 4, le),
        ) else {
            break;
        };
        if !serial_tags.contains(&tag) {
            continue;
        }
        let count = count as usize;
        let value: Option<String> = match typ {
            // Nintendo's CameraInfo block holds the internal serial at byte 0x18.
            7 if tag == 0x1101 => {
                let off = read_u32(note, e + 8, le).unwrap_or(0) as usize;
                let block = tiff
                    .get(off..off.saturating_add(count))
                    .or_else(|| note.get(off.wrapping_sub(note_offset)..));
                // A 32-bit number in the notes' byte order, shown in hex as exiftool does.
                block
                    .and_then(|b| read_u32(b, 0x18, le))
                    .map(|v| format!("0x{v:08x}"))
            }
            2 | 7 if count <= 4 => note.get(e + 8..e + 8 + count).map(|v| printable(v, 64)),
            2 | 7 if count <= 64 => {
                let off = read_u32(note, e + 8, le).unwrap_or(0) as usize;
                let bytes = match base {
                    Some(b) => note.get(b + off..b + off + count),
                    None => tiff.get(off..off + count).or_else(|| {
                        note.get(off.wrapping_sub(note_offset)..)
                            .and_then(|n| n.get(..count))
                    }),
                };
                bytes.map(|v| printable(v, 64))
            }
            4 if count == 1 && tag == 0x000C => read_u32(note, e + 8, le).map(|v| v.to_string()),
            _ => None,
        };
        if let Some(v) = value.filter(|v| v.chars().any(|c| c.is_ascii_alphanumeric())) {
            out.push(v);
        }
    }
    out
}

fn read_u16(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(if le {
        u16::from_le_bytes([s[0], s[1]])
    } else {
        u16::from_be_bytes([s[0], s[1]])
    })
}

fn read_u32(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let a = [s[0], s[1], s[2], s[3]];
    Some(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

/// Whether a thumbnail shows the same picture as the main image: different proportions or
/// different content (mean difference of the main image shrunk to the thumbnail's size).
fn compare_thumbnail(thumb: &[u8], main: &[u8]) -> String {
    let Ok(t) = image::load_from_memory(thumb) else {
        return "cannot be decoded".into();
    };
    let t = trim_bars(t.into_rgb8());
    let limits = codec::DecodeLimits {
        max_pixels: 50_000_000,
    };
    let Ok(decoded) = codec::decode(main, Format::Jpeg, limits) else {
        return "main image not compared".into();
    };
    let px = crate::orient::apply(decoded.pixels, image::metadata::Orientation::NoTransforms);
    let (tw, th) = t.dimensions();
    let (ra, rb) = (tw as f64 / th as f64, px.width as f64 / px.height as f64);
    // EXIF thumbnails are stored unrotated, like the main image; cameras letterbox other
    // proportions into 160x120 (the bars are trimmed above).
    if (ra / rb - 1.0).abs() > 0.08 && (ra * rb - 1.0).abs() > 0.08 {
        return format!(
            "{tw}x{th}, proportions differ from the {}x{} image: it may show an uncropped original",
            px.width, px.height
        );
    }
    let Ok(small) = crate::resize::resize_exact(&px, tw, th) else {
        return format!("{tw}x{th}");
    };
    let diff: u64 = small
        .data
        .iter()
        .zip(t.as_raw())
        .map(|(a, b)| a.abs_diff(*b) as u64)
        .sum();
    let mean = diff as f64 / small.data.len().max(1) as f64;
    if mean > 25.0 {
        format!("{tw}x{th}, differs from the main image (mean difference {mean:.0}/255): it may show an earlier or uncropped version")
    } else {
        format!("{tw}x{th}, matches the main image")
    }
}

/// Removes black letterbox or pillarbox bars (rows or columns that are nearly black).
fn trim_bars(img: image::RgbImage) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let dark_row = |y: u32| (0..w).all(|x| img.get_pixel(x, y).0.iter().all(|&c| c < 24));
    let dark_col = |x: u32| (0..h).all(|y| img.get_pixel(x, y).0.iter().all(|&c| c < 24));
    let top = (0..h).find(|&y| !dark_row(y)).unwrap_or(0);
    let bottom = (0..h).rev().find(|&y| !dark_row(y)).map_or(h, |y| y + 1);
    let left = (0..w).find(|&x| !dark_col(x)).unwrap_or(0);
    let right = (0..w).rev().find(|&x| !dark_col(x)).map_or(w, |x| x + 1);
    if bottom <= top || right <= left {
        return img;
    }
    image::imageops::crop_imm(&img, left, top, right - left, bottom - top).to_image()
}

fn inspect_xmp(xml: &[u8], ins: &mut Inspection) {
    let text = String::from_utf8_lossy(xml);
    let props = xmp_properties(&text);
    // A rights notice states the rights; a packet with a creator alone is just a name.
    let notice = props.iter().any(|p| p == "dc:rights");
    if notice && props.iter().all(|p| RIGHTS_PROPERTIES.contains(&p.as_str())) {
        ins.add(
            Category::Rights,
            format!("XMP rights notice ({})", props.join(", ")),
            false,
        );
        return;
    }
    let mut notes = Vec::new();
    if text.contains("xmpMM:History") || text.contains("photoshop:History") {
        notes.push("edit history");
    }
    if text.contains("GPSLatitude") {
        notes.push("GPS");
    }
    if text.contains("SerialNumber") {
        notes.push("serial number");
        for key in [
            "aux:SerialNumber",
            "exifEX:BodySerialNumber",
            "aux:LensSerialNumber",
        ] {
            if let Some(v) = xmp_value(&text, key) {
                ins.serials.push(v.clone());
                ins.add(Category::Serial, format!("XMP {key}: {v}"), true);
            }
        }
    }
    if text.contains("dc:creator") || text.contains("Iptc4xmpCore:CreatorContactInfo") {
        notes.push("creator");
    }
    if text.contains("MotionPhoto") || text.contains("MicroVideo") || text.contains("GContainer") {
        notes.push("motion photo / container directory");
    }
    let summary = if notes.is_empty() {
        String::new()
    } else {
        format!(": {}", notes.join(", "))
    };
    ins.add(
        Category::Xmp,
        format!("XMP packet ({} properties){summary}", props.len()),
        true,
    );
}

/// Qualified names of the properties set in an XMP packet (elements and attributes with a
/// namespace prefix, outside the rdf/x/xml structure).
fn xmp_properties(text: &str) -> Vec<String> {
    let mut props: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(p) = text[i..].find(['<', ' ', '\n', '\t']) {
        i += p + 1;
        let rest = &text[i..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == ':' || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        let is_element = bytes[i - 1] == b'<';
        let is_attribute = !is_element && rest[end..].starts_with('=');
        if (is_element || is_attribute) && name.contains(':') {
            let prefix = name.split(':').next().unwrap_or("");
            if !matches!(prefix, "rdf" | "x" | "xml" | "xmlns" | "") && !props.iter().any(|p| p == name) {
                props.push(name.to_string());
            }
        }
    }
    props
}

/// The text value of a simple XMP property written as an element or attribute.
fn xmp_value(text: &str, key: &str) -> Option<String> {
    if let Some(p) = text.find(&format!("<{key}>")) {
        let rest = &text[p + key.len() + 2..];
        return rest.find('<').map(|e| rest[..e].trim().to_string());
    }
    let p = text.find(&format!("{key}=\""))?;
    let rest = &text[p + key.len() + 2..];
    rest.find('"').map(|e| rest[..e].to_string())
}

/// IPTC-IIM datasets in a Photoshop APP13 segment.
fn inspect_iptc(data: &[u8], ins: &mut Inspection) {
    let names: &[(u8, &str)] = &[
        (80, "By-line"),
        (85, "By-line Title"),
        (116, "Copyright Notice"),
        (120, "Caption"),
        (25, "Keywords"),
        (90, "City"),
        (92, "Sub-location"),
        (95, "Province/State"),
        (101, "Country"),
        (110, "Credit"),
        (115, "Source"),
        (122, "Writer/Editor"),
        (55, "Date Created"),
        (5, "Object Name"),
    ];
    let mut found: Vec<&str> = Vec::new();
    let mut thumbnail = false;
    let mut i = 0;
    while i + 5 <= data.len() {
        if data[i] == 0x1C && data[i + 1] == 2 {
            let len = u16::from_be_bytes([data[i + 3], data[i + 4]]) as usize;
            if let Some((_, n)) = names.iter().find(|(d, _)| *d == data[i + 2]) {
                if !found.contains(n) {
                    found.push(n);
                }
            }
            i += 5 + len;
        } else {
            if data[i..].starts_with(b"8BIM\x04\x0C") || data[i..].starts_with(b"8BIM\x04\x09") {
                thumbnail = true;
            }
            i += 1;
        }
    }
    if thumbnail {
        ins.add(Category::Thumbnail, "Photoshop thumbnail resource", true);
    }
    let detail = if found.is_empty() {
        "Photoshop/IPTC resources".to_string()
    } else {
        format!("IPTC: {}", found.join(", "))
    };
    ins.add(Category::Iptc, detail, true);
}

fn printable(b: &[u8], max: usize) -> String {
    let s: String = String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string();
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
