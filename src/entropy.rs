//! The entropy-coded data of a baseline JPEG, walked without decoding pixels: Huffman symbols
//! are read and counted, never turned into coefficients. This tells two things the marker walk
//! cannot: whether every MCU of the frame is there (the first half of a JPEG with an end marker
//! appended looks whole to a marker walk, and decoders fill the rest with grey), and where each
//! scan's data really ends, so bytes hidden between the data and the next marker are found.
//! Progressive and arithmetic-coded files are not walked (`None`).

use crate::metadata::JpegLayout;

/// What the walk of a baseline JPEG's scan found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanCheck {
    /// MCUs in the frame.
    pub expected: u64,
    /// MCUs whose data is present.
    pub found: u64,
    /// Byte ranges inside the entropy-coded data that no MCU uses (after the last MCU of the
    /// scan or of a restart interval, before the next marker).
    pub unused: Vec<std::ops::Range<usize>>,
}

impl ScanCheck {
    pub fn complete(&self) -> bool {
        self.found == self.expected
    }
}

/// A Huffman table in the form of the JPEG specification's decoding procedure (F.2.2.3), with a
/// lookup of the codes up to [`FAST_BITS`] long (most symbols of real files) by their prefix.
#[derive(Clone)]
struct Huffman {
    maxcode: [i32; 17],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
    /// By the next FAST_BITS bits: the code's length << 8 | its symbol, or 0 for a longer code.
    fast: Vec<u16>,
}

const FAST_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8], values: &[u8]) -> Option<Huffman> {
        let mut t = Huffman {
            maxcode: [-1; 17],
            valptr: [0; 17],
            mincode: [0; 17],
            values: values.to_vec(),
            fast: vec![0; 1 << FAST_BITS],
        };
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            let n = counts[len - 1] as i32;
            if n > 0 {
                t.valptr[len] = k;
                t.mincode[len] = code;
                code += n;
                k += n;
                t.maxcode[len] = code - 1;
            }
            if code > 1 << len {
                return None;
            }
            code <<= 1;
        }
        if k as usize != values.len() {
            return None;
        }
        for len in 1..=FAST_BITS as usize {
            for c in t.mincode[len]..=t.maxcode[len] {
                let symbol = t.values[(t.valptr[len] + c - t.mincode[len]) as usize];
                let shift = FAST_BITS as usize - len;
                for suffix in 0..1usize << shift {
                    t.fast[((c as usize) << shift) | suffix] = ((len as u16) << 8) | symbol as u16;
                }
            }
        }
        Some(t)
    }
}

/// Reads bits of entropy-coded data, undoing byte stuffing; stops at a marker. Bytes are loaded
/// ahead into a 64-bit buffer; `stuffed` remembers which loaded bytes took two input bytes, so
/// the input offset of the first unconsumed byte can be told ([`Bits::used_end`]).
struct Bits<'a> {
    b: &'a [u8],
    /// Next input byte to load.
    pos: usize,
    acc: u64,
    /// Unconsumed bits: the low `n` bits of `acc`.
    n: u32,
    stuffed: u64,
    /// A marker (or the end of the buffer) was reached.
    ended: bool,
}

impl Bits<'_> {
    fn new(b: &[u8], pos: usize) -> Bits<'_> {
        Bits {
            b,
            pos,
            acc: 0,
            n: 0,
            stuffed: 0,
            ended: false,
        }
    }

    fn fill(&mut self) {
        while self.n <= 56 && !self.ended {
            let Some(&byte) = self.b.get(self.pos) else {
                self.ended = true;
                break;
            };
            let width = match byte {
                0xFF if self.b.get(self.pos + 1) == Some(&0x00) => 2,
                0xFF => {
                    self.ended = true; // a marker: the data ends here
                    break;
                }
                _ => 1,
            };
            self.pos += width;
            self.acc = (self.acc << 8) | byte as u64;
            self.stuffed = (self.stuffed << 1) | (width == 2) as u64;
            self.n += 8;
        }
    }

    /// Consumes `k` (at most 16) bits.
    fn bits(&mut self, k: u32) -> Option<()> {
        if self.n < k {
            self.fill();
            if self.n < k {
                return None;
            }
        }
        self.n -= k;
        Some(())
    }

    fn bit(&mut self) -> Option<u32> {
        self.bits(1)?;
        Some(((self.acc >> self.n) & 1) as u32)
    }

    fn symbol(&mut self, t: &Huffman) -> Option<u8> {
        if self.n < 16 {
            self.fill();
        }
        if self.n >= FAST_BITS {
            let entry = t.fast[((self.acc >> (self.n - FAST_BITS)) & ((1 << FAST_BITS) - 1)) as usize];
            if entry != 0 {
                self.n -= (entry >> 8) as u32;
                return Some(entry as u8);
            }
        }
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | self.bit()? as i32;
            if code <= t.maxcode[len] {
                return t
                    .values
                    .get((t.valptr[len] + code - t.mincode[len]) as usize)
                    .copied();
            }
        }
        None
    }

    /// Drops the rest of the current byte (padding before a marker).
    fn align(&mut self) {
        self.n -= self.n % 8;
    }

    /// The input offset of the first byte not consumed (after [`Bits::align`]).
    fn used_end(&self) -> usize {
        (0..self.n / 8).fold(self.pos, |end, i| end - 1 - ((self.stuffed >> i) & 1) as usize)
    }
}

/// Walks the scans of a baseline, Huffman-coded JPEG. `None` for other kinds (progressive,
/// arithmetic, lossless), for more than one scan, or when the tables are malformed: those are
/// left to the decoder.
pub fn check(b: &[u8], layout: &JpegLayout) -> Option<ScanCheck> {
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut restart = 0u64;
    let mut frame: Option<(u64, Vec<(u8, u8, u8)>, u8, u8)> = None; // MCUs, (id, h, v), hmax, vmax
    let mut result: Option<ScanCheck> = None;
    for seg in &layout.segments {
        let d = seg.data;
        match seg.marker {
            0xC4 => {
                let mut i = 0;
                while i + 17 <= d.len() {
                    let (class, id) = (d[i] >> 4, (d[i] & 15) as usize);
                    let counts = &d[i + 1..i + 17];
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    let values = d.get(i + 17..i + 17 + n)?;
                    let table = Huffman::new(counts, values)?;
                    match class {
                        0 => *dc.get_mut(id)? = Some(table),
                        _ => *ac.get_mut(id)? = Some(table),
                    }
                    i += 17 + n;
                }
            }
            0xDD => restart = u16::from_be_bytes([*d.first()?, *d.get(1)?]) as u64,
            0xC0 | 0xC1 => {
                let (h, w) = (
                    u16::from_be_bytes([*d.get(1)?, *d.get(2)?]) as u64,
                    u16::from_be_bytes([*d.get(3)?, *d.get(4)?]) as u64,
                );
                let n = *d.get(5)? as usize;
                let comps: Vec<(u8, u8, u8)> = (0..n)
                    .map(|c| Some((*d.get(6 + 3 * c)?, d.get(7 + 3 * c)? >> 4, d.get(7 + 3 * c)? & 15)))
                    .collect::<Option<_>>()?;
                let hmax = comps.iter().map(|c| c.1).max()?.max(1);
                let vmax = comps.iter().map(|c| c.2).max()?.max(1);
                if h == 0 {
                    return None; // height from a DNL marker: rare, left to the decoder
                }
                let mcus = w.div_ceil(8 * hmax as u64) * h.div_ceil(8 * vmax as u64);
                frame = Some((mcus, comps, hmax, vmax));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDA => {
                if result.is_some() {
                    return None; // several scans: non-interleaved, left to the decoder
                }
                let (mcus, comps, _, _) = frame.as_ref()?;
                let ns = *d.first()? as usize;
                let mut blocks = Vec::new(); // per block of an MCU: (dc table, ac table)
                for k in 0..ns {
                    let (id, tables) = (*d.get(1 + 2 * k)?, *d.get(2 + 2 * k)?);
                    let &(_, h, v) = comps.iter().find(|c| c.0 == id)?;
                    let (td, ta) = ((tables >> 4) as usize, (tables & 15) as usize);
                    let count = if ns == 1 { 1 } else { h as usize * v as usize };
                    blocks.extend(std::iter::repeat_n((td, ta), count));
                }
                let expected = if ns == 1 && comps.len() > 1 {
                    return None; // a non-interleaved scan counts blocks, not MCUs
                } else {
                    *mcus
                };
                let start = seg.offset + 4 + d.len();
                result = Some(walk(b, start, expected, restart, &blocks, &dc, &ac)?);
            }
            _ => {}
        }
    }
    result
}

fn walk(
    b: &[u8],
    start: usize,
    expected: u64,
    restart: u64,
    blocks: &[(usize, usize)],
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
) -> Option<ScanCheck> {
    let tables: Vec<(&Huffman, &Huffman)> = blocks
        .iter()
        .map(|&(d, a)| Some((dc.get(d)?.as_ref()?, ac.get(a)?.as_ref()?)))
        .collect::<Option<_>>()?;
    let mut bits = Bits::new(b, start);
    let mut found = 0u64;
    let mut unused = Vec::new();
    // The end of the data that is used, then wherever the next marker really is.
    let end_of_interval = |bits: &mut Bits, unused: &mut Vec<std::ops::Range<usize>>| {
        bits.align();
        let used_end = bits.used_end();
        let mut i = used_end;
        while i < b.len() && !(b[i] == 0xFF && b.get(i + 1).is_some_and(|&m| m != 0x00)) {
            i += 1;
        }
        if i > used_end {
            unused.push(used_end..i);
        }
        i
    };
    'mcus: while found < expected {
        for (dct, act) in &tables {
            let Some(s) = bits.symbol(dct) else { break 'mcus };
            if bits.bits(s as u32 & 15).is_none() {
                break 'mcus;
            }
            let mut k = 1;
            while k < 64 {
                let Some(rs) = bits.symbol(act) else { break 'mcus };
                let (r, s) = (rs >> 4, rs & 15);
                if s == 0 {
                    if r != 15 {
                        break;
                    }
                    k += 16;
                } else {
                    k += r as usize;
                    if bits.bits(s as u32).is_none() {
                        break 'mcus;
                    }
                    k += 1;
                }
            }
        }
        found += 1;
        if restart > 0 && found % restart == 0 && found < expected {
            let marker_at = end_of_interval(&mut bits, &mut unused);
            match b.get(marker_at + 1) {
                Some(0xD0..=0xD7) => bits = Bits::new(b, marker_at + 2),
                _ => break,
            }
        }
    }
    if found == expected {
        end_of_interval(&mut bits, &mut unused);
    }
    Some(ScanCheck {
        expected,
        found,
        unused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode, EncodeSettings};
    use crate::pixels::{Layout, Pixels};
    use crate::OutputFormat;

    fn photo(w: u32, h: u32) -> Vec<u8> {
        let data = (0..w * h * 3)
            .map(|i| ((i * 2_654_435_761u32) >> 24) as u8 / 2 + (i % (w * 3) / 7) as u8)
            .collect();
        let pixels = Pixels::new(w, h, Layout::Rgb8, data);
        let settings = EncodeSettings {
            format: OutputFormat::Jpeg,
            quality: 90,
        };
        encode(&pixels, settings, None).unwrap()
    }

    #[test]
    fn whole_files_are_complete_and_cut_ones_are_not() {
        // 300 rows: several strips joined by restart markers; 17 and 1 px: partial MCUs.
        for (w, h) in [(1, 1), (17, 9), (64, 48), (200, 300)] {
            let jpeg = photo(w, h);
            let layout = crate::metadata::jpeg_layout(&jpeg);
            let scan = check(&jpeg, &layout).unwrap();
            assert!(scan.complete() && scan.unused.is_empty(), "{w}x{h}: {scan:?}");
            let data_start = layout.segments.iter().find(|s| s.marker == 0xDA).unwrap().offset + 20;
            for cut in (data_start..jpeg.len() - 8).step_by(37) {
                let cut_file = [&jpeg[..cut], &[0xFF, 0xD9][..]].concat();
                let layout = crate::metadata::jpeg_layout(&cut_file);
                if let Some(scan) = check(&cut_file, &layout) {
                    assert!(!scan.complete(), "{w}x{h} cut at {cut} looks complete");
                }
            }
        }
    }

    #[test]
    fn bytes_before_a_restart_marker_are_found() {
        let jpeg = photo(200, 300);
        let rst = jpeg
            .windows(2)
            .position(|w| w[0] == 0xFF && w[1] == 0xD0)
            .unwrap();
        let hidden = [&jpeg[..rst], b"HIDDEN", &jpeg[rst..]].concat();
        let scan = check(&hidden, &crate::metadata::jpeg_layout(&hidden)).unwrap();
        assert!(scan.complete(), "{scan:?}");
        assert_eq!(scan.unused, vec![rst..rst + 6]);
    }
}
