//! JPEG: the one walker of its marker segments (with strict bounds, through every scan of a
//! progressive file) and what its segments define.

/// One marker segment of a JPEG: its marker byte, where it starts (at the 0xFF) and its payload
/// (after the length field).
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub marker: u8,
    pub offset: usize,
    pub data: &'a [u8],
}

impl Segment<'_> {
    /// The offset just past the segment (marker, length field and payload).
    pub fn end(&self) -> usize {
        self.offset + 4 + self.data.len()
    }
}

/// The structure of a JPEG file.
#[derive(Debug, Default)]
pub struct Layout<'a> {
    /// Marker segments with a length, in file order (entropy-coded data is not included).
    pub segments: Vec<Segment<'a>>,
    /// Offset just past the EOI marker, when the file reaches one.
    pub end: Option<usize>,
    /// Why the walk stopped early, when it did.
    pub error: Option<&'static str>,
}

/// Walks a JPEG's segments, through every scan of a progressive file, up to the end-of-image
/// marker. Never reads past the buffer; stops with `error` set on a malformed structure.
pub fn layout(b: &[u8]) -> Layout<'_> {
    walk(b, false)
}

/// The segments before the first scan (where EXIF, ICC and the frame header live), without
/// reading the compressed data: cheap on a large file.
pub(crate) fn header(b: &[u8]) -> Layout<'_> {
    walk(b, true)
}

fn walk(b: &[u8], header_only: bool) -> Layout<'_> {
    let mut layout = Layout::default();
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
pub fn is_complete(bytes: &[u8]) -> bool {
    layout(bytes).end.is_some()
}

/// How many bytes of a JPEG coding segment's payload its fields define: a frame header (SOFn)
/// and a scan header (SOS) by their component counts, a restart interval (DRI) 2 bytes, and
/// quantisation and Huffman table segments (DQT, DHT) up to their last complete table. Bytes
/// after that are read by no decoder: a hiding place. Other segments are wholly defined.
pub(crate) fn defined_len(marker: u8, data: &[u8]) -> usize {
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

/// The ICC profile of a JPEG, joined from its `ICC_PROFILE` segments in sequence order.
pub fn icc(layout: &Layout) -> Option<Vec<u8>> {
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
