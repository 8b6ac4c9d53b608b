//! "Nothing planted survives": small valid JPEG, PNG, WebP and GIF files with a marker string
//! hidden in one metadata position chosen by arbitrary bytes, and the check that neither
//! `strip` nor `protect` lets it through and that `inspect` does not call the file clean.
//!
//! The check looks for the marker's bytes in the outputs, so it does not depend on any
//! detector: a place the metadata reader does not know about still fails it. Compressed
//! carriers (zTXt, compressed iTXt, iCCP) use stored deflate blocks, so the marker is
//! visible in their bytes too.
//!
//! Shared, as source, by tests/fuzz_regressions.rs (every kind and position, plus the saved
//! regressions) and the `planted` fuzz target in fuzz/.
#![allow(dead_code)]

use std::io::Cursor;
use std::sync::OnceLock;

use photoshield::{FileContext, Options, Pipeline};

/// What a careless file could carry: a name and a serial.
pub const MARKER: &[u8] = b"PLANTED-Jane-Private-SN4711";

/// Reads choices from arbitrary bytes; past the end every choice is 0.
pub struct Draw<'a> {
    data: &'a [u8],
}

impl<'a> Draw<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Draw { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// Up to `max` arbitrary bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1).min(self.data.len());
        let (take, rest) = self.data.split_at(n);
        self.data = rest;
        take.to_vec()
    }

    /// The marker between arbitrary bytes.
    fn payload(&mut self) -> Vec<u8> {
        let mut out = self.bytes(6);
        out.extend_from_slice(MARKER);
        out.extend(self.bytes(6));
        out
    }
}

/// One planted file and where the marker went, for messages.
pub struct Planted {
    pub file: Vec<u8>,
    pub spot: String,
    /// Whether decoders read the planted file (then `protect` must take it).
    pub valid: bool,
}

impl Planted {
    /// A file decoders read, with the marker at `spot`.
    fn valid(file: Vec<u8>, spot: impl Into<String>) -> Self {
        Planted {
            file,
            spot: spot.into(),
            valid: true,
        }
    }
}

/// `base` with `piece` inserted at `at`.
fn spliced(base: &[u8], at: usize, piece: &[u8]) -> Vec<u8> {
    [&base[..at], piece, &base[at..]].concat()
}

/// `base` with the marker appended after its end.
fn appended(base: &[u8], draw: &mut Draw, spot: &str) -> Planted {
    Planted::valid([base, &draw.payload()].concat(), spot)
}

/// The clean files the marker is planted into.
pub struct Bases {
    jpeg: Vec<u8>,
    png: Vec<u8>,
    png_rgba: Vec<u8>,
    webp_lossless: Vec<u8>,
    webp_lossy: Vec<u8>,
    webp_alpha: Vec<u8>,
    webp_animated: Vec<u8>,
    gif: Vec<u8>,
}

/// How many base files, kinds of carrier and positions [`plant`] chooses from (for tests that
/// enumerate them through its first three bytes).
pub const BASES: usize = 8;
pub const KINDS: usize = 16;
pub const POSITIONS: usize = 8;

fn pixels(w: u32, h: u32) -> image::RgbaImage {
    image::RgbaImage::from_fn(w, h, |x, y| {
        let a = if (x + y) % 5 == 0 { 128 } else { 255 };
        image::Rgba([(x * 9) as u8, (y * 13) as u8, ((x * y) % 251) as u8, a])
    })
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Lossy WebP from photoshield itself (image writes lossless only).
fn lossy_webp(png: &[u8]) -> Vec<u8> {
    let options = Options {
        format: Some(photoshield::format::OutputFormat::WebP),
        ..Options::default()
    };
    let pipeline = Pipeline::new(&options).unwrap();
    pipeline
        .process(png, &FileContext { name: "base.png" })
        .unwrap()
        .bytes
}

/// Two lossless frames on a canvas: VP8X with the animation flag, ANIM, two ANMF.
fn animated_webp(frame: &[u8], w: u32, h: u32) -> Vec<u8> {
    let vp8l = riff_chunks(frame)
        .into_iter()
        .find(|c| &c.0 == b"VP8L")
        .expect("image writes a simple lossless WebP")
        .1;
    let mut body = Vec::new();
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    push_chunk(&mut body, b"VP8X", &vp8x);
    push_chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]);
    for _ in 0..2 {
        let mut anmf = vec![0; 6];
        anmf.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
        anmf.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
        anmf.extend_from_slice(&[100, 0, 0, 0]);
        push_chunk(&mut anmf, b"VP8L", &vp8l);
        push_chunk(&mut body, b"ANMF", &anmf);
    }
    riff(body)
}

pub fn bases() -> &'static Bases {
    static BASES: OnceLock<Bases> = OnceLock::new();
    BASES.get_or_init(|| {
        let (w, h) = (24, 16);
        let rgba = image::DynamicImage::ImageRgba8(pixels(w, h));
        let rgb = image::DynamicImage::ImageRgb8(rgba.to_rgb8());
        let png = encode(rgb.clone(), image::ImageFormat::Png);
        let png_rgba = encode(rgba.clone(), image::ImageFormat::Png);
        let webp_lossless = encode(rgb.clone(), image::ImageFormat::WebP);
        Bases {
            jpeg: encode(rgb.clone(), image::ImageFormat::Jpeg),
            webp_lossy: lossy_webp(&png),
            webp_alpha: lossy_webp(&png_rgba),
            webp_animated: animated_webp(&webp_lossless, w, h),
            webp_lossless,
            png,
            png_rgba,
            gif: encode(rgba, image::ImageFormat::Gif),
        }
    })
}

/// Plants the marker as `data` chooses: byte 0 the base file, byte 1 the kind of carrier,
/// byte 2 the position, the rest the details.
pub fn plant(data: &[u8]) -> Planted {
    let b = bases();
    let mut draw = Draw::new(data);
    let (base, mut planted) = match draw.below(BASES) {
        0 => ("JPEG", plant_jpeg(&b.jpeg, &mut draw)),
        1 => ("RGB PNG", plant_png(&b.png, &mut draw)),
        2 => ("RGBA PNG", plant_png(&b.png_rgba, &mut draw)),
        3 => ("lossless WebP", plant_webp(&b.webp_lossless, &mut draw)),
        4 => ("lossy WebP", plant_webp(&b.webp_lossy, &mut draw)),
        5 => ("lossy WebP with alpha", plant_webp(&b.webp_alpha, &mut draw)),
        6 => ("animated WebP", plant_webp(&b.webp_animated, &mut draw)),
        _ => ("GIF", plant_gif(&b.gif, &mut draw)),
    };
    planted.spot = format!("{base}: {}", planted.spot);
    planted
}

// ---- carriers shared by the formats ----

/// A TIFF (EXIF) block with the marker in an ASCII or UCS-2 tag of IFD0, the EXIF IFD, the
/// GPS IFD or IFD1 (a thumbnail's IFD), big- or little-endian.
fn exif(draw: &mut Draw) -> Vec<u8> {
    let big = draw.byte() & 1 == 1;
    let u16b = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let where_ = draw.below(4);
    let (tag, kind, value): (u16, u16, Vec<u8>) = match draw.below(4) {
        0 => (0x013B, 2, [MARKER, b"\0"].concat()), // Artist
        1 => (0xA431, 2, [MARKER, b"\0"].concat()), // BodySerialNumber
        2 => (0x9C9D, 1, utf16(MARKER, false)),     // XPAuthor (UCS-2 LE, whatever the byte order)
        _ => (0x927C, 7, draw.payload()),           // MakerNote
    };
    let mut t = if big {
        b"MM\0\x2a".to_vec()
    } else {
        b"II\x2a\0".to_vec()
    };
    t.extend(u32b(8));
    // An IFD of one entry at `t.len()`, then the next IFD's offset.
    let ifd = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4], next: u32| {
        t.extend(u16b(1));
        t.extend(u16b(tag));
        t.extend(u16b(kind));
        t.extend(u32b(count));
        t.extend(value);
        t.extend(u32b(next));
    };
    let count = value.len() as u32;
    // IFD0 at 8 (18 bytes); in the nested cases a second IFD at 26 and the value at 44.
    match where_ {
        0 => ifd(&mut t, tag, kind, count, u32b(26), 0),
        1 => ifd(&mut t, 0x8769, 4, 1, u32b(26), 0), // ExifIFDPointer
        2 => ifd(&mut t, 0x8825, 4, 1, u32b(26), 0), // GPSInfo
        _ => {
            let [a, b] = u16b(1);
            ifd(&mut t, 0x0112, 3, 1, [a, b, 0, 0], 26) // Orientation 1; IFD1 next
        }
    }
    if where_ != 0 {
        // In the GPS IFD as GPSProcessingMethod (UNDEFINED), elsewhere as itself.
        let (tag, kind) = if where_ == 2 { (0x001B, 7) } else { (tag, kind) };
        ifd(&mut t, tag, kind, count, u32b(44), 0);
    }
    t.extend(value);
    t
}

fn utf16(s: &[u8], big: bool) -> Vec<u8> {
    s.iter()
        .flat_map(|&c| if big { [0, c] } else { [c, 0] })
        .collect()
}

fn xmp_packet(draw: &mut Draw) -> Vec<u8> {
    let mut x = b"<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:creator>".to_vec();
    x.extend(draw.payload());
    x.extend_from_slice(b"</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>");
    x
}

/// A small ICC profile (v2, display, RGB) whose `desc` and `cprt` hold the marker.
fn icc(draw: &mut Draw) -> Vec<u8> {
    let mut desc = b"desc\0\0\0\0".to_vec();
    let text = [MARKER, b"\0"].concat();
    desc.extend((text.len() as u32).to_be_bytes());
    desc.extend(&text);
    desc.extend([0; 12 + 67]);
    let mut cprt = b"text\0\0\0\0".to_vec();
    cprt.extend(draw.payload());
    cprt.push(0);
    let tags: [(&[u8; 4], &[u8]); 2] = [(b"desc", &desc), (b"cprt", &cprt)];
    let mut p = vec![0; 128];
    p.extend((tags.len() as u32).to_be_bytes());
    let mut at = 128 + 4 + 12 * tags.len();
    let mut data = Vec::new();
    for (sig, body) in tags {
        p.extend_from_slice(sig);
        p.extend((at as u32).to_be_bytes());
        p.extend((body.len() as u32).to_be_bytes());
        data.extend_from_slice(body);
        while data.len() % 4 != 0 {
            data.push(0);
        }
        at = 128 + 4 + 12 * tags.len() + data.len();
    }
    p.extend(data);
    let len = p.len() as u32;
    p[0..4].copy_from_slice(&len.to_be_bytes());
    p[8..12].copy_from_slice(&[2, 0x10, 0, 0]);
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    p
}

/// zlib with stored blocks, so the compressed bytes show what they carry.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01];
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        z.extend([1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(c) = chunks.next() {
        z.push(u8::from(chunks.peek().is_none()));
        z.extend((c.len() as u16).to_le_bytes());
        z.extend((!(c.len() as u16)).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    z
}

// ---- JPEG ----

fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(65533)];
    let mut s = vec![0xFF, marker];
    s.extend(((payload.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// Offsets where a segment may start: after SOI, and before each segment up to the SOS.
fn jpeg_segment_starts(jpeg: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = vec![2];
    let mut at = 2;
    loop {
        let marker = jpeg[at + 1];
        let len = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        if marker == 0xDA {
            return (starts, at);
        }
        at += 2 + len;
        starts.push(at);
    }
}

fn plant_jpeg(base: &[u8], draw: &mut Draw) -> Planted {
    let (starts, sos) = jpeg_segment_starts(base);
    let eoi = base.len() - 2;
    let kind = draw.below(KINDS);
    let at = starts[draw.below(POSITIONS) % starts.len()];
    let (segment, spot) = match kind {
        0 => {
            let n = draw.below(16) as u8;
            (jpeg_segment(0xE0 + n, &draw.payload()), format!("APP{n} segment"))
        }
        1 => (jpeg_segment(0xFE, &draw.payload()), "COM segment".into()),
        2 | 3 => (
            jpeg_segment(0xE1, &[b"Exif\0\0".as_slice(), &exif(draw)].concat()),
            "EXIF APP1".into(),
        ),
        4 => (
            jpeg_segment(
                0xE1,
                &[b"http://ns.adobe.com/xap/1.0/\0".as_slice(), &xmp_packet(draw)].concat(),
            ),
            "XMP APP1".into(),
        ),
        5 => {
            let mut p = b"http://ns.adobe.com/xmp/extension/\0".to_vec();
            p.extend(b"0123456789ABCDEF0123456789ABCDEF");
            let x = xmp_packet(draw);
            p.extend((x.len() as u32).to_be_bytes());
            p.extend(0u32.to_be_bytes());
            p.extend(x);
            (jpeg_segment(0xE1, &p), "extended XMP APP1".into())
        }
        6 => {
            // JFIF with a thumbnail whose RGB bytes spell the marker.
            let mut p = b"JFIF\0\x01\x02\x00\0\x01\0\x01".to_vec();
            let thumb = draw.payload();
            let px = thumb.len().div_ceil(3);
            p.extend([px as u8, 1]);
            p.extend(&thumb);
            p.resize(14 + 3 * px, 0);
            (jpeg_segment(0xE0, &p), "JFIF APP0 thumbnail".into())
        }
        7 => {
            let mut p = b"JFXX\0\x13".to_vec();
            p.extend(draw.payload());
            (jpeg_segment(0xE0, &p), "JFXX APP0 extension".into())
        }
        8 => {
            let mut p = b"Adobe\0\x64\0\0\0\0\x01".to_vec();
            p.extend(draw.payload());
            (
                jpeg_segment(0xEE, &p),
                "bytes past an Adobe APP14's fields".into(),
            )
        }
        9 => {
            let mut p = b"Photoshop 3.0\08BIM\x04\x04\0\0".to_vec();
            let iptc = [
                b"\x1c\x02\x50".as_slice(),
                &(MARKER.len() as u16).to_be_bytes(),
                MARKER,
            ]
            .concat();
            p.extend((iptc.len() as u32).to_be_bytes());
            p.extend(iptc);
            (jpeg_segment(0xED, &p), "IPTC in APP13".into())
        }
        10 => (
            jpeg_segment(0xE2, &[b"ICC_PROFILE\0\x01\x01".as_slice(), &icc(draw)].concat()),
            "ICC profile text".into(),
        ),
        11 => return appended(base, draw, "after EOI"),
        12 => {
            // Bytes between the last entropy-coded data and EOI (no 0xFF, so no marker).
            let bytes: Vec<u8> = draw.payload().into_iter().filter(|&b| b != 0xFF).collect();
            return Planted::valid(spliced(base, eoi, &bytes), "between the entropy data and EOI");
        }
        13 => {
            let n = draw.below(16) as u8;
            let segment = jpeg_segment(0xE0 + n, &draw.payload());
            return Planted::valid(spliced(base, eoi, &segment), format!("APP{n} after the scan"));
        }
        14 => {
            // Inside the scan header's segment, past its defined fields.
            let len = u16::from_be_bytes([base[sos + 2], base[sos + 3]]) as usize;
            let mut sos_seg = base[sos + 4..sos + 2 + len].to_vec();
            sos_seg.extend(draw.payload());
            let out = [
                &base[..sos],
                &jpeg_segment(0xDA, &sos_seg),
                &base[sos + 2 + len..],
            ]
            .concat();
            // libjpeg and zune-jpeg refuse a scan header of the wrong length, so `protect` may.
            return Planted {
                valid: false,
                ..Planted::valid(out, "bytes past the SOS header's fields")
            };
        }
        _ => (jpeg_segment(0xE1, &draw.payload()), "unrecognised APP1".into()),
    };
    Planted::valid(spliced(base, at, &segment), format!("{spot} at offset {at}"))
}

// ---- PNG ----

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    c.extend(h.finalize().to_be_bytes());
    c
}

/// (start, kind, data) of every chunk.
fn png_chunks(png: &[u8]) -> Vec<(usize, [u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        out.push((at, kind, &png[at + 8..at + 8 + len]));
        at += 12 + len;
    }
    out
}

fn plant_png(base: &[u8], draw: &mut Draw) -> Planted {
    let chunks = png_chunks(base);
    let kind = draw.below(KINDS);
    // Any place after IHDR and before IEND.
    let slot = 1 + draw.below(POSITIONS) % (chunks.len() - 1);
    let at = chunks[slot].0;
    let first_idat = chunks.iter().position(|c| &c.1 == b"IDAT").unwrap();
    let last_idat = chunks.iter().rposition(|c| &c.1 == b"IDAT").unwrap();
    let (chunk, spot, at) = match kind {
        0 => (
            png_chunk(b"tEXt", &[b"Author\0".as_slice(), &draw.payload()].concat()),
            "tEXt",
            at,
        ),
        1 => (
            png_chunk(
                b"zTXt",
                &[b"Author\0\0".as_slice(), &zlib_stored(&draw.payload())].concat(),
            ),
            "zTXt",
            at,
        ),
        2 => (
            png_chunk(
                b"iTXt",
                &[b"Author\0\0\0en\0Autor\0".as_slice(), &draw.payload()].concat(),
            ),
            "iTXt",
            at,
        ),
        3 => (
            png_chunk(
                b"iTXt",
                &[
                    b"Author\0\x01\0en\0Autor\0".as_slice(),
                    &zlib_stored(&draw.payload()),
                ]
                .concat(),
            ),
            "compressed iTXt",
            at,
        ),
        4 => (png_chunk(b"eXIf", &exif(draw)), "eXIf", at),
        5 => (
            png_chunk(
                b"iTXt",
                &[b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), &xmp_packet(draw)].concat(),
            ),
            "XMP iTXt",
            at,
        ),
        6 => {
            let name = &MARKER[..MARKER.len().min(79)];
            (
                png_chunk(b"iCCP", &[name, b"\0\0", &zlib_stored(&icc(draw))].concat()),
                "iCCP name and profile",
                chunks[first_idat].0,
            )
        }
        7 => (png_chunk(b"prVt", &draw.payload()), "unknown ancillary chunk", at),
        8 => (
            png_chunk(
                b"pHYs",
                &[&[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1][..], &draw.payload()].concat(),
            ),
            "bytes past pHYs's fields",
            chunks[first_idat].0,
        ),
        9 => (
            png_chunk(
                b"tIME",
                &[&[0x07, 0xEA, 1, 2, 3, 4, 5][..], &draw.payload()].concat(),
            ),
            "bytes past tIME's fields",
            at,
        ),
        10 => (
            png_chunk(b"gAMA", &[&[0, 0, 0xB1, 0x8F][..], &draw.payload()].concat()),
            "bytes past gAMA's fields",
            chunks[first_idat].0,
        ),
        11 => {
            // Bytes after the zlib stream, inside the last IDAT.
            let (start, _, data) = chunks[last_idat];
            let idat = png_chunk(b"IDAT", &[data, &draw.payload()].concat());
            let out = [&base[..start], &idat, &base[start + 12 + data.len()..]].concat();
            return Planted::valid(out, "after the zlib stream in the last IDAT");
        }
        12 => {
            // An IDAT of its own after the stream's end.
            let after = chunks[last_idat].0 + 12 + chunks[last_idat].2.len();
            (
                png_chunk(b"IDAT", &draw.payload()),
                "an extra IDAT after the zlib stream",
                after,
            )
        }
        13 => return appended(base, draw, "after IEND"),
        14 => (png_chunk(b"caNv", &draw.payload()), "unknown chunk", at),
        _ => (
            png_chunk(b"sPLT", &[b"Jane\0\x08".as_slice(), &draw.payload()].concat()),
            "sPLT",
            at,
        ),
    };
    Planted::valid(spliced(base, at, &chunk), format!("{spot} at offset {at}"))
}

// ---- WebP ----

fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend((data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

fn riff(body: Vec<u8>) -> Vec<u8> {
    let mut out = b"RIFF".to_vec();
    out.extend(((body.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(body);
    out
}

/// A RIFF chunk: its id and its data.
type Chunk = ([u8; 4], Vec<u8>);

fn riff_chunks(data: &[u8]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= data.len() {
        let kind: [u8; 4] = data[at..at + 4].try_into().unwrap();
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        let end = (at + 8 + len).min(data.len());
        out.push((kind, data[at + 8..end].to_vec()));
        at += 8 + len + (len & 1);
    }
    out
}

fn plant_webp(base: &[u8], draw: &mut Draw) -> Planted {
    let mut chunks = riff_chunks(base);
    let kind = draw.below(KINDS);
    // After the first chunk (VP8X, or a simple file's bitstream), anywhere up to the end.
    let slot = 1 + draw.below(POSITIONS) % chunks.len();
    let set_flag = draw.byte() & 1 == 1;
    let flag = |chunks: &mut Vec<Chunk>, bit: u8| {
        if set_flag && &chunks[0].0 == b"VP8X" {
            chunks[0].1[0] |= bit;
        }
    };
    let image_chunk = chunks
        .iter()
        .position(|c| matches!(&c.0, b"VP8 " | b"VP8L" | b"ALPH" | b"ANMF"))
        .unwrap();
    let (new, spot): (Option<Chunk>, String) = match kind {
        0..=2 => {
            flag(&mut chunks, 0x08);
            (Some((*b"EXIF", exif(draw))), "EXIF chunk".into())
        }
        3 | 4 => {
            flag(&mut chunks, 0x04);
            (Some((*b"XMP ", xmp_packet(draw))), "XMP chunk".into())
        }
        5 => {
            flag(&mut chunks, 0x20);
            (Some((*b"ICCP", icc(draw))), "ICCP text".into())
        }
        6 | 7 => (Some((*b"prVt", draw.payload())), "unknown chunk".into()),
        8 | 9 => {
            // The tail of the first image or alpha bitstream.
            let target = &mut chunks[image_chunk];
            if &target.0 == b"ANMF" {
                append_in_frame(&mut target.1, None, draw.payload());
            } else {
                target.1.extend(draw.payload());
            }
            (
                None,
                format!(
                    "after the {} bitstream",
                    String::from_utf8_lossy(&chunks[image_chunk].0)
                ),
            )
        }
        10 | 11 => return appended(base, draw, "after the RIFF data"),
        12 | 13 if &chunks[image_chunk].0 == b"ANMF" => {
            // A metadata chunk after the frame's bitstream, inside the ANMF.
            let inner = [*b"EXIF", *b"XMP ", *b"prVt"][draw.below(3)];
            let payload = if &inner == b"EXIF" {
                exif(draw)
            } else {
                draw.payload()
            };
            append_in_frame(&mut chunks[image_chunk].1, Some(inner), payload);
            (
                None,
                format!("{} inside an ANMF frame", String::from_utf8_lossy(&inner)),
            )
        }
        _ => (
            Some((*b"EXIF", [b"Exif\0\0".as_slice(), &exif(draw)].concat())),
            "EXIF chunk with an Exif header".into(),
        ),
    };
    if let Some(chunk) = new {
        chunks.insert(slot, chunk);
    }
    let mut body = Vec::new();
    for (kind, data) in &chunks {
        push_chunk(&mut body, kind, data);
    }
    Planted::valid(riff(body), format!("{spot} (slot {slot})"))
}

/// Inside an ANMF's data (16 bytes of frame header, then chunks): a chunk of its own, or
/// bytes added to the frame's bitstream chunk.
fn append_in_frame(anmf: &mut Vec<u8>, chunk: Option<[u8; 4]>, payload: Vec<u8>) {
    let header = anmf[..16].to_vec();
    let mut inner = riff_chunks(&[&[0u8; 12][..], &anmf[16..]].concat());
    match chunk {
        Some(kind) => inner.push((kind, payload)),
        None => inner.last_mut().unwrap().1.extend(payload),
    }
    *anmf = header;
    for (kind, data) in &inner {
        push_chunk(anmf, kind, data);
    }
}

// ---- GIF (protect only; strip refuses GIF) ----

/// `data` as GIF data sub-blocks (at most 255 bytes each, a length byte before each). A sub-block
/// ends just before the marker when the marker would otherwise straddle two of them: the file
/// must carry it whole for the check to find it (a fuzzer-found generator bug: an XMP packet put
/// the marker across the 255-byte boundary).
fn gif_sub_blocks(data: &[u8]) -> Vec<u8> {
    let split = (0..data.len().saturating_sub(MARKER.len() - 1))
        .find(|&i| data[i..].starts_with(MARKER))
        .filter(|&p| p / 255 != (p + MARKER.len() - 1) / 255)
        .unwrap_or(data.len());
    let mut out = Vec::new();
    for part in [&data[..split], &data[split..]] {
        for c in part.chunks(255) {
            out.push(c.len() as u8);
            out.extend_from_slice(c);
        }
    }
    out.push(0);
    out
}

fn plant_gif(base: &[u8], draw: &mut Draw) -> Planted {
    // After the header and global colour table, before the first block.
    let flags = base[10];
    let table = if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    };
    let first_block = 13 + table;
    let trailer = base.len() - 1;
    let at = if draw.byte() & 1 == 0 {
        first_block
    } else {
        trailer
    };
    let (block, spot) = match draw.below(4) {
        0 => (
            [&[0x21, 0xFE][..], &gif_sub_blocks(&draw.payload())].concat(),
            "comment extension",
        ),
        1 => (
            [
                &[0x21, 0xFF, 11][..],
                b"XMP DataXMP",
                &gif_sub_blocks(&xmp_packet(draw)),
            ]
            .concat(),
            "XMP application extension",
        ),
        2 => (
            [
                &[0x21, 0xFF, 11][..],
                b"PRIVATE1.00",
                &gif_sub_blocks(&draw.payload()),
            ]
            .concat(),
            "unknown application extension",
        ),
        _ => return appended(base, draw, "after the trailer"),
    };
    Planted::valid(spliced(base, at, &block), format!("{spot} at offset {at}"))
}

// ---- the check ----

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The marker in any of the encodings a file could carry it in.
fn carries_marker(bytes: &[u8]) -> bool {
    contains(bytes, MARKER) || contains(bytes, &utf16(MARKER, false)) || contains(bytes, &utf16(MARKER, true))
}

/// `Err` with a message when the planted marker reaches an output of `strip` or `protect`, or
/// when `inspect` calls the planted file clean. Inputs the tools refuse are fine.
pub fn check(planted: &Planted) -> Result<(), String> {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    let pipeline = PIPELINE.get_or_init(|| {
        Pipeline::new(&Options {
            max_pixels: 1 << 20,
            ..Options::default()
        })
        .unwrap()
    });
    let spot = &planted.spot;
    let file = &planted.file;
    assert!(
        carries_marker(file),
        "{spot}: the generator did not plant the marker"
    );
    let ctx = FileContext { name: "planted" };
    let format = photoshield::format::sniff(file).ok();
    let strippable = !matches!(format, Some(photoshield::format::Format::Gif));
    let stripped = pipeline.strip(file, &ctx).map(|p| p.bytes);
    let protected = pipeline.process(file, &ctx).map(|p| p.bytes);
    for (how, out) in [("strip", &stripped), ("protect", &protected)] {
        if let Ok(out) = out {
            if carries_marker(out) {
                return Err(format!("{spot}: the marker survives {how}"));
            }
        }
    }
    // A valid file planted in a metadata position must still go through.
    if let (Err(e), true) = (&protected, planted.valid) {
        return Err(format!("{spot}: protect refused it: {e}"));
    }
    if strippable {
        if let Err(e) = &stripped {
            return Err(format!("{spot}: strip refused it: {e}"));
        }
    }
    match photoshield::inspect::inspect(file) {
        Ok(ins) if !ins.leaks() => Err(format!("{spot}: inspect calls it clean: {:?}", ins.findings)),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{spot}: inspect failed: {e}")),
    }
}
