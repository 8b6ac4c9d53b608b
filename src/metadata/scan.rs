//! What each piece of metadata a container's walker finds is ([`Kind`]), and the list of them
//! in a file ([`scan`]), grouped by kind. Reads no values: that is `inspect`'s work.

use serde::Serialize;

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

/// One kind of metadata found in a file, with how many pieces and bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    /// What it is.
    pub kind: Kind,
    /// How many pieces (segments, chunks, boxes) of this kind.
    pub count: u32,
    /// Their size together, in bytes.
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
pub(crate) fn scan_jpeg(bytes: &[u8], layout: &jpeg::Layout) -> Vec<Found> {
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
pub(crate) fn classify_jpeg_segment(marker: u8, data: &[u8]) -> Option<Kind> {
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
