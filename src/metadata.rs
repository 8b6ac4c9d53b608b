//! The metadata a file carries: what each piece the containers' walkers ([`crate::container`])
//! find is, the EXIF block that counts and what is read from it (orientation, capture date), and
//! the bounds every EXIF reader checks first. Never decodes pixels.

use serde::Serialize;

use crate::container::tiff::Tiff;
use crate::container::{gif, jpeg, png, riff};
use crate::format::Format;

/// A kind of metadata found in a file. Everything but the ICC profile identifies or describes
/// the photo, its owner, its place or its device, and is never written by `protect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// EXIF block (camera, time, GPS, serials, maker notes, thumbnail).
    Exif,
    /// XMP packet (including extended XMP and edit history).
    Xmp,
    /// IPTC / Photoshop image resources (names, captions, keywords, thumbnails).
    Iptc,
    /// A JFIF extension thumbnail (JFXX).
    Thumbnail,
    /// A JPEG COM segment or GIF comment extension.
    Comment,
    /// PNG text chunks (tEXt, zTXt, iTXt).
    Text,
    /// PNG last-modification time (tIME).
    Time,
    /// Multi-Picture Format index (secondary images, e.g. gain maps, stereo pairs).
    Mpf,
    /// C2PA / JUMBF provenance manifest.
    C2pa,
    /// Other application segments (maker-specific APPn blocks).
    Other,
    /// Bytes after the end of the image (motion-photo videos, appended files, card slack).
    Trailer,
    /// TIFF tags (a TIFF's own structure carries the same fields as EXIF).
    TiffTags,
    /// ICC colour profile. Kept by default: it changes how the colours are shown.
    Icc,
    /// Images stored beside the photo (HEIF depth maps, HDR gain maps, secondary images).
    Auxiliary,
}

/// The capture date (DateTimeOriginal, else DateTime) of an EXIF block, as (year, month, day).
pub fn capture_date(exif: &[u8]) -> Option<(i32, u32, u32)> {
    exif_values_are_bounded(exif).ok()?;
    let parsed = exif::Reader::new().read_raw(exif.to_vec()).ok()?;
    [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .into_iter()
        .find_map(|tag| {
            let field = parsed.get_field(tag, exif::In::PRIMARY)?;
            let exif::Value::Ascii(ref v) = field.value else {
                return None;
            };
            let s = std::str::from_utf8(v.first()?).ok()?;
            let (y, m, d) = (
                s.get(0..4)?.parse().ok()?,
                s.get(5..7)?.parse().ok()?,
                s.get(8..10)?.parse().ok()?,
            );
            ((1..=12).contains(&m) && (1..=31).contains(&d) && y > 1800).then_some((y, m, d))
        })
}

/// The EXIF block (TIFF structure) that counts for a file, by one rule shared by decoding,
/// `inspect` and `strip`, the rule browsers and exiftool follow: in a JPEG the first `Exif`
/// APP1 segment (later ones are ignored); in a PNG the `eXIf` chunk when it comes before the
/// image data (browsers ignore one after it, so its orientation does not count); in a WebP the
/// `EXIF` chunk, with or without the `Exif\0\0` prefix some writers keep; in a TIFF the file
/// itself. ImageMagick's "Raw profile type exif" PNG text chunk does not count (browsers ignore
/// it); `inspect` still reports what it holds.
pub fn exif_block(bytes: &[u8], format: Format) -> Option<&[u8]> {
    match format {
        Format::Jpeg => jpeg::header(bytes)
            .segments
            .iter()
            .find(|s| s.marker == 0xE1 && s.data.starts_with(b"Exif\0"))
            .and_then(|s| s.data.get(6..)),
        Format::Png => png::chunks(bytes)
            .take_while(|c| &c.kind != b"IDAT")
            .find(|c| &c.kind == b"eXIf")
            .map(|c| c.data),
        Format::WebP => riff::chunks(bytes)
            .find(|c| &c.id == b"EXIF")
            .map(|c| c.data.strip_prefix(b"Exif\0\0").unwrap_or(c.data)),
        Format::Tiff => Some(bytes),
        Format::Jxl => crate::container::isobmff::jxl_exif_slice(bytes),
        // A HEIF's EXIF is an item (read by the decoder, `Heif::exif`), not a slice.
        Format::Gif | Format::Heif | Format::Avif => None,
    }
}

/// The Orientation tag (1..=8) of IFD0 of a TIFF structure, either byte order.
pub fn tiff_orientation(tiff: &[u8]) -> Option<u8> {
    let t = Tiff::new(tiff)?;
    let (u16_at, u32_at) = (|at| t.u16(at), |at| t.u32(at));
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(1000)).find_map(|i| {
        let e = ifd + 2 + 12 * i;
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3)
            .then(|| u16_at(e + 8))
            .flatten()
            .and_then(|v| u8::try_from(v).ok())
            .filter(|v| (1..=8).contains(v))
    })
}

/// The orientation that counts for a file (1 when none): from [`exif_block`].
pub fn orientation(bytes: &[u8], format: Format) -> u8 {
    // HEIF (`irot`/`imir`) and JPEG XL (the codestream) carry their own display transform; an
    // EXIF Orientation inside them repeats it and never counts (the double-rotation bug).
    if matches!(format, Format::Heif | Format::Avif | Format::Jxl) {
        return 1;
    }
    exif_block(bytes, format).and_then(tiff_orientation).unwrap_or(1)
}

/// How many bytes of values an EXIF block may declare, as a multiple of its own size (plus a
/// little): values of distinct entries occupy distinct bytes, so a real block declares at most
/// its size. A crafted block whose thousands of entries all point at one large value would make
/// a reader copy it thousands of times (a 700 KB block, 43 GB).
const EXIF_VALUE_BUDGET: usize = 4;

/// Checks, before any EXIF reader copies values out of `tiff`, that its entries (IFD0, IFD1 and
/// the EXIF, GPS and interoperability IFDs) declare no more value bytes than
/// `EXIF_VALUE_BUDGET` times the block's size. Every reader of EXIF blocks asks this first.
pub fn exif_values_are_bounded(tiff: &[u8]) -> Result<(), String> {
    // Not a TIFF structure: readers refuse it themselves.
    let Some(t) = Tiff::new(tiff) else { return Ok(()) };
    let (u16_at, u32_at) = (|at| t.u16(at), |at| t.u32(at));
    let budget = tiff.len().saturating_mul(EXIF_VALUE_BUDGET) + 4096;
    let mut declared = 0usize;
    let mut queue: Vec<usize> = u32_at(4).map(|o| o as usize).into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(ifd) = queue.pop() {
        if ifd == 0 || !seen.insert(ifd) || seen.len() > 64 {
            continue;
        }
        let Some(count) = u16_at(ifd) else { continue };
        for i in 0..count as usize {
            let e = ifd + 2 + 12 * i;
            let (Some(tag), Some(typ), Some(n)) = (u16_at(e), u16_at(e + 2), u32_at(e + 4)) else {
                break;
            };
            let unit = match typ {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 => 8,
                _ => 0,
            };
            let bytes = unit * n as usize;
            if bytes > 4 {
                declared = declared.saturating_add(bytes);
            }
            // Sub-IFDs: EXIF, GPS, interoperability.
            if matches!(tag, 0x8769 | 0x8825 | 0xA005) {
                if let Some(o) = u32_at(e + 8) {
                    queue.push(o as usize);
                }
            }
        }
        if let Some(next) = u32_at(ifd + 2 + 12 * count as usize) {
            queue.push(next as usize);
        }
        if declared > budget {
            return Err(format!(
                "EXIF block of {} KB declares more than {} MB of values (a crafted block); not read",
                tiff.len() >> 10,
                declared >> 20
            ));
        }
    }
    Ok(())
}

/// One kind of metadata found in a file, with how many pieces and bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: Kind,
    pub count: u32,
    pub bytes: u64,
}

/// Lists the metadata in a file, grouped by kind, in a stable order.
pub fn scan(bytes: &[u8], format: Format) -> Vec<Found> {
    let mut pieces: Vec<(Kind, usize)> = Vec::new();
    match format {
        Format::Jpeg => return scan_jpeg(bytes, &jpeg::layout(bytes)),
        Format::Png => {
            let mut end = None;
            for chunk in png::chunks(bytes) {
                let kind = match &chunk.kind {
                    b"tEXt" | b"zTXt" => Some(Kind::Text),
                    b"iTXt" if chunk.data.starts_with(b"XML:com.adobe.xmp\0") => Some(Kind::Xmp),
                    b"iTXt" => Some(Kind::Text),
                    b"eXIf" => Some(Kind::Exif),
                    b"tIME" => Some(Kind::Time),
                    b"iCCP" => Some(Kind::Icc),
                    b"caBX" => Some(Kind::C2pa),
                    _ => None,
                };
                if let Some(kind) = kind {
                    pieces.push((kind, chunk.data.len()));
                }
                if &chunk.kind == b"IEND" {
                    end = Some(chunk.end);
                }
            }
            if let Some(end) = end.filter(|&e| e < bytes.len()) {
                pieces.push((Kind::Trailer, bytes.len() - end));
            }
        }
        Format::WebP => {
            for chunk in riff::chunks(bytes) {
                let kind = match &chunk.id {
                    b"EXIF" => Some(Kind::Exif),
                    b"XMP " => Some(Kind::Xmp),
                    b"ICCP" => Some(Kind::Icc),
                    _ => None,
                };
                if let Some(kind) = kind {
                    pieces.push((kind, chunk.data.len()));
                }
            }
            if let Some(end) = riff::end(bytes).filter(|&e| e < bytes.len()) {
                pieces.push((Kind::Trailer, bytes.len() - end));
            }
        }
        Format::Gif => {
            for block in gif::layout(bytes).extensions {
                match block.label {
                    0xFE => pieces.push((Kind::Comment, block.len)),
                    0xFF if block.app.starts_with(b"XMP Data") => pieces.push((Kind::Xmp, block.len)),
                    _ => {}
                }
            }
        }
        Format::Tiff => pieces.push((Kind::TiffTags, 0)),
        Format::Heif | Format::Avif | Format::Jxl => {
            let parts = match format {
                Format::Heif | Format::Avif => crate::container::isobmff::heif_parts(bytes),
                _ => crate::container::isobmff::jxl_parts(bytes),
            };
            pieces.extend(parts.into_iter().map(|p| (p.kind, p.bytes as usize)));
        }
    }
    group(pieces)
}

/// [`scan`] of a JPEG whose layout is already known.
pub fn scan_jpeg(bytes: &[u8], layout: &jpeg::Layout) -> Vec<Found> {
    let mut pieces: Vec<(Kind, usize)> = layout
        .segments
        .iter()
        .filter_map(|seg| classify_jpeg_segment(seg.marker, seg.data).map(|kind| (kind, seg.data.len())))
        .collect();
    if let Some(end) = layout.end.filter(|&e| e < bytes.len()) {
        pieces.push((Kind::Trailer, bytes.len() - end));
    }
    group(pieces)
}

fn group(mut pieces: Vec<(Kind, usize)>) -> Vec<Found> {
    pieces.sort_by_key(|p| p.0);
    let mut out: Vec<Found> = Vec::new();
    for (kind, len) in pieces {
        match out.last_mut() {
            Some(f) if f.kind == kind => {
                f.count += 1;
                f.bytes += len as u64;
            }
            _ => out.push(Found {
                kind,
                count: 1,
                bytes: len as u64,
            }),
        }
    }
    out
}

/// What a JPEG marker segment carries, or `None` when it is part of the image itself
/// (JFIF header, Adobe colour transform, tables, frame and scan headers).
pub fn classify_jpeg_segment(marker: u8, data: &[u8]) -> Option<Kind> {
    match marker {
        0xE0 if data.starts_with(b"JFXX\0") => Some(Kind::Thumbnail),
        0xE0 if data.starts_with(b"JFIF\0") => None,
        0xE1 if data.starts_with(b"Exif\0") => Some(Kind::Exif),
        0xE1 if data.starts_with(b"http://ns.adobe.com/") => Some(Kind::Xmp),
        0xE2 if data.starts_with(b"ICC_PROFILE\0") => Some(Kind::Icc),
        0xE2 if data.starts_with(b"MPF\0") => Some(Kind::Mpf),
        0xEB => Some(Kind::C2pa),
        0xED => Some(Kind::Iptc),
        0xEE if data.starts_with(b"Adobe") => None,
        0xE0..=0xEF => Some(Kind::Other),
        0xFE => Some(Kind::Comment),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with(segments: &[(u8, &[u8])], trailer: &[u8]) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        for (marker, data) in segments {
            b.extend_from_slice(&[0xFF, *marker]);
            b.extend_from_slice(&((data.len() + 2) as u16).to_be_bytes());
            b.extend_from_slice(data);
        }
        // A scan header and some entropy data with a stuffed 0xFF00 and a restart marker.
        b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        b.extend_from_slice(&[0xFF, 0xD9]);
        b.extend_from_slice(trailer);
        b
    }

    #[test]
    fn jpeg_walk_finds_metadata_and_trailer() {
        let b = jpeg_with(
            &[
                (0xE0, b"JFIF\0xx"),
                (0xE1, b"Exif\0\0MM"),
                (0xFE, b"hello"),
                (0xED, b"Photoshop 3.0\0"),
            ],
            b"TRAILER",
        );
        let found = scan(&b, Format::Jpeg);
        let kinds: Vec<Kind> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec![Kind::Exif, Kind::Iptc, Kind::Comment, Kind::Trailer]);
        assert_eq!(found.last().unwrap().bytes, 7);
        assert!(jpeg::is_complete(&b));
    }

    #[test]
    fn jpeg_walk_is_bounded_on_broken_files() {
        let b = jpeg_with(&[(0xE1, b"Exif\0\0MM")], b"");
        for cut in 0..b.len() - 1 {
            let layout = jpeg::layout(&b[..cut]);
            assert!(layout.end.is_none(), "cut at {cut} reported complete");
        }
        // A segment whose length runs past the end.
        let bad = [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00];
        assert_eq!(
            jpeg::layout(&bad).error,
            Some("a segment length runs past the end of the file")
        );
    }

    #[test]
    fn png_chunks_stop_at_truncation() {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (b"IHDR", &b"0123456789abc"[..]),
            (b"tEXt", b"Author\0me"),
            (b"IEND", b""),
        ] {
            b.extend_from_slice(&(data.len() as u32).to_be_bytes());
            b.extend_from_slice(kind);
            b.extend_from_slice(data);
            b.extend_from_slice(&[0; 4]);
        }
        assert_eq!(png::chunks(&b).count(), 3);
        assert_eq!(png::chunks(&b[..b.len() - 12]).count(), 2);
        assert_eq!(
            png::chunks(&b[..b.len() - 13]).count(),
            1,
            "a chunk missing its CRC is not yielded"
        );
        let found = scan(&b, Format::Png);
        assert_eq!(
            found,
            vec![Found {
                kind: Kind::Text,
                count: 1,
                bytes: 9
            }]
        );
    }
}
