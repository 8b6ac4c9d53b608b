//! The entropy-coded data of a Huffman-coded JPEG (baseline, extended sequential or progressive),
//! walked without decoding pixels: Huffman symbols are read and counted, never turned into
//! coefficients. This tells two things the marker walk cannot: whether every block of every scan
//! is there (the first half of a JPEG with an end marker appended looks whole to a marker walk,
//! and decoders fill the rest with grey), and where each scan's data really ends, so bytes hidden
//! between the data and the next marker (or a restart marker) are found.
//!
//! Progressive scans (ITU T.81 G.1.2) are walked too: DC scans in MCU order, AC scans over one
//! component's own block grid with end-of-band runs, and refinement scans, which need to know
//! which coefficients of each block earlier scans made non-zero (kept as a bit set per block; no
//! values). Arithmetic-coded, lossless and hierarchical files are not walked (`None`).
//!
//! This module owns the reading of scan data only; the marker structure comes from
//! [`crate::container::jpeg::layout`], and what to do with the findings is strip's, inspect's and
//! decode's business.

use std::ops::Range;

use crate::container::jpeg::Layout;

/// What the walk of a JPEG's scans found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanCheck {
    /// Blocks (8x8 data units) the scans must code: every block of every scan present (an MCU
    /// counts its blocks). When the scans present stop before every coefficient of every
    /// component is coded to its last bit (a progressive file cut between two scans, a sequential
    /// file without the scan of a component), one more scan over each unfinished component's
    /// blocks is counted as missing: a lower bound of what is lost.
    pub expected: u64,
    /// Blocks whose data is present, over all scans.
    pub found: u64,
    /// Byte ranges inside the entropy-coded data that no block uses (after the last block of a
    /// scan or of a restart interval, before the next marker).
    pub unused: Vec<Range<usize>>,
}

impl ScanCheck {
    /// Every block of every scan is present, and the scans code every coefficient fully.
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
        self.value(1)
    }

    /// Consumes `k` (at most 16) bits and returns them.
    fn value(&mut self, k: u32) -> Option<u32> {
        self.bits(k)?;
        Some(((self.acc >> self.n) & ((1 << k) - 1)) as u32)
    }

    /// Consumes `k` bits, any number.
    fn many(&mut self, mut k: u32) -> Option<()> {
        while k > 0 {
            let now = k.min(16);
            self.bits(now)?;
            k -= now;
        }
        Some(())
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

/// Walks the scans of a Huffman-coded JPEG, sequential or progressive. `None` for other kinds
/// (arithmetic, lossless, hierarchical), for a file without a scan, or when the frame header is
/// malformed: those are left to the decoder. A table or scan header that cannot be read after
/// the frame ends the walk there: what follows counts as missing (a cut that lands inside a
/// segment, with an end marker appended, makes one).
pub fn check(b: &[u8], layout: &Layout) -> Option<ScanCheck> {
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut restart = 0u64;
    let mut frame: Option<Frame> = None;
    let mut total: Option<ScanCheck> = None;
    for seg in &layout.segments {
        let d = seg.data;
        match seg.marker {
            0xC4 => {
                let Some(()) = define_tables(d, &mut dc, &mut ac) else {
                    break;
                };
            }
            0xDD => match d.get(..2) {
                Some(&[hi, lo]) => restart = u16::from_be_bytes([hi, lo]) as u64,
                _ => break,
            },
            0xC0 | 0xC1 => frame = Some(Frame::parse(d, false)?),
            0xC2 => frame = Some(Frame::parse(d, true)?),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDA => {
                let Some(frame) = frame.as_mut() else { break };
                let Some(scan) = Scan::parse(d, frame, &dc, &ac) else {
                    break;
                };
                let start = seg.end();
                let (found, mut unused) = match scan.coding {
                    Coding::Blocks(ref blocks) => walk(b, start, restart, scan.units, |bits, from, to| {
                        walk_blocks(bits, blocks, from, to)
                    }),
                    Coding::AcBand { table, refine } => {
                        let component = &mut frame.components[scan.components[0]];
                        let mut band = Band::new(std::mem::take(&mut component.nonzero));
                        let walked = walk(b, start, restart, scan.units, |bits, from, to| {
                            band.walk(bits, table, refine, scan.band, from, to)
                        });
                        component.nonzero = band.finish();
                        walked
                    }
                };
                let sum = total.get_or_insert(ScanCheck {
                    expected: 0,
                    found: 0,
                    unused: Vec::new(),
                });
                sum.expected += scan.units * scan.blocks_per_unit;
                sum.found += found * scan.blocks_per_unit;
                sum.unused.append(&mut unused);
                scan.mark_coded(frame);
            }
            _ => {}
        }
    }
    let mut total = total?;
    total.expected += frame?.unfinished_blocks();
    Some(total)
}

/// Reads a DHT segment's tables into the DC and AC sets.
fn define_tables(d: &[u8], dc: &mut [Option<Huffman>; 4], ac: &mut [Option<Huffman>; 4]) -> Option<()> {
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
    Some(())
}

/// Coded to its last bit (successive approximation's Al = 0); `UNCODED` before any scan.
const UNCODED: u8 = u8::MAX;

/// The frame header, and what the scans so far have coded.
struct Frame {
    progressive: bool,
    /// MCUs across and down (the grid of interleaved scans).
    mcus: (u64, u64),
    components: Vec<Component>,
}

struct Component {
    id: u8,
    /// Sampling factors.
    h: u64,
    v: u64,
    /// Blocks across and down of the component's own grid (the order of a one-component scan):
    /// ceil(width * h / (8 * hmax)) x ceil(height * v / (8 * vmax)).
    blocks: (u64, u64),
    /// For each coefficient (zigzag order), the lowest bit coded so far.
    coded_to: [u8; 64],
    /// Progressive only: the blocks (raster index in the own grid, ascending) with a non-zero AC
    /// coefficient, each with the set of them (bit k = zigzag k). Refinement scans read one
    /// correction bit per coefficient in this set and none for the others. Kept sparse: a
    /// small file with a huge frame and long end-of-band runs costs no memory.
    nonzero: Vec<(u32, u64)>,
}

impl Frame {
    fn parse(d: &[u8], progressive: bool) -> Option<Frame> {
        let (h, w) = (
            u16::from_be_bytes([*d.get(1)?, *d.get(2)?]) as u64,
            u16::from_be_bytes([*d.get(3)?, *d.get(4)?]) as u64,
        );
        if h == 0 || w == 0 {
            return None; // height from a DNL marker: rare, left to the decoder
        }
        let n = *d.get(5)? as usize;
        let sampling: Vec<(u8, u64, u64)> = (0..n)
            .map(|c| {
                let (id, hv) = (*d.get(6 + 3 * c)?, *d.get(7 + 3 * c)?);
                let (h, v) = ((hv >> 4) as u64, (hv & 15) as u64);
                ((1..=4).contains(&h) && (1..=4).contains(&v)).then_some((id, h, v))
            })
            .collect::<Option<_>>()?;
        let hmax = sampling.iter().map(|c| c.1).max()?;
        let vmax = sampling.iter().map(|c| c.2).max()?;
        let components = sampling
            .into_iter()
            .map(|(id, ch, cv)| Component {
                id,
                h: ch,
                v: cv,
                blocks: ((w * ch).div_ceil(8 * hmax), (h * cv).div_ceil(8 * vmax)),
                coded_to: [UNCODED; 64],
                nonzero: Vec::new(),
            })
            .collect();
        Some(Frame {
            progressive,
            mcus: (w.div_ceil(8 * hmax), h.div_ceil(8 * vmax)),
            components,
        })
    }

    /// The blocks of every component that some coefficient was never fully coded for.
    fn unfinished_blocks(&self) -> u64 {
        self.components
            .iter()
            .filter(|c| c.coded_to.iter().any(|&al| al != 0))
            .map(|c| c.blocks.0 * c.blocks.1)
            .sum()
    }
}

/// What one scan codes and in which order.
struct Scan<'t> {
    /// Indices into the frame's components.
    components: Vec<usize>,
    /// Spectral selection (zigzag, inclusive) and successive approximation.
    band: (usize, usize),
    ah: u8,
    al: u8,
    coding: Coding<'t>,
    /// MCUs of an interleaved scan, or blocks of a one-component scan: what a restart interval
    /// counts.
    units: u64,
    blocks_per_unit: u64,
}

enum Coding<'t> {
    /// Each unit codes these blocks in turn (sequential scans and progressive DC scans).
    Blocks(Vec<Block<'t>>),
    /// A band of AC coefficients of one component (progressive): the first bits of them, or one
    /// more bit (`refine`).
    AcBand { table: &'t Huffman, refine: bool },
}

#[derive(Clone, Copy)]
enum Block<'t> {
    /// DC then AC, all 64 coefficients.
    Sequential(&'t Huffman, &'t Huffman),
    DcFirst(&'t Huffman),
    /// One bit per block.
    DcRefine,
}

impl<'t> Scan<'t> {
    fn parse(
        d: &[u8],
        frame: &Frame,
        dc: &'t [Option<Huffman>; 4],
        ac: &'t [Option<Huffman>; 4],
    ) -> Option<Scan<'t>> {
        let ns = *d.first()? as usize;
        if !(1..=4).contains(&ns) {
            return None;
        }
        let mut components = Vec::with_capacity(ns);
        let mut tables = Vec::with_capacity(ns);
        for k in 0..ns {
            let (id, t) = (*d.get(1 + 2 * k)?, *d.get(2 + 2 * k)?);
            components.push(frame.components.iter().position(|c| c.id == id)?);
            tables.push(((t >> 4) as usize, (t & 15) as usize));
        }
        let (ss, se) = (*d.get(1 + 2 * ns)? as usize, *d.get(2 + 2 * ns)? as usize);
        let (ah, al) = (d.get(3 + 2 * ns)? >> 4, d.get(3 + 2 * ns)? & 15);
        let table = |set: &'t [Option<Huffman>; 4], id: usize| set.get(id)?.as_ref();
        let block = |(td, ta): (usize, usize)| -> Option<Block<'t>> {
            Some(if !frame.progressive {
                Block::Sequential(table(dc, td)?, table(ac, ta)?)
            } else if ah == 0 {
                Block::DcFirst(table(dc, td)?)
            } else {
                Block::DcRefine
            })
        };
        let coding = if frame.progressive && ss > 0 {
            // AC bands are coded one component at a time (G.1.1.1.1).
            if ns != 1 || se < ss || se > 63 {
                return None;
            }
            Coding::AcBand {
                table: table(ac, tables[0].1)?,
                refine: ah > 0,
            }
        } else {
            if frame.progressive && se != 0 {
                return None; // DC and AC never share a progressive scan
            }
            let mut blocks = Vec::new();
            for (&c, &t) in components.iter().zip(&tables) {
                let c = &frame.components[c];
                let count = if ns == 1 { 1 } else { c.h * c.v };
                blocks.extend(std::iter::repeat_n(block(t)?, count as usize));
            }
            Coding::Blocks(blocks)
        };
        // One component: its own block grid, one block a unit. Several: MCUs.
        let (units, blocks_per_unit) = match components[..] {
            [c] => {
                let (w, h) = frame.components[c].blocks;
                (w * h, 1)
            }
            _ => {
                let per_mcu = components
                    .iter()
                    .map(|&c| frame.components[c].h * frame.components[c].v);
                (frame.mcus.0 * frame.mcus.1, per_mcu.sum())
            }
        };
        let (band, ah, al) = if frame.progressive {
            ((ss, se), ah, al)
        } else {
            ((0, 63), 0, 0) // sequential: what the header says does not matter
        };
        Some(Scan {
            components,
            band,
            ah,
            al,
            coding,
            units,
            blocks_per_unit,
        })
    }

    /// Records which coefficient bits this scan coded. A refinement counts only when it follows
    /// the bit coded before (Ah = the previous Al, Al = Ah - 1); an inconsistent progression
    /// leaves the coefficients unfinished, as a decoder would leave them wrong.
    fn mark_coded(&self, frame: &mut Frame) {
        for &c in &self.components {
            for coded in &mut frame.components[c].coded_to[self.band.0..=self.band.1] {
                let first = self.ah == 0 && *coded == UNCODED;
                let next_bit = self.ah > 0 && *coded == self.ah && self.al + 1 == self.ah;
                if first || next_bit {
                    *coded = self.al;
                }
            }
        }
    }
}

/// Walks one scan's data from `start`, one restart interval at a time: `step(bits, from, to)`
/// reads units `from..to` (one whole interval, from the first bit of its data) and says where
/// the data stopped (`to` when all are there). Returns the units present and the byte ranges no
/// unit uses (looked for after each whole interval).
fn walk(
    b: &[u8],
    start: usize,
    restart: u64,
    units: u64,
    mut step: impl FnMut(&mut Bits, u64, u64) -> u64,
) -> (u64, Vec<Range<usize>>) {
    let mut bits = Bits::new(b, start);
    let mut unused = Vec::new();
    let interval = if restart > 0 { restart } else { units };
    let mut done = 0;
    while done < units {
        let end = (done + interval).min(units);
        done = step(&mut bits, done, end);
        if done < end {
            break; // the data stops short
        }
        let marker_at = end_of_data(b, &mut bits, &mut unused);
        if done == units {
            break;
        }
        match b.get(marker_at + 1) {
            Some(0xD0..=0xD7) => bits = Bits::new(b, marker_at + 2),
            _ => break,
        }
    }
    (done, unused)
}

/// After the last unit of a scan or restart interval: the padding to the byte boundary ends
/// what is used; anything from there to the marker is recorded. Returns the marker's offset.
fn end_of_data(b: &[u8], bits: &mut Bits, unused: &mut Vec<Range<usize>>) -> usize {
    bits.align();
    let used_end = bits.used_end();
    let mut i = used_end;
    // A 0xFF that ends the file is the start of a marker cut short, not a hidden byte.
    while i < b.len() && !(b[i] == 0xFF && b.get(i + 1) != Some(&0x00)) {
        i += 1;
    }
    if i > used_end {
        unused.push(used_end..i);
    }
    i
}

/// Reads units `from..to` of a scan whose units code `blocks` in turn (sequential scans and
/// progressive DC scans): where the data stopped (`to` when all are there).
fn walk_blocks(bits: &mut Bits, blocks: &[Block], from: u64, to: u64) -> u64 {
    for unit in from..to {
        let present = blocks.iter().try_for_each(|block| match *block {
            Block::Sequential(dc, ac) => sequential_block(bits, dc, ac),
            Block::DcFirst(dc) => {
                let s = bits.symbol(dc)?;
                bits.bits(s as u32 & 15)
            }
            Block::DcRefine => bits.bits(1),
        });
        if present.is_none() {
            return unit;
        }
    }
    to
}

/// One block of a sequential scan: the DC difference, then AC run/size symbols up to the end of
/// block or the 63rd coefficient (F.2.2).
fn sequential_block(bits: &mut Bits, dc: &Huffman, ac: &Huffman) -> Option<()> {
    let s = bits.symbol(dc)?;
    bits.bits(s as u32 & 15)?;
    let mut k = 1;
    while k < 64 {
        let rs = bits.symbol(ac)?;
        let (r, s) = (rs >> 4, rs & 15);
        if s == 0 {
            if r != 15 {
                break;
            }
            k += 16;
        } else {
            k += r as usize;
            bits.bits(s as u32)?;
            k += 1;
        }
    }
    Some(())
}

/// The state of an AC band scan of one component: the end-of-band run in progress, and the
/// non-zero sets, read from the previous scans' list (`prev`, up to `at`) into this scan's
/// (`next`) in block order.
struct Band {
    prev: Vec<(u32, u64)>,
    at: usize,
    next: Vec<(u32, u64)>,
    /// Blocks after the current one that the last end-of-band symbol covers.
    eobrun: u64,
}

impl Band {
    fn new(prev: Vec<(u32, u64)>) -> Band {
        Band {
            prev,
            at: 0,
            next: Vec::new(),
            eobrun: 0,
        }
    }

    /// Walks blocks `from..to`, one restart interval (an end-of-band run never spans a restart
    /// marker): where the data stopped (`to` when all are there). A run of blocks with nothing
    /// left to code is passed over at once, so the cost follows the data, not the frame's size.
    fn walk(
        &mut self,
        bits: &mut Bits,
        table: &Huffman,
        refine: bool,
        band: (usize, usize),
        from: u64,
        to: u64,
    ) -> u64 {
        self.eobrun = 0;
        let mut block = from;
        while block < to {
            if self.eobrun > 0 {
                let run = self.eobrun.min(to - block);
                if refine {
                    // Each non-zero coefficient in the band still gets its correction bit.
                    let in_band = band_mask(band);
                    while let Some(&(at, set)) = self.prev.get(self.at).filter(|e| (e.0 as u64) < block + run)
                    {
                        if bits.many((set & in_band).count_ones()).is_none() {
                            return (at as u64).max(block);
                        }
                        self.next.push((at, set));
                        self.at += 1;
                    }
                }
                self.eobrun -= run;
                block += run;
                continue;
            }
            let mut set = self.take(block as u32);
            let present = if refine {
                ac_refine(bits, table, band, &mut self.eobrun, &mut set)
            } else {
                ac_first(bits, table, band, &mut self.eobrun, &mut set)
            };
            if set != 0 {
                self.next.push((block as u32, set));
            }
            if present.is_none() {
                return block;
            }
            block += 1;
        }
        to
    }

    /// The non-zero set of `block`, taken out of `prev`; the blocks before it keep theirs.
    fn take(&mut self, block: u32) -> u64 {
        while let Some(&(at, set)) = self.prev.get(self.at) {
            if at > block {
                break;
            }
            self.at += 1;
            if at == block {
                return set;
            }
            self.next.push((at, set));
        }
        0
    }

    fn finish(mut self) -> Vec<(u32, u64)> {
        self.next.extend_from_slice(&self.prev[self.at..]);
        self.next
    }
}

fn band_mask((ss, se): (usize, usize)) -> u64 {
    (u64::MAX >> (63 - se)) & (u64::MAX << ss)
}

/// One block of an AC first scan (G.1.2.2): run/size symbols, or an end-of-band run that covers
/// this block and `eobrun` more.
fn ac_first(
    bits: &mut Bits,
    table: &Huffman,
    (ss, se): (usize, usize),
    eobrun: &mut u64,
    set: &mut u64,
) -> Option<()> {
    let mut k = ss;
    while k <= se {
        let rs = bits.symbol(table)?;
        let (r, s) = ((rs >> 4) as u32, (rs & 15) as u32);
        if s == 0 {
            if r < 15 {
                *eobrun = (1 << r) - 1 + bits.value(r)? as u64;
                break;
            }
            k += 16;
        } else {
            k += r as usize;
            bits.bits(s)?;
            if k <= se {
                *set |= 1 << k;
            }
            k += 1;
        }
    }
    Some(())
}

/// One block of an AC refinement scan (G.1.2.3), as libjpeg reads it: a run counts only the
/// coefficients still zero, and every non-zero one passed gets a correction bit; a new
/// coefficient is one bit (its sign). An end-of-band run covers the rest of this block and
/// `eobrun` more, whose non-zero coefficients still get their correction bits.
fn ac_refine(
    bits: &mut Bits,
    table: &Huffman,
    (ss, se): (usize, usize),
    eobrun: &mut u64,
    set: &mut u64,
) -> Option<()> {
    let mut k = ss;
    let mut run_ended = false;
    while k <= se {
        let rs = bits.symbol(table)?;
        let (mut r, s) = (rs >> 4, rs & 15);
        if s != 0 {
            bits.bits(1)?; // s is 1 in a valid file; libjpeg reads one bit whatever it is
        } else if r != 15 {
            *eobrun = (1 << r) - 1 + bits.value(r as u32)? as u64;
            run_ended = true;
            break;
        }
        while k <= se {
            if (*set >> k) & 1 != 0 {
                bits.bits(1)?;
            } else if r == 0 {
                break;
            } else {
                r -= 1;
            }
            k += 1;
        }
        if s != 0 && k <= se {
            *set |= 1 << k;
        }
        k += 1;
    }
    if run_ended {
        bits.many((*set & band_mask((k, se))).count_ones())?;
    }
    Some(())
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
            let layout = crate::container::jpeg::layout(&jpeg);
            let scan = check(&jpeg, &layout).unwrap();
            assert!(scan.complete() && scan.unused.is_empty(), "{w}x{h}: {scan:?}");
            let data_start = layout.segments.iter().find(|s| s.marker == 0xDA).unwrap().offset + 20;
            for cut in (data_start..jpeg.len() - 8).step_by(37) {
                let cut_file = [&jpeg[..cut], &[0xFF, 0xD9][..]].concat();
                let layout = crate::container::jpeg::layout(&cut_file);
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
        let scan = check(&hidden, &crate::container::jpeg::layout(&hidden)).unwrap();
        assert!(scan.complete(), "{scan:?}");
        assert_eq!(scan.unused, vec![rst..rst + 6]);
    }
}

/// Progressive files from libjpeg-turbo's `cjpeg` (the reference encoder: its default
/// progression has interleaved DC scans, AC bands with successive approximation, end-of-band
/// runs and refinement scans of both kinds), and the progressive files of the shared corpus.
/// Skipped without `cjpeg` or ../shared/corpus (a failure with CI set).
#[cfg(test)]
mod progressive_tests {
    use super::*;
    use crate::codec::{self, DecodeLimits};
    use crate::container::jpeg;
    use crate::format::Format;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn skip(what: &str) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {what} is missing"
        );
        eprintln!("SKIPPED: {what} not found; some progressive entropy tests did not run");
    }

    /// A photo-like PPM (or PGM): gradients, edges, noise, and a flat area for end-of-band runs.
    fn netpbm(w: u32, h: u32, grey: bool) -> Vec<u8> {
        let channels = if grey { 1 } else { 3 };
        let mut out = format!("P{}\n{w} {h}\n255\n", if grey { 5 } else { 6 }).into_bytes();
        for y in 0..h {
            for x in 0..w {
                let noise = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(2_246_822_519)) >> 26) as u8;
                let flat = x < w / 3 && y < h / 2;
                for c in 0..channels {
                    let edge = if (x / 13 + y / 7 + c) % 3 == 0 { 60 } else { 0 };
                    out.push(if flat {
                        200
                    } else {
                        (x * 255 / w) as u8 / 2 + noise + edge
                    });
                }
            }
        }
        out
    }

    /// `cjpeg` with `args` over a generated image; `None` (having said SKIPPED) without cjpeg.
    fn cjpeg(args: &[&str], w: u32, h: u32, grey: bool) -> Option<Vec<u8>> {
        let child = Command::new("cjpeg")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            skip("cjpeg (libjpeg-turbo-progs)");
            return None;
        };
        let input = netpbm(w, h, grey);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "cjpeg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.stdout)
    }

    /// Progressive variants, with whether the file is grey and the luma sampling factors: 4:2:0,
    /// 4:4:4, 4:2:2, greyscale, restart intervals in MCU rows and in blocks (which do not line
    /// up with the rows of one-component scans).
    const VARIANTS: &[(&[&str], bool, (u64, u64))] = &[
        (&["-progressive"], false, (2, 2)),
        (&["-progressive", "-sample", "1x1"], false, (1, 1)),
        (
            &["-progressive", "-sample", "2x1", "-restart", "1"],
            false,
            (2, 1),
        ),
        (&["-progressive", "-restart", "5B"], false, (2, 2)),
        (&["-progressive", "-grayscale"], true, (1, 1)),
        (
            &["-progressive", "-grayscale", "-restart", "3B", "-quality", "98"],
            true,
            (1, 1),
        ),
    ];

    const SIZES: &[(u32, u32)] = &[(1, 1), (17, 9), (64, 48), (203, 131)];

    /// The blocks libjpeg's default progression codes (jcparam.c, jpeg_simple_progression):
    /// colour: DC first and DC refinement over the MCUs, then AC scans of Y 1-5, Cr, Cb, Y 6-63,
    /// Y refined twice, Cr and Cb refined once; grey: 2 DC and 4 AC scans of the one component.
    fn default_progression_blocks(w: u32, h: u32, grey: bool, (hs, vs): (u64, u64)) -> u64 {
        let (w, h) = (w as u64, h as u64);
        let own = |ch: u64, cv: u64| (w * ch).div_ceil(8 * hs) * (h * cv).div_ceil(8 * vs);
        if grey {
            return 6 * own(1, 1);
        }
        let mcu_blocks = w.div_ceil(8 * hs) * h.div_ceil(8 * vs) * (hs * vs + 2);
        2 * mcu_blocks + 4 * own(hs, vs) + 4 * own(1, 1)
    }

    /// Every variant at every size: (name, file, blocks its scans code).
    fn files() -> Vec<(String, Vec<u8>, u64)> {
        let mut out = Vec::new();
        for &(args, grey, sampling) in VARIANTS {
            for &(w, h) in SIZES {
                let Some(jpeg) = cjpeg(args, w, h, grey) else {
                    return Vec::new();
                };
                assert!(jpeg::layout(&jpeg).segments.iter().any(|s| s.marker == 0xC2));
                let blocks = default_progression_blocks(w, h, grey, sampling);
                out.push((format!("{args:?} {w}x{h}"), jpeg, blocks));
            }
        }
        out
    }

    /// The corpus files whose MANIFEST notes say progressive, but the truncated one.
    fn corpus_files() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
        let Ok(manifest) = std::fs::read_to_string(dir.join("MANIFEST.tsv")) else {
            skip("../shared/corpus");
            return Vec::new();
        };
        let files: Vec<_> = manifest
            .lines()
            .filter(|l| l.contains("; progressive") && !l.contains("truncated"))
            .map(|l| {
                let name = l.split('\t').next().unwrap().to_string();
                let bytes = std::fs::read(dir.join(&name)).unwrap();
                (name, bytes)
            })
            .collect();
        assert_eq!(files.len(), 3, "the corpus holds 3 whole progressive JPEGs");
        files
    }

    /// Offsets where a scan's data (or a restart interval's) ends and a marker begins.
    fn data_ends(jpeg: &[u8]) -> Vec<usize> {
        let layout = jpeg::layout(jpeg);
        let mut ends = Vec::new();
        let mut in_scan = false;
        for seg in &layout.segments {
            if in_scan {
                ends.push(seg.offset);
            }
            in_scan = seg.marker == 0xDA;
        }
        ends.push(layout.end.unwrap() - 2);
        let first = layout.segments.iter().find(|s| s.marker == 0xDA).unwrap().offset;
        let restarts =
            (first..jpeg.len() - 1).filter(|&i| jpeg[i] == 0xFF && (0xD0..=0xD7).contains(&jpeg[i + 1]));
        ends.extend(restarts);
        ends.sort();
        ends
    }

    /// Cut at every `step`-th byte of the data and at every scan's end, with an end marker
    /// appended: never complete.
    fn assert_cuts_are_incomplete(name: &str, jpeg: &[u8], step: usize) {
        let layout = jpeg::layout(jpeg);
        let first = layout.segments.iter().find(|s| s.marker == 0xDA).unwrap();
        let data_start = first.end();
        let cuts = (data_start..jpeg.len() - 2).step_by(step).chain(data_ends(jpeg));
        for cut in cuts.filter(|&c| c < jpeg.len() - 2) {
            let cut_file = [&jpeg[..cut], &[0xFF, 0xD9][..]].concat();
            let scan = check(&cut_file, &jpeg::layout(&cut_file))
                .unwrap_or_else(|| panic!("{name} cut at {cut}: not walked"));
            assert!(
                scan.found < scan.expected,
                "{name} cut at {cut} looks complete: {scan:?}"
            );
            assert!(!scan.complete());
        }
    }

    /// Bytes planted before each marker that follows scan data (one place at a time, then all at
    /// once) are reported as exactly those ranges; strip drops them and nothing else: the result
    /// has no unused bytes and decodes (zune-jpeg) to the original's pixels.
    fn assert_planted_bytes_are_found_and_stripped(name: &str, jpeg: &[u8]) {
        const PLANTED: &[u8] = b"SECRETSERIAL42";
        let limits = DecodeLimits { max_pixels: u64::MAX };
        let original = codec::decode(jpeg, Format::Jpeg, limits).unwrap();
        let ends = data_ends(jpeg);
        let mut plans: Vec<Vec<usize>> = ends.iter().map(|&e| vec![e]).collect();
        plans.push(ends.clone());
        for plan in plans {
            let (mut hidden, mut want, mut at) = (Vec::new(), Vec::new(), 0);
            for &end in &plan {
                hidden.extend_from_slice(&jpeg[at..end]);
                want.push(hidden.len()..hidden.len() + PLANTED.len());
                hidden.extend_from_slice(PLANTED);
                at = end;
            }
            hidden.extend_from_slice(&jpeg[at..]);
            let scan = check(&hidden, &jpeg::layout(&hidden)).unwrap();
            assert!(scan.complete(), "{name} planted at {plan:?}: {scan:?}");
            assert_eq!(scan.unused, want, "{name} planted at {plan:?}");

            let stripped = crate::strip::strip(&hidden, &Default::default()).unwrap();
            let survives = stripped.windows(PLANTED.len()).any(|w| w == PLANTED);
            assert!(!survives, "{name}: planted bytes at {plan:?} survive strip");
            let scan = check(&stripped, &jpeg::layout(&stripped)).unwrap();
            assert!(
                scan.complete() && scan.unused.is_empty(),
                "{name} stripped: {scan:?}"
            );
            let decoded = codec::decode(&stripped, Format::Jpeg, limits).unwrap();
            assert!(
                decoded.pixels == original.pixels,
                "{name}: stripped file decodes differently"
            );
        }
    }

    #[test]
    fn whole_progressive_files_are_complete_with_no_unused_bytes() {
        for (name, jpeg, blocks) in files() {
            let scan = check(&jpeg, &jpeg::layout(&jpeg)).unwrap_or_else(|| panic!("{name}: not walked"));
            assert!(scan.complete() && scan.unused.is_empty(), "{name}: {scan:?}");
            assert_eq!(scan.expected, blocks, "{name}: every block of every scan");
        }
        for (name, jpeg) in corpus_files() {
            let scan = check(&jpeg, &jpeg::layout(&jpeg)).unwrap_or_else(|| panic!("{name}: not walked"));
            assert!(scan.complete() && scan.unused.is_empty(), "{name}: {scan:?}");
        }
    }

    #[test]
    fn progressive_files_cut_anywhere_in_the_data_are_incomplete() {
        for (name, jpeg, _) in files() {
            // Every byte of small files, a prime step in larger ones.
            assert_cuts_are_incomplete(&name, &jpeg, (jpeg.len() / 500).max(1) | 1);
        }
        for (name, jpeg) in corpus_files() {
            assert_cuts_are_incomplete(&name, &jpeg, 997);
        }
    }

    #[test]
    fn bytes_planted_after_a_scans_data_are_found_exactly_and_stripped() {
        for (name, jpeg, _) in files() {
            assert_planted_bytes_are_found_and_stripped(&name, &jpeg);
        }
        for (name, jpeg) in corpus_files() {
            assert_planted_bytes_are_found_and_stripped(&name, &jpeg);
        }
    }

    /// The corpus's truncated progressive file lacks only the end marker's second byte: all its
    /// data is there, and the lone 0xFF is a marker cut short, not a hidden byte.
    #[test]
    fn a_progressive_file_cut_inside_its_end_marker_has_all_its_data() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/truncated_jpeg.jpg");
        let Ok(jpeg) = std::fs::read(path) else {
            return skip("../shared/corpus");
        };
        assert_eq!(jpeg.last(), Some(&0xFF));
        let scan = check(&jpeg, &jpeg::layout(&jpeg)).unwrap();
        assert!(scan.complete() && scan.unused.is_empty(), "{scan:?}");
        assert_cuts_are_incomplete("truncated_jpeg.jpg", &[&jpeg[..], &[0xD9]].concat(), 101);
    }

    /// `cjpeg -scans` with a scan script (libjpeg's wizard.txt syntax: `components: Ss Se Ah Al;`).
    fn cjpeg_script(script: &str, w: u32, h: u32) -> Option<Vec<u8>> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(script.as_bytes()).unwrap();
        cjpeg(&["-scans", file.path().to_str().unwrap()], w, h, false)
    }

    /// A sequential file in two scans (Y alone, then Cb and Cr interleaved; 4:2:0), and a
    /// progressive one beyond libjpeg's default: one-component DC scans, DC refined twice, an AC
    /// band refined three times. With the blocks each codes.
    const SCRIPTS: &[(&str, &str)] = &[
        ("sequential, Y then CbCr", "0;\n1 2;\n"),
        (
            "progressive, deep successive approximation",
            "0: 0 0 0 2;\n1: 0 0 0 0;\n2: 0 0 0 0;\n0: 1 9 0 3;\n0: 10 63 0 1;\n0: 0 0 2 1;\n\
             0: 1 9 3 2;\n0: 1 9 2 1;\n0: 0 0 1 0;\n0: 1 63 1 0;\n1: 1 63 0 0;\n2: 1 63 0 0;\n",
        ),
    ];

    fn script_blocks(name: &str, w: u32, h: u32) -> u64 {
        let (w, h) = (w as u64, h as u64);
        let luma = w.div_ceil(8) * h.div_ceil(8);
        let chroma = w.div_ceil(16) * h.div_ceil(16);
        if name.starts_with("sequential") {
            luma + 2 * chroma // the CbCr scan's MCU is one Cb and one Cr block
        } else {
            8 * luma + 4 * chroma
        }
    }

    #[test]
    fn scan_scripts_sequential_in_several_scans_and_deep_progressions() {
        for &(name, script) in SCRIPTS {
            for &(w, h) in SIZES {
                let Some(jpeg) = cjpeg_script(script, w, h) else {
                    return;
                };
                let name = format!("{name} {w}x{h}");
                let scan = check(&jpeg, &jpeg::layout(&jpeg)).unwrap_or_else(|| panic!("{name}: not walked"));
                assert!(scan.complete() && scan.unused.is_empty(), "{name}: {scan:?}");
                assert_eq!(scan.expected, script_blocks(&name, w, h), "{name}");
                assert_cuts_are_incomplete(&name, &jpeg, (jpeg.len() / 300).max(1) | 1);
                assert_planted_bytes_are_found_and_stripped(&name, &jpeg);
            }
        }
    }

    /// libjpeg accepts a progression that never sends some coefficient's last bits (the
    /// standard does not forbid it; no encoder in use writes one). Its scans are all whole, but
    /// the file cannot be told from one cut between two scans, so it counts as incomplete: one
    /// missing scan of the unfinished component.
    #[test]
    fn a_progression_that_stops_before_the_last_bit_is_incomplete() {
        let script = "0 1 2: 0 0 0 0;\n0: 1 63 0 1;\n1: 1 63 0 0;\n2: 1 63 0 0;\n";
        let Some(jpeg) = cjpeg_script(script, 64, 48) else {
            return;
        };
        let scan = check(&jpeg, &jpeg::layout(&jpeg)).unwrap();
        let (luma, chroma) = (8 * 6, 4 * 3);
        assert_eq!(scan.found, (luma + 2 * chroma) + luma + 2 * chroma);
        assert_eq!(scan.expected, scan.found + luma);
        assert!(!scan.complete() && scan.unused.is_empty());
    }

    #[test]
    fn arithmetic_coded_files_are_not_walked() {
        for args in [&["-arithmetic"][..], &["-arithmetic", "-progressive"]] {
            let Some(jpeg) = cjpeg(args, 40, 30, false) else {
                return;
            };
            assert_eq!(check(&jpeg, &jpeg::layout(&jpeg)), None, "{args:?}");
        }
    }
}
