//! RIFF (WebP): the one walker of its chunks and of an animation frame's, and the one writer of
//! WebP files (chunks under the RIFF header, the extended header `VP8X`).

/// One RIFF chunk of a WebP file.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub id: [u8; 4],
    pub offset: usize,
    pub data: &'a [u8],
}

/// Iterates the top-level chunks of a WebP file, within the RIFF size and the buffer.
pub fn chunks(b: &[u8]) -> impl Iterator<Item = Chunk<'_>> {
    let end = match b.get(0..12) {
        Some(h) if &h[0..4] == b"RIFF" && &h[8..12] == b"WEBP" => {
            (u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize)
                .saturating_add(8)
                .min(b.len())
        }
        _ => 0,
    };
    let mut i = 12;
    std::iter::from_fn(move || {
        let head = b.get(i..i + 8).filter(|_| i + 8 <= end)?;
        let id = [head[0], head[1], head[2], head[3]];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let data = b.get(i + 8..(i + 8).checked_add(len)?.min(end))?;
        if data.len() != len {
            i = usize::MAX - 8;
            return None;
        }
        let chunk = Chunk { id, offset: i, data };
        i = i + 8 + len + (len & 1);
        Some(chunk)
    })
}

/// The chunks inside a WebP animation frame (`ANMF`), after its 16-byte header: (id, payload),
/// stopping at the first one that runs past the frame.
pub(crate) fn anmf_subchunks(frame: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
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

/// The size of an animation frame (`ANMF` data: 24-bit x/2, y/2, width-1, height-1, ...).
pub(crate) fn anmf_size(frame: &[u8]) -> Option<(u32, u32)> {
    let d = frame.get(6..12)?;
    let u24 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], 0]) + 1;
    Some((u24(&d[0..3]), u24(&d[3..6])))
}

/// Where a RIFF file ends by its header's size (which may be short of the buffer's end).
pub(crate) fn end(bytes: &[u8]) -> Option<usize> {
    let size = bytes.get(4..8)?;
    Some(u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize + 8)
}

/// The payload of a `VP8X` chunk: feature `flags` (0x20 ICC, 0x10 alpha, 0x08 EXIF, 0x04 XMP,
/// 0x02 animation) and the canvas size.
pub(crate) fn vp8x(flags: u8, width: u32, height: u32) -> [u8; 10] {
    let mut v = [0u8; 10];
    v[0] = flags;
    v[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
    v[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
    v
}

/// A WebP file of `chunks`, in order, under the RIFF header.
pub(crate) fn webp_file<'a>(chunks: impl IntoIterator<Item = (&'a [u8; 4], &'a [u8])>) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (id, data) in chunks {
        push_chunk(&mut body, id, data);
    }
    file(body)
}

/// `body` (starting with "WEBP") under the RIFF header that gives its length.
pub(crate) fn file(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The alpha hint of a `VP8L` bitstream's header (bit 28 after the signature byte).
pub(crate) fn vp8l_has_alpha(vp8l: &[u8]) -> bool {
    vp8l.get(4).is_some_and(|b| b & 0x10 != 0)
}

/// Wraps a simple-format WebP (as libwebp writes it) into the extended format with an ICC
/// profile chunk, setting the VP8X flags and canvas size the specification requires.
pub(crate) fn webp_with_icc(simple: Vec<u8>, icc: &[u8]) -> Result<Vec<u8>, String> {
    let chunks: Vec<Chunk> = chunks(&simple).collect();
    let (width, height) = canvas_size(&chunks).ok_or("cannot read the encoded WebP's size")?;
    let has_alpha = chunks
        .iter()
        .any(|c| &c.id == b"ALPH" || (&c.id == b"VP8L" && vp8l_has_alpha(c.data)));
    let mut flags = 0x20u8; // ICC
    if has_alpha {
        flags |= 0x10;
    }
    let mut body = Vec::with_capacity(simple.len() + icc.len() + 64);
    body.extend_from_slice(b"WEBP");
    push_chunk(&mut body, b"VP8X", &vp8x(flags, width, height));
    push_chunk(&mut body, b"ICCP", icc);
    for c in chunks
        .iter()
        .filter(|c| matches!(&c.id, b"ALPH" | b"VP8 " | b"VP8L"))
    {
        push_chunk(&mut body, &c.id, c.data);
    }
    Ok(file(body))
}

pub fn push_chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// Canvas size of a WebP from its VP8X, VP8 or VP8L chunk.
pub(crate) fn canvas_size(chunks: &[Chunk]) -> Option<(u32, u32)> {
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
