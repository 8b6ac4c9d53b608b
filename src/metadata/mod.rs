//! The metadata a file carries, in one place: [`scan`](fn@scan) says what each piece the
//! containers' walkers find is, [`inspect`] reports it for people, [`strip`] removes it without
//! touching the pixels, `rights` builds the one notice photoshield writes on purpose. This file
//! reads the EXIF block that counts (orientation, capture date) and holds the bounds every EXIF
//! reader checks first. Never decodes pixels (but `inspect`, to compare a thumbnail).

use crate::container::jpeg;
use crate::container::tiff::Tiff;
use crate::container::{png, riff};
use crate::format::Format;

pub mod inspect;
mod rights;
mod scan;
pub mod strip;

pub(crate) use scan::{classify_jpeg_segment, scan_jpeg};
pub use scan::{scan, Found, Kind};

/// The capture date (DateTimeOriginal, else DateTime) of an EXIF block, as (year, month, day).
pub(crate) fn capture_date(exif: &[u8]) -> Option<(i32, u32, u32)> {
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
pub(crate) fn exif_block(bytes: &[u8], format: Format) -> Option<&[u8]> {
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
pub(crate) fn tiff_orientation(tiff: &[u8]) -> Option<u8> {
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

/// The orientation that counts for a file (1 when none): from `exif_block`.
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
