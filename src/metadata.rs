//! Containers and the metadata they carry: walking JPEG segments, PNG chunks, RIFF (WebP) chunks
//! and GIF blocks with strict bounds, classifying what each piece is, and writing the few pieces
//! photoshield itself puts into a file (the ICC profile). Never decodes pixels.

use serde::Serialize;

use crate::codec::Format;

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
        Format::Jpeg => jpeg_header(bytes)
            .segments
            .iter()
            .find(|s| s.marker == 0xE1 && s.data.starts_with(b"Exif\0"))
            .and_then(|s| s.data.get(6..)),
        Format::Png => png_chunks(bytes)
            .take_while(|c| &c.kind != b"IDAT")
            .find(|c| &c.kind == b"eXIf")
            .map(|c| c.data),
        Format::WebP => riff_chunks(bytes)
            .find(|c| &c.id == b"EXIF")
            .map(|c| c.data.strip_prefix(b"Exif\0\0").unwrap_or(c.data)),
        Format::Tiff => Some(bytes),
        Format::Jxl => crate::container::isobmff::jxl_exif_slice(bytes),
        // A HEIF's EXIF is an item (read by the decoder, `Heif::exif`), not a slice.
        Format::Gif | Format::Heif => None,
    }
}

/// A TIFF structure's numbers, read in its byte order, within its bounds.
struct Tiff<'a> {
    b: &'a [u8],
    little_endian: bool,
}

impl Tiff<'_> {
    fn new(b: &[u8]) -> Option<Tiff<'_>> {
        let little_endian = match b.get(0..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        Some(Tiff { b, little_endian })
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let v: [u8; 2] = self.b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let v: [u8; 4] = self.b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
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
    if matches!(format, Format::Heif | Format::Jxl) {
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

/// The ICC profile of a JPEG, joined from its `ICC_PROFILE` segments in sequence order.
pub fn jpeg_icc(layout: &JpegLayout) -> Option<Vec<u8>> {
    let mut parts: Vec<(u8, &[u8])> = layout
        .segments
        .iter()
        .filter(|s| s.marker == 0xE2 && s.data.starts_with(b"ICC_PROFILE\0"))
        .filter_map(|s| Some((*s.data.get(12)?, s.data.get(14..)?)))
        .collect();
    if parts.is_empty() {
        return None;
    }
    parts.sort_by_key(|p| p.0);
    Some(parts.iter().flat_map(|p| p.1.iter().copied()).collect())
}

/// The ICC profile of a PNG `iCCP` chunk, inflated under [`crate::icc::MAX_PROFILE`]: a few
/// kilobytes of compressed data can claim gigabytes.
pub fn png_iccp_profile(data: &[u8]) -> Result<Vec<u8>, &'static str> {
    use std::io::Read;
    let name_end = data
        .iter()
        .take(80)
        .position(|&b| b == 0)
        .ok_or("malformed iCCP chunk")?;
    let stream = data.get(name_end + 2..).ok_or("malformed iCCP chunk")?;
    let mut profile = Vec::new();
    flate2::read::ZlibDecoder::new(stream)
        .take(crate::icc::MAX_PROFILE as u64 + 1)
        .read_to_end(&mut profile)
        .map_err(|_| "iCCP chunk with corrupt compressed data")?;
    if profile.len() > crate::icc::MAX_PROFILE {
        return Err("iCCP colour profile larger than any real profile");
    }
    Ok(profile)
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
        Format::Jpeg => return scan_jpeg(bytes, &jpeg_layout(bytes)),
        Format::Png => {
            let mut end = None;
            for chunk in png_chunks(bytes) {
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
            for chunk in riff_chunks(bytes) {
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
            if let Some(end) = riff_end(bytes).filter(|&e| e < bytes.len()) {
                pieces.push((Kind::Trailer, bytes.len() - end));
            }
        }
        Format::Gif => {
            for block in gif_layout(bytes).extensions {
                match block.label {
                    0xFE => pieces.push((Kind::Comment, block.len)),
                    0xFF if block.app.starts_with(b"XMP Data") => pieces.push((Kind::Xmp, block.len)),
                    _ => {}
                }
            }
        }
        Format::Tiff => pieces.push((Kind::TiffTags, 0)),
        Format::Heif | Format::Jxl => {
            let parts = match format {
                Format::Heif => crate::container::isobmff::heif_parts(bytes),
                _ => crate::container::isobmff::jxl_parts(bytes),
            };
            pieces.extend(parts.into_iter().map(|p| (p.kind, p.bytes as usize)));
        }
    }
    group(pieces)
}

/// [`scan`] of a JPEG whose layout is already known.
pub fn scan_jpeg(bytes: &[u8], layout: &JpegLayout) -> Vec<Found> {
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

/// One marker segment of a JPEG: its marker byte, where it starts (at the 0xFF) and its payload
/// (after the length field).
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub marker: u8,
    pub offset: usize,
    pub data: &'a [u8],
}

/// The structure of a JPEG file.
#[derive(Debug, Default)]
pub struct JpegLayout<'a> {
    /// Marker segments with a length, in file order (entropy-coded data is not included).
    pub segments: Vec<Segment<'a>>,
    /// Offset just past the EOI marker, when the file reaches one.
    pub end: Option<usize>,
    /// Why the walk stopped early, when it did.
    pub error: Option<&'static str>,
}

/// Walks a JPEG's segments, through every scan of a progressive file, up to the end-of-image
/// marker. Never reads past the buffer; stops with `error` set on a malformed structure.
pub fn jpeg_layout(b: &[u8]) -> JpegLayout<'_> {
    walk_jpeg(b, false)
}

/// The segments before the first scan (where EXIF, ICC and the frame header live), without
/// reading the compressed data: cheap on a large file.
pub fn jpeg_header(b: &[u8]) -> JpegLayout<'_> {
    walk_jpeg(b, true)
}

fn walk_jpeg(b: &[u8], header_only: bool) -> JpegLayout<'_> {
    let mut layout = JpegLayout::default();
    if !b.starts_with(&[0xFF, 0xD8]) {
        layout.error = Some("missing start-of-image marker");
        return layout;
    }
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        if b.get(i) != Some(&0xFF) {
            layout.error = Some(if i >= b.len() {
                "truncated"
            } else {
                "expected a marker"
            });
            return layout;
        }
        while b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i + 1) else {
            layout.error = Some("truncated");
            return layout;
        };
        match marker {
            0xD9 => {
                layout.end = Some(i + 2);
                return layout;
            }
            0x01 | 0xD0..=0xD8 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = b
            .get(i + 2..i + 4)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
        else {
            layout.error = Some("truncated");
            return layout;
        };
        if len < 2 || i + 2 + len > b.len() {
            layout.error = Some("a segment length runs past the end of the file");
            return layout;
        }
        layout.segments.push(Segment {
            marker,
            offset: i,
            data: &b[i + 4..i + 2 + len],
        });
        i += 2 + len;
        if marker == 0xDA && header_only {
            return layout;
        }
        if marker == 0xDA {
            // Entropy-coded data: runs until a marker that is neither a stuffed 0x00 nor a restart.
            loop {
                match memchr_ff(b, i) {
                    Some(j) => match b.get(j + 1) {
                        Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => i = j + 1,
                        Some(_) => {
                            i = j;
                            break;
                        }
                        None => {
                            layout.error = Some("truncated");
                            return layout;
                        }
                    },
                    None => {
                        layout.error = Some("truncated");
                        return layout;
                    }
                }
            }
        }
    }
}

fn memchr_ff(b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(0xFF, b.get(from..)?).map(|p| p + from)
}

/// True when the JPEG's structure is whole: every segment in bounds and an end-of-image marker.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    jpeg_layout(bytes).end.is_some()
}

/// One PNG chunk.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub kind: [u8; 4],
    pub offset: usize,
    pub data: &'a [u8],
    /// Offset just past the chunk's CRC.
    pub end: usize,
}

/// Iterates the chunks of a PNG, stopping at IEND or at the first chunk that runs past the end.
pub fn png_chunks(b: &[u8]) -> impl Iterator<Item = Chunk<'_>> {
    let mut i = if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        8
    } else {
        usize::MAX
    };
    std::iter::from_fn(move || {
        let head = b.get(i..i.checked_add(8)?)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        let end = i.checked_add(12)?.checked_add(len)?;
        let data = b.get(i + 8..i + 8 + len)?;
        b.get(end - 4..end)?; // the CRC must be there too
        let chunk = Chunk {
            kind,
            offset: i,
            data,
            end,
        };
        i = if &kind == b"IEND" { usize::MAX } else { end };
        Some(chunk)
    })
}

/// One RIFF chunk of a WebP file.
#[derive(Clone, Copy, Debug)]
pub struct RiffChunk<'a> {
    pub id: [u8; 4],
    pub offset: usize,
    pub data: &'a [u8],
}

/// Iterates the top-level chunks of a WebP file, within the RIFF size and the buffer.
pub fn riff_chunks(b: &[u8]) -> impl Iterator<Item = RiffChunk<'_>> {
    let riff_end = match b.get(0..12) {
        Some(h) if &h[0..4] == b"RIFF" && &h[8..12] == b"WEBP" => {
            (u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize)
                .saturating_add(8)
                .min(b.len())
        }
        _ => 0,
    };
    let mut i = 12;
    std::iter::from_fn(move || {
        let head = b.get(i..i + 8).filter(|_| i + 8 <= riff_end)?;
        let id = [head[0], head[1], head[2], head[3]];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let data = b.get(i + 8..(i + 8).checked_add(len)?.min(riff_end))?;
        if data.len() != len {
            i = usize::MAX - 8;
            return None;
        }
        let chunk = RiffChunk { id, offset: i, data };
        i = i + 8 + len + (len & 1);
        Some(chunk)
    })
}

/// The chunks inside a WebP animation frame (`ANMF`), after its 16-byte header: (id, payload),
/// stopping at the first one that runs past the frame.
pub fn anmf_subchunks(frame: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut i: usize = 16;
    std::iter::from_fn(move || {
        let head = frame.get(i..i.checked_add(8)?)?;
        let id: [u8; 4] = head[0..4].try_into().ok()?;
        let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
        let body = frame.get(i + 8..(i + 8).checked_add(len)?)?;
        i += 8 + len + (len & 1);
        Some((id, body))
    })
}

/// How many bytes of a JPEG coding segment's payload its fields define: a frame header (SOFn)
/// and a scan header (SOS) by their component counts, a restart interval (DRI) 2 bytes, and
/// quantisation and Huffman table segments (DQT, DHT) up to their last complete table. Bytes
/// after that are read by no decoder: a hiding place. Other segments are wholly defined.
pub fn jpeg_defined_len(marker: u8, data: &[u8]) -> usize {
    let defined = match marker {
        0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => data.get(5).map(|&n| 6 + 3 * n as usize),
        0xDA => data.first().map(|&n| 1 + 2 * n as usize + 3),
        0xDD => Some(2),
        0xDB => {
            let mut at = 0;
            while let Some(&pq) = data.get(at) {
                let next = at + 1 + 64 * (1 + usize::from(pq >> 4));
                if next > data.len() {
                    break;
                }
                at = next;
            }
            Some(at)
        }
        0xC4 => {
            let mut at = 0;
            while let Some(counts) = data.get(at + 1..at + 17) {
                let next = at + 17 + counts.iter().map(|&c| c as usize).sum::<usize>();
                if next > data.len() {
                    break;
                }
                at = next;
            }
            Some(at)
        }
        _ => None,
    };
    defined.map_or(data.len(), |d| d.min(data.len()))
}

/// The size of an animation frame (`ANMF` data: 24-bit x/2, y/2, width-1, height-1, ...).
pub fn anmf_size(frame: &[u8]) -> Option<(u32, u32)> {
    let d = frame.get(6..12)?;
    let u24 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], 0]) + 1;
    Some((u24(&d[0..3]), u24(&d[3..6])))
}

/// A GIF extension block: its label (0xFE comment, 0xFF application, 0x01 plain text, 0xF9
/// graphic control), the application identifier for 0xFF, and the total length of its
/// sub-blocks.
#[derive(Clone, Copy, Debug)]
pub struct GifExtension<'a> {
    pub label: u8,
    pub app: &'a [u8],
    pub len: usize,
}

/// A GIF's blocks, from one walk: its extension blocks, its frames (image descriptors), and
/// where its trailer ends (`None` when the walk met malformed data or the end of the file first).
#[derive(Debug, Default)]
pub struct GifLayout<'a> {
    pub extensions: Vec<GifExtension<'a>>,
    pub frames: u32,
    pub end: Option<usize>,
}

/// Walks a GIF's blocks up to its trailer. Never reads past the buffer.
pub fn gif_layout(b: &[u8]) -> GifLayout<'_> {
    let mut layout = GifLayout::default();
    let colour_table = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let Some(&flags) = b.get(10) else {
        return layout;
    };
    // Returns (index after the chain's terminator, total payload length).
    let sub_blocks = |mut i: usize| -> Option<(usize, usize)> {
        let mut total = 0;
        loop {
            let n = *b.get(i)? as usize;
            i += 1 + n;
            total += n;
            if n == 0 {
                return Some((i, total));
            }
        }
    };
    let mut i = 13 + colour_table(flags);
    loop {
        let next = match b.get(i) {
            Some(0x2C) => {
                layout.frames += 1;
                let Some(&flags) = b.get(i + 9) else {
                    return layout;
                };
                // Descriptor, local colour table, LZW minimum code size, then the data.
                sub_blocks(i + 10 + colour_table(flags) + 1).map(|(next, _)| next)
            }
            Some(0x21) => {
                let label = b.get(i + 1).copied().unwrap_or(0);
                let app = match label {
                    0xFF => b.get(i + 3..i + 14).unwrap_or_default(),
                    _ => &[],
                };
                sub_blocks(i + 2).map(|(next, len)| {
                    layout.extensions.push(GifExtension { label, app, len });
                    next
                })
            }
            Some(0x3B) => {
                layout.end = Some(i + 1);
                return layout;
            }
            _ => None,
        };
        match next {
            Some(n) => i = n,
            None => return layout,
        }
    }
}

/// Where a RIFF file ends by its header's size (which may be short of the buffer's end).
pub fn riff_end(bytes: &[u8]) -> Option<usize> {
    let size = bytes.get(4..8)?;
    Some(u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize + 8)
}

/// The payload of a `VP8X` chunk: feature `flags` (0x20 ICC, 0x10 alpha, 0x08 EXIF, 0x04 XMP,
/// 0x02 animation) and the canvas size.
pub fn vp8x(flags: u8, width: u32, height: u32) -> [u8; 10] {
    let mut v = [0u8; 10];
    v[0] = flags;
    v[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
    v[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
    v
}

/// A WebP file of `chunks`, in order, under the RIFF header.
pub fn webp_file<'a>(chunks: impl IntoIterator<Item = (&'a [u8; 4], &'a [u8])>) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (id, data) in chunks {
        push_riff_chunk(&mut body, id, data);
    }
    riff_file(body)
}

/// `body` (starting with "WEBP") under the RIFF header that gives its length.
pub fn riff_file(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The alpha hint of a `VP8L` bitstream's header (bit 28 after the signature byte).
pub fn vp8l_has_alpha(vp8l: &[u8]) -> bool {
    vp8l.get(4).is_some_and(|b| b & 0x10 != 0)
}

/// Wraps a simple-format WebP (as libwebp writes it) into the extended format with an ICC
/// profile chunk, setting the VP8X flags and canvas size the specification requires.
pub fn webp_with_icc(simple: Vec<u8>, icc: &[u8]) -> Result<Vec<u8>, String> {
    let chunks: Vec<RiffChunk> = riff_chunks(&simple).collect();
    let (width, height) = webp_canvas_size(&chunks).ok_or("cannot read the encoded WebP's size")?;
    let has_alpha = chunks
        .iter()
        .any(|c| &c.id == b"ALPH" || (&c.id == b"VP8L" && vp8l_has_alpha(c.data)));
    let mut flags = 0x20u8; // ICC
    if has_alpha {
        flags |= 0x10;
    }
    let mut body = Vec::with_capacity(simple.len() + icc.len() + 64);
    body.extend_from_slice(b"WEBP");
    push_riff_chunk(&mut body, b"VP8X", &vp8x(flags, width, height));
    push_riff_chunk(&mut body, b"ICCP", icc);
    for c in chunks
        .iter()
        .filter(|c| matches!(&c.id, b"ALPH" | b"VP8 " | b"VP8L"))
    {
        push_riff_chunk(&mut body, &c.id, c.data);
    }
    Ok(riff_file(body))
}

pub fn push_riff_chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// Canvas size of a WebP from its VP8X, VP8 or VP8L chunk.
pub fn webp_canvas_size(chunks: &[RiffChunk]) -> Option<(u32, u32)> {
    let u24 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], 0]);
    for c in chunks {
        match &c.id {
            b"VP8X" => {
                let d = c.data.get(4..10)?;
                return Some((u24(&d[0..3]) + 1, u24(&d[3..6]) + 1));
            }
            b"VP8 " => {
                let d = c.data.get(6..10)?;
                let w = u16::from_le_bytes([d[0], d[1]]) & 0x3FFF;
                let h = u16::from_le_bytes([d[2], d[3]]) & 0x3FFF;
                return Some((w as u32, h as u32));
            }
            b"VP8L" => {
                let d = c.data.get(1..5)?;
                let v = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                return Some(((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1));
            }
            _ => {}
        }
    }
    None
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
        assert!(jpeg_is_complete(&b));
    }

    #[test]
    fn jpeg_walk_is_bounded_on_broken_files() {
        let b = jpeg_with(&[(0xE1, b"Exif\0\0MM")], b"");
        for cut in 0..b.len() - 1 {
            let layout = jpeg_layout(&b[..cut]);
            assert!(layout.end.is_none(), "cut at {cut} reported complete");
        }
        // A segment whose length runs past the end.
        let bad = [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00];
        assert_eq!(
            jpeg_layout(&bad).error,
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
        assert_eq!(png_chunks(&b).count(), 3);
        assert_eq!(png_chunks(&b[..b.len() - 12]).count(), 2);
        assert_eq!(
            png_chunks(&b[..b.len() - 13]).count(),
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
