//! Lossless `strip`. Rebuilds a JPEG, PNG or WebP container from the
//! pieces that make the picture (compressed image data, tables, colour profile, colour-transform
//! markers, animation control), drops everything else, and inserts only what photoshield writes
//! on purpose: a minimal EXIF holding the Orientation (so nothing turns sideways) and, when
//! asked, the rights packet (built in `rights`). Never decodes or re-encodes pixels.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::icc;
use crate::metadata::{self, classify_jpeg_segment};

pub(crate) use super::rights::add_rights;
use super::rights::rights_xmp;
pub use super::rights::{Rights, DMI_PROHIBITED_AIML};
// What a strip removes, as the pipeline's report lists it.
pub use super::scan::{Found, Kind};

/// What a lossless strip keeps besides the picture itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripOptions {
    /// Keep the ICC colour profile. Default: true.
    pub keep_icc: bool,
    /// Keep a minimal EXIF block with only the Orientation tag when it is not 1. Default: true.
    pub keep_orientation: bool,
    pub rights: Option<Rights>,
}

impl Default for StripOptions {
    fn default() -> StripOptions {
        StripOptions {
            keep_icc: true,
            keep_orientation: true,
            rights: None,
        }
    }
}

/// A minimal big-endian TIFF structure with IFD0 holding Orientation (when not 1) and
/// Copyright (when given); `None` when there is nothing to hold.
pub(crate) fn minimal_exif(orientation: u8, copyright: Option<&str>) -> Option<Vec<u8>> {
    let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = Vec::new();
    if orientation > 1 && orientation <= 8 {
        entries.push((0x0112, 3, 1, vec![0, orientation, 0, 0]));
    }
    if let Some(c) = copyright {
        let mut v = c.as_bytes().to_vec();
        v.push(0);
        entries.push((0x8298, 2, v.len() as u32, v));
    }
    if entries.is_empty() {
        return None;
    }
    let mut out = b"MM\0\x2A\0\0\0\x08".to_vec();
    let data_start = 8 + 2 + 12 * entries.len() + 4;
    let mut data = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (tag, typ, count, value) in &entries {
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&typ.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&((data_start + data.len()) as u32).to_be_bytes());
            data.extend_from_slice(value);
            if value.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&data);
    Some(out)
}

/// The EXIF orientation of a file (1 when none or unreadable): [`metadata::orientation`].
// Hook for tests/formats.rs and tests/properties.rs: hidden, not part of the API.
#[doc(hidden)]
pub fn exif_orientation(bytes: &[u8], format: Format) -> u8 {
    metadata::orientation(bytes, format)
}

/// The EXIF block (TIFF structure) of a file: [`metadata::exif_block`].
pub(crate) fn exif_block(bytes: &[u8], format: Format) -> Option<&[u8]> {
    metadata::exif_block(bytes, format)
}

/// A stripped file as pieces of the input and new bytes: the compressed image data is written
/// straight from the input buffer instead of being copied into a new one.
#[derive(Debug)]
pub(crate) struct Spliced<'a> {
    input: &'a [u8],
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Input(std::ops::Range<usize>),
    New(Vec<u8>),
}

impl<'a> Spliced<'a> {
    fn new(input: &'a [u8]) -> Spliced<'a> {
        Spliced {
            input,
            parts: Vec::new(),
        }
    }

    /// Appends `input[range]`, merged with the previous piece when they are adjacent.
    fn copy(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        match self.parts.last_mut() {
            Some(Part::Input(last)) if last.end == range.start => last.end = range.end,
            _ => self.parts.push(Part::Input(range)),
        }
    }

    /// Appends new bytes.
    fn add(&mut self, bytes: &[u8]) {
        match self.parts.last_mut() {
            Some(Part::New(last)) => last.extend_from_slice(bytes),
            _ => self.parts.push(Part::New(bytes.to_vec())),
        }
    }

    /// The pieces in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.parts.iter().map(|p| match p {
            Part::Input(r) => &self.input[r.clone()],
            Part::New(v) => v.as_slice(),
        })
    }

    pub fn len(&self) -> usize {
        self.parts().map(<[u8]>::len).sum()
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.parts().for_each(|p| out.extend_from_slice(p));
        out
    }
}

/// Strips a file losslessly. Returns the new bytes.
pub fn strip(bytes: &[u8], options: &StripOptions) -> Result<Vec<u8>> {
    strip_and_scan(bytes, options).map(|(out, _, _)| out.to_vec())
}

/// [`strip`] without copying the compressed data, the metadata it removed from the input
/// ([`metadata::scan`]), from one walk of the file, and notes for the user (a colour profile
/// whose identifying text was replaced, or that was dropped).
pub(crate) fn strip_and_scan<'a>(
    bytes: &'a [u8],
    options: &StripOptions,
) -> Result<(Spliced<'a>, Vec<metadata::Found>, Vec<String>)> {
    let format = crate::format::sniff(bytes)?;
    let orientation = if options.keep_orientation {
        exif_orientation(bytes, format)
    } else {
        1
    };
    let exif = minimal_exif(orientation, options.rights.as_ref().map(|r| r.notice.as_str()));
    let xmp = options.rights.as_ref().map(rights_xmp);
    let (exif, xmp) = (exif.as_deref(), xmp.as_deref());
    let mut notes = Vec::new();
    match format {
        Format::Jpeg => {
            let layout = crate::container::jpeg::layout(bytes);
            let icc = options.keep_icc.then(|| crate::container::jpeg::icc(&layout)).flatten();
            let icc = carry_icc(icc.as_deref(), &mut notes);
            let out = strip_jpeg(bytes, &layout, icc.as_deref(), exif, xmp)?;
            Ok((out, metadata::scan_jpeg(bytes, &layout), notes))
        }
        Format::Png | Format::WebP => {
            let out = match format {
                Format::Png => strip_png(bytes, options.keep_icc, exif, xmp, &mut notes)?,
                _ => strip_webp(bytes, options.keep_icc, exif, xmp, &mut notes)?,
            };
            let mut spliced = Spliced::new(bytes);
            spliced.add(&out);
            Ok((spliced, metadata::scan(bytes, format), notes))
        }
        Format::Jxl => {
            // The orientation lives in the codestream, so no EXIF is needed to keep it.
            let exif = minimal_exif(1, options.rights.as_ref().map(|r| r.notice.as_str()));
            let pieces = crate::container::isobmff::jxl_strip(bytes, exif.as_deref(), xmp.map(str::as_bytes))
                .map_err(|e| damaged(Format::Jxl, &e))?;
            let mut spliced = Spliced::new(bytes);
            for piece in pieces {
                match piece {
                    crate::container::isobmff::Piece::Input(range) => spliced.copy(range),
                    crate::container::isobmff::Piece::New(new) => spliced.add(&new),
                }
            }
            Ok((spliced, metadata::scan(bytes, format), notes))
        }
        Format::Heif => Err(Error::Unsupported(
            "lossless strip does not rewrite HEIC (its metadata and extra images are items whose offsets would all move); use `protect`, which writes a clean JPEG",
        )),
        Format::Avif => Err(Error::Unsupported(
            "lossless strip does not rewrite AVIF (its metadata and extra images are items whose offsets would all move); use `protect`, which writes a clean JPEG",
        )),
        Format::Tiff | Format::Gif => Err(Error::Unsupported(
            "lossless strip reads JPEG, PNG, WebP and JPEG XL; use `protect` for TIFF and GIF (re-encoded as PNG)",
        )),
    }
}

/// The colour profile to write, through [`icc::carry`], with its note.
fn carry_icc(profile: Option<&[u8]>, notes: &mut Vec<String>) -> Option<Vec<u8>> {
    let (kept, note) = icc::carry(profile?);
    notes.extend(note);
    kept.map(std::borrow::Cow::into_owned)
}

fn damaged(format: Format, why: &str) -> Error {
    Error::decode(format, why)
}

fn jpeg_segment(marker: u8, payload_parts: &[&[u8]]) -> Result<Vec<u8>> {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum::<usize>() + 2;
    if len > u16::MAX as usize {
        return Err(Error::Container {
            format: Format::Jpeg,
            reason: "a metadata segment over 64 KB",
        });
    }
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&(len as u16).to_be_bytes());
    for p in payload_parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// The parts of a JPEG segment that a strip keeps, rebuilt from its defined fields so that
/// nothing hidden after them survives: the JFIF header without its thumbnail (12 bytes and a
/// 0x0 thumbnail size), the Adobe colour-transform marker (12 bytes). `None` drops the segment.
fn rebuilt_app_segment(marker: u8, data: &[u8]) -> Option<Vec<u8>> {
    let payload = match marker {
        0xE0 if data.starts_with(b"JFIF\0") => [data.get(..12)?, &[0, 0]].concat(),
        0xEE if data.starts_with(b"Adobe") => data.get(..12)?.to_vec(),
        _ => return None,
    };
    jpeg_segment(marker, &[&payload]).ok()
}

/// The ICC profile as `ICC_PROFILE` segments of at most 65,519 bytes each.
fn icc_segments(profile: &[u8]) -> Result<Vec<u8>> {
    let chunks: Vec<&[u8]> = profile.chunks(65_519).collect();
    if chunks.len() > 255 {
        return Err(Error::Container {
            format: Format::Jpeg,
            reason: "an ICC profile over 255 segments (16 MB)",
        });
    }
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        out.extend(jpeg_segment(
            0xE2,
            &[b"ICC_PROFILE\0", &[i as u8 + 1, chunks.len() as u8], chunk],
        )?);
    }
    Ok(out)
}

fn strip_jpeg<'a>(
    b: &'a [u8],
    layout: &crate::container::jpeg::Layout,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
    xmp: Option<&str>,
) -> Result<Spliced<'a>> {
    let end = layout
        .end
        .ok_or_else(|| damaged(Format::Jpeg, layout.error.unwrap_or("truncated")))?;
    let mut out = Spliced::new(b);
    out.copy(0..2);
    let mut inserted = false;
    let insert = |out: &mut Spliced| -> Result<()> {
        if let Some(exif) = exif {
            out.add(&jpeg_segment(0xE1, &[b"Exif\0\0", exif])?);
        }
        if let Some(xmp) = xmp {
            out.add(&jpeg_segment(
                0xE1,
                &[b"http://ns.adobe.com/xap/1.0/\0", xmp.as_bytes()],
            )?);
        }
        Ok(())
    };
    let mut copied = 2;
    let mut icc = icc;
    // Bytes inside the entropy-coded data that no block uses: a hiding place, dropped.
    let unused = crate::entropy::check(b, layout)
        .map(|s| s.unused)
        .unwrap_or_default();
    let copy_data = |out: &mut Spliced, range: std::ops::Range<usize>| {
        let mut at = range.start;
        for u in unused
            .iter()
            .filter(|u| u.start >= range.start && u.end <= range.end)
        {
            out.copy(at..u.start);
            at = u.end;
        }
        out.copy(at..range.end);
    };
    for seg in &layout.segments {
        // Whatever lies between segments (entropy-coded data, restart markers) is the picture.
        copy_data(&mut out, copied..seg.offset);
        let seg_end = seg.end();
        let is_jfif = seg.marker == 0xE0 && seg.data.starts_with(b"JFIF\0");
        if !inserted && !is_jfif {
            insert(&mut out)?;
            inserted = true;
        }
        match classify_jpeg_segment(seg.marker, seg.data) {
            // The whole profile goes where its first segment was.
            Some(Kind::Icc) => {
                if let Some(profile) = icc.take() {
                    out.add(&icc_segments(profile)?);
                }
            }
            Some(_) => {}
            None if matches!(seg.marker, 0xE0..=0xEF) => {
                if let Some(rebuilt) = rebuilt_app_segment(seg.marker, seg.data) {
                    out.add(&rebuilt);
                }
            }
            // Coding segments (frame and scan headers, tables) lose bytes past their fields.
            None => match crate::container::jpeg::defined_len(seg.marker, seg.data) {
                defined if defined == seg.data.len() => out.copy(seg.offset..seg_end),
                defined => out.add(&jpeg_segment(seg.marker, &[&seg.data[..defined]])?),
            },
        }
        copied = seg_end;
    }
    if !inserted {
        insert(&mut out)?;
    }
    // Up to and including EOI; anything after it (trailers) is dropped.
    copy_data(&mut out, copied..end);
    Ok(out)
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// PNG chunks that make the picture (or how it is shown), kept by a strip.
const PNG_KEEP: &[&[u8; 4]] = &[
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"pHYs", b"bKGD",
    b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCV", b"cLLI",
];

/// How many bytes a kept PNG chunk's defined fields take, for a PNG of `color_type`: a chunk
/// is rebuilt from those bytes only, so nothing hidden after them survives (`None`: the whole
/// chunk is its fields, as for image data). A chunk shorter than its fields is dropped.
fn png_defined_len(kind: &[u8; 4], color_type: u8, data: &[u8], palette_entries: usize) -> Option<usize> {
    Some(match kind {
        b"IHDR" => 13,
        b"IEND" => 0,
        b"gAMA" | b"cICP" => 4,
        b"cHRM" => 32,
        b"sRGB" => 1,
        b"pHYs" => 9,
        b"acTL" | b"cLLI" => 8,
        b"fcTL" => 26,
        b"mDCV" => 24,
        b"sBIT" => match color_type {
            0 => 1,
            4 => 2,
            2 | 3 => 3,
            _ => 4,
        },
        b"bKGD" => match color_type {
            3 => 1,
            0 | 4 => 2,
            _ => 6,
        },
        b"tRNS" => match color_type {
            0 => 2,
            2 => 6,
            3 => data.len().min(palette_entries),
            _ => 0, // not allowed with an alpha channel: dropped
        },
        b"PLTE" => data.len() / 3 * 3,
        _ => return None,
    })
}

fn strip_png(
    b: &[u8],
    keep_icc: bool,
    exif: Option<&[u8]>,
    xmp: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let chunks: Vec<_> = crate::container::png::chunks(b).collect();
    if chunks.last().map(|c| &c.kind) != Some(b"IEND") || chunks.first().map(|c| &c.kind) != Some(b"IHDR") {
        return Err(damaged(Format::Png, "truncated file (no IEND chunk)"));
    }
    let color_type = chunks[0].data.get(9).copied().unwrap_or(0);
    let palette_entries = chunks
        .iter()
        .find(|c| &c.kind == b"PLTE")
        .map_or(0, |c| c.data.len() / 3);
    // Picture data past the end of its zlib stream is read by no decoder: cut.
    let used = crate::image_data::png_used(&chunks);
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..8]);
    for (chunk, &used) in chunks.iter().zip(&used) {
        if used < chunk.data.len() {
            match (&chunk.kind, used) {
                (b"IDAT", 0) => {} // wholly past the end
                // A frame's chunk keeps at least its sequence number, which the next ones follow.
                _ => out.extend(png_chunk(&chunk.kind, &chunk.data[..used])),
            }
            continue;
        }
        if keep_icc && &chunk.kind == b"iCCP" {
            // Rebuilt: a neutral profile name, the profile through icc::carry.
            match crate::container::png::iccp_profile(chunk.data) {
                Ok(profile) => {
                    if let Some(profile) = carry_icc(Some(&profile), notes) {
                        out.extend(png_iccp_chunk(&profile));
                    }
                }
                Err(why) => notes.push(format!("colour profile dropped: {why}")),
            }
        } else if PNG_KEEP.contains(&&chunk.kind) {
            match png_defined_len(&chunk.kind, color_type, chunk.data, palette_entries) {
                None => out.extend_from_slice(&b[chunk.offset..chunk.end]),
                Some(n) if n == chunk.data.len() => out.extend_from_slice(&b[chunk.offset..chunk.end]),
                Some(0) if &chunk.kind != b"IEND" => {}
                Some(n) if n < chunk.data.len() => out.extend(png_chunk(&chunk.kind, &chunk.data[..n])),
                Some(_) => {} // shorter than its fields: malformed, dropped
            }
        }
        if &chunk.kind == b"IHDR" {
            if let Some(exif) = exif {
                out.extend(png_chunk(b"eXIf", exif));
            }
            if let Some(xmp) = xmp {
                let mut data = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
                data.extend_from_slice(xmp.as_bytes());
                out.extend(png_chunk(b"iTXt", &data));
            }
        }
    }
    Ok(out)
}

/// An `iCCP` chunk holding `profile` under a neutral name.
fn png_iccp_chunk(profile: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut data = b"ICC profile\0\0".to_vec();
    let mut z = flate2::write::ZlibEncoder::new(&mut data, flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = z.write_all(profile);
    let _ = z.finish();
    png_chunk(b"iCCP", &data)
}

/// An animation frame (`ANMF`) rebuilt from its 16-byte header and the sub-chunks that make the
/// picture (`ALPH`, `VP8 `, `VP8L`): EXIF, XMP or unknown chunks inside a frame go.
fn rebuilt_anmf(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.get(..16)?.to_vec();
    let size = crate::container::riff::anmf_size(data);
    for (id, body) in crate::container::riff::anmf_subchunks(data) {
        if matches!(&id, b"VP8 " | b"VP8L" | b"ALPH") {
            let used = crate::image_data::webp_chunk_used_len(&id, body, size);
            crate::container::riff::push_chunk(&mut out, &id, &body[..used]);
        }
    }
    Some(out)
}

fn strip_webp(
    b: &[u8],
    keep_icc: bool,
    exif: Option<&[u8]>,
    xmp: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let chunks: Vec<_> = crate::container::riff::chunks(b).collect();
    let has_image = chunks
        .iter()
        .any(|c| matches!(&c.id, b"VP8 " | b"VP8L" | b"ANMF"));
    if !has_image {
        return Err(damaged(Format::WebP, "no image data (truncated file?)"));
    }
    let icc = chunks
        .iter()
        .find(|c| &c.id == b"ICCP")
        .filter(|_| keep_icc)
        .and_then(|c| carry_icc(Some(c.data), notes));
    let image: Vec<_> = chunks
        .iter()
        .filter(|c| matches!(&c.id, b"ANIM" | b"ANMF" | b"ALPH" | b"VP8 " | b"VP8L"))
        .collect();
    let vp8x = chunks.iter().find(|c| &c.id == b"VP8X");
    let canvas = crate::container::riff::canvas_size(&chunks);
    let extended = icc.is_some()
        || exif.is_some()
        || xmp.is_some()
        || image.iter().any(|c| matches!(&c.id, b"ANIM" | b"ANMF" | b"ALPH"));
    let mut body = b"WEBP".to_vec();
    if extended {
        let mut header = [0u8; 10];
        match vp8x {
            Some(v) if v.data.len() >= 10 => {
                header.copy_from_slice(&v.data[..10]);
                header[0] &= 0x10 | 0x02; // keep the alpha and animation flags
            }
            _ => {
                let (w, h) = crate::container::riff::canvas_size(&chunks)
                    .ok_or_else(|| damaged(Format::WebP, "no canvas size"))?;
                let alpha = image.iter().any(|c| &c.id == b"ALPH");
                header = crate::container::riff::vp8x(if alpha { 0x10 } else { 0 }, w, h);
            }
        }
        header[0] |= if icc.is_some() { 0x20 } else { 0 }
            | if exif.is_some() { 0x08 } else { 0 }
            | if xmp.is_some() { 0x04 } else { 0 };
        crate::container::riff::push_chunk(&mut body, b"VP8X", &header);
    }
    if let Some(icc) = &icc {
        crate::container::riff::push_chunk(&mut body, b"ICCP", icc);
    }
    for c in image {
        match &c.id {
            // A tail after the bitstream is read by no decoder: cut.
            id @ (b"VP8 " | b"VP8L" | b"ALPH") => {
                let used = crate::image_data::webp_chunk_used_len(id, c.data, canvas);
                crate::container::riff::push_chunk(&mut body, id, &c.data[..used]);
            }
            b"ANMF" => {
                let frame =
                    rebuilt_anmf(c.data).ok_or_else(|| damaged(Format::WebP, "malformed animation frame"))?;
                crate::container::riff::push_chunk(&mut body, b"ANMF", &frame);
            }
            b"ANIM" => {
                let anim = c
                    .data
                    .get(..6)
                    .ok_or_else(|| damaged(Format::WebP, "malformed animation header"))?;
                crate::container::riff::push_chunk(&mut body, b"ANIM", anim);
            }
            _ => crate::container::riff::push_chunk(&mut body, &c.id, c.data),
        }
    }
    if let Some(exif) = exif {
        crate::container::riff::push_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = xmp {
        crate::container::riff::push_chunk(&mut body, b"XMP ", xmp.as_bytes());
    }
    Ok(crate::container::riff::file(body))
}
