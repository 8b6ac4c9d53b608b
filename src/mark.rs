//! The invisible ownership mark: a keyed, luminance-only spread-spectrum pattern that carries a
//! 32- or 64-bit owner ID, and the detector that reads it back from a re-posted copy.
//!
//! The design, its measurements and its limits are described in `docs/invisible-mark.md`:
//! - one keyed tile of 32x32 *chips*: 256 pilot chips (a known pseudo-noise pattern, used to
//!   find the tile again and to score the detection) and 768 data chips, 16 per coded bit
//!   (9 or 10 for a 64-bit ID);
//! - the message is the ID and its CRC-16, XOR-whitened with a keyed stream;
//! - the tile period is tied to the image width (12 tiles across), so a resize keeps the
//!   pattern in place relative to the picture; chips are rendered with bilinear interpolation,
//!   smooth enough to survive downscaling and JPEG;
//! - a perceptual mask scales the amplitude with the local contrast, floored so that flat
//!   areas move by at most one grey level; a global gain aims at 42 dB PSNR;
//! - the same change is added to R, G and B: chroma subsampling cannot touch it.
//!
//! Detection folds every tile of a (possibly resized and cropped) copy into one 128x128
//! accumulator at a trial period, finds the pilot by FFT cross-correlation (any crop shift),
//! and searches the period when the copy was cropped. An ID is reported only when the pilot
//! score reaches [`THRESHOLD`] *and* the CRC matches.

use std::fmt;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::error::{Error, Result};
use crate::pixels::Pixels;

/// Chips per tile side.
const CHIPS: usize = 32;
/// Tiles across the image width.
const TILES_ACROSS: f64 = 12.0;
/// Chips across the image width.
const CHIPS_ACROSS: f64 = CHIPS as f64 * TILES_ACROSS;
/// Images narrower than this (a 720 px preset portrait) get fewer, larger tiles: twelve
/// across would make chips under three pixels, too fine for a platform's JPEG.
pub(crate) const NARROW: u32 = 1080;
/// Tiles across a narrow image: its chips are as large as a 1080 px image's at 720 px.
const NARROW_TILES_ACROSS: f64 = 8.0;
/// The zoom at which the detector sees a whole narrow image (relative to twelve tiles).
const NARROW_ZOOM: f64 = TILES_ACROSS / NARROW_TILES_ACROSS;
/// Pilot chips in a tile; the rest carry data.
const PILOT_CHIPS: usize = 256;

/// Accumulator bins per chip side in the detector.
const BINS: usize = 4;
/// Accumulator side: one tile.
const ACC: usize = CHIPS * BINS;

/// Largest zoom searched: a crop keeping a third of the width (a 4:5 crop of a 2.4:1
/// panorama).
const MAX_ZOOM: f64 = 3.0;
/// Narrowest image that can carry the mark: chips of two pixels (in the narrow layout).
pub(crate) const MIN_WIDTH: u32 = 512;
/// Pilot score (z) from which a detection counts, when the CRC matches too.
pub const THRESHOLD: f64 = 7.0;
/// PSNR the embedder aims at; flat areas get less.
pub const TARGET_PSNR: f64 = 42.0;
/// Mask floor: in flat areas the amplitude is this fraction of the gain, and the gain is
/// capped at its inverse, so flat areas move by at most one grey level.
const FLAT: f32 = 0.125;
/// Below this fraction of the target amplitude the mark is reported as weak.
pub(crate) const WEAK_STRENGTH: f64 = 0.5;

/// A secret mark key: 32 random bytes. `Debug` shows only the fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

const KEY_HEADER: &str = "photoshield mark key v1";

impl Key {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Key {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Key(bytes)
    }

    /// A key from its 32 bytes (tests and tools; users get theirs from [`Key::generate`]).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The key file's text: a header line, then the key in hex.
    pub fn to_file_text(&self) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("{KEY_HEADER}\n{hex}\n")
    }

    /// Reads a key file's text.
    pub fn parse(text: &str) -> std::result::Result<Key, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_HEADER) {
            return Err(format!(
                "not a photoshield key file (the first line should be '{KEY_HEADER}')"
            ));
        }
        let hex = lines.next().ok_or("the key line is missing")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the key line should be 64 hexadecimal digits".into());
        }
        if lines.next().is_some() {
            return Err("unexpected text after the key line".into());
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(Key(bytes))
    }

    /// A public fingerprint of the key (16 hex digits), safe to print and to record next to
    /// the IDs it marked.
    pub fn fingerprint(&self) -> String {
        let hash = blake3::derive_key("photoshield mark v1 key fingerprint", &self.0);
        hash[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A keyed pseudo-random stream for one purpose.
    fn stream(&self, purpose: &str, extra: &[u8]) -> blake3::OutputReader {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(purpose.as_bytes());
        hasher.update(&[0]);
        hasher.update(extra);
        hasher.finalize_xof()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Key(fingerprint {})", self.fingerprint())
    }
}

/// The mark to embed: whose key, which ID, and whether a file that cannot carry it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The secret key the mark is made with; the same key detects it.
    pub key: Key,
    /// The owner ID the mark carries.
    pub id: MarkId,
    /// Fail the file when the mark cannot be embedded at full strength (too small, too flat);
    /// otherwise the rest of the protection is written with a note.
    pub required: bool,
}

/// The owner ID a mark carries: 32 bits (default) or 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkId {
    /// The ID; under 2^32 for a 32-bit ID.
    pub value: u64,
    /// 32 or 64.
    pub bits: u8,
}

impl MarkId {
    /// Parses a decimal number or `0x`-prefixed hex, for an ID of `bits` bits (32 or 64).
    pub fn parse(text: &str, bits: u8) -> std::result::Result<MarkId, String> {
        if bits != 32 && bits != 64 {
            return Err(format!("the ID size is 32 or 64 bits, not {bits}"));
        }
        let t = text.trim().replace('_', "");
        let value = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) if !hex.is_empty() => u128::from_str_radix(hex, 16),
            _ => t.parse::<u128>(),
        }
        .map_err(|_| format!("'{text}' is not a number (decimal, or hex with 0x)"))?;
        if bits == 32 && value > u32::MAX as u128 {
            return Err(format!("ID {text} does not fit in 32 bits; use --mark-bits 64"));
        }
        if value > u64::MAX as u128 {
            return Err(format!("ID {text} does not fit in 64 bits"));
        }
        Ok(MarkId {
            value: value as u64,
            bits,
        })
    }

    /// The ID as hex digits without prefix (8 or 16 of them).
    pub fn hex(&self) -> String {
        format!("{:0width$x}", self.value, width = self.bits as usize / 4)
    }

    fn coded_len(bits: u8) -> usize {
        bits as usize + 16
    }

    /// ID bits (most significant first) and the CRC-16 of the ID's big-endian bytes.
    fn message(&self) -> Vec<bool> {
        let bytes = &self.value.to_be_bytes()[8 - self.bits as usize / 8..];
        let crc = crc16(bytes);
        let mut m: Vec<bool> = (0..self.bits).rev().map(|i| self.value >> i & 1 == 1).collect();
        m.extend((0..16).rev().map(|i| crc >> i & 1 == 1));
        m
    }

    /// The ID of a de-whitened message, if its CRC matches.
    fn from_message(m: &[bool], bits: u8) -> Option<MarkId> {
        let value = m[..bits as usize].iter().fold(0u64, |v, &b| v << 1 | b as u64);
        let crc = m[bits as usize..].iter().fold(0u16, |v, &b| v << 1 | b as u16);
        let id = MarkId { value, bits };
        (crc16(&value.to_be_bytes()[8 - bits as usize / 8..]) == crc).then_some(id)
    }
}

impl fmt::Display for MarkId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "0x{}", self.hex())
    }
}

/// CRC-16/CCITT-FALSE.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                crc << 1 ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The keyed arrangement of a tile: each chip's pseudo-noise sign, which chips are pilots,
/// and the order in which data chips are dealt to coded bits.
#[derive(Clone)]
struct Layout {
    /// +1 or -1 per chip, row-major.
    pn: Vec<f32>,
    pilot: Vec<usize>,
    data: Vec<usize>,
}

impl Layout {
    fn new(key: &Key) -> Layout {
        let mut stream = key.stream("layout", &[]);
        let mut bytes = [0u8; CHIPS * CHIPS / 8];
        stream.fill(&mut bytes);
        let pn = (0..CHIPS * CHIPS)
            .map(|i| {
                if bytes[i / 8] >> (i % 8) & 1 == 1 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..CHIPS * CHIPS).collect();
        for i in (1..order.len()).rev() {
            let mut r = [0u8; 8];
            stream.fill(&mut r);
            let j = (u64::from_le_bytes(r) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let data = order.split_off(PILOT_CHIPS);
        Layout {
            pn,
            pilot: order,
            data,
        }
    }

    /// The whitening stream of a message of `bits`-bit ID.
    fn whitening(key: &Key, bits: u8) -> Vec<bool> {
        let n = MarkId::coded_len(bits);
        let mut bytes = vec![0u8; n.div_ceil(8)];
        key.stream("whitening", &[bits]).fill(&mut bytes);
        (0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect()
    }

    /// Chip values (+1/-1) of the tile carrying `id`.
    fn tile(&self, key: &Key, id: MarkId) -> Vec<f32> {
        let white = Layout::whitening(key, id.bits);
        let coded: Vec<bool> = id.message().iter().zip(&white).map(|(&m, &w)| m ^ w).collect();
        let mut tile = self.pn.clone();
        for (k, &chip) in self.data.iter().enumerate() {
            if !coded[k % coded.len()] {
                tile[chip] = -tile[chip];
            }
        }
        tile
    }
}

/// Pixels per chip for an image `width` wide, and a check that it can carry the mark.
fn chip_size(width: u32, height: u32) -> Result<f64> {
    let tiles = if width < NARROW {
        NARROW_TILES_ACROSS
    } else {
        TILES_ACROSS
    };
    let chip = width as f64 / (CHIPS as f64 * tiles);
    if width < MIN_WIDTH || (height as f64) < chip * CHIPS as f64 {
        return Err(Error::Mark(format!(
            "{width}x{height} is too small to carry the mark: it needs at least {MIN_WIDTH} px of width and one tile ({}) of height",
            if width < NARROW { "an eighth of the width" } else { "a twelfth of the width" }
        )));
    }
    Ok(chip)
}

/// What embedding did to one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Embedded {
    /// Root-mean-square change of luminance, in grey levels (before rounding).
    pub rms: f64,
    /// `rms` as a fraction of the amplitude that [`TARGET_PSNR`] allows (1 = full strength;
    /// flat or very dark images get less, capped by the one-grey-level rule).
    pub strength: f64,
}

impl Embedded {
    /// Whether the mark went in at under half strength (flat or dark images): detection may
    /// miss it after the image is re-encoded or resized.
    pub fn is_weak(&self) -> bool {
        self.strength < WEAK_STRENGTH
    }
}

/// Luminance (0-255) of an 8-bit RGB pixel, in integers: 0.299 R + 0.587 G + 0.114 B.
#[inline(always)]
fn luma(r: u8, g: u8, b: u8) -> u32 {
    (77 * r as u32 + 150 * g as u32 + 29 * b as u32 + 128) >> 8
}

/// The perceptual mask on a grid of small blocks: the amplitude each part of the image can
/// hide, as a fraction of the gain.
struct Mask {
    block: usize,
    cols: usize,
    rows: usize,
    values: Vec<f32>,
    /// Mean of the squared mask over the image.
    mean_square: f64,
}

impl Mask {
    fn measure(pixels: &Pixels, chip: f64) -> Mask {
        let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
        // An even block size, so that sampling every other row and column (a quarter of the
        // pixels: plenty for a local deviation) hits every block alike.
        let block = (2.0 * (chip / 3.0).floor()).clamp(2.0, 10.0) as usize;

        let (cols, rows) = (w.div_ceil(block), h.div_ceil(block));
        let mut sum = vec![0u64; cols * rows];
        let mut sq = vec![0u64; cols * rows];
        let mut count = vec![0u64; cols * rows];
        // Column sums over the sampled rows of one row of blocks, then folded into blocks.
        let half = block / 2;
        let mut col_sum = vec![0u32; w.div_ceil(2)];
        let mut col_sq = vec![0u32; w.div_ceil(2)];
        let mut rows_in = 0u64;
        for (y, row) in pixels.data.chunks_exact(w * ch).enumerate().step_by(2) {
            match ch {
                3 => sample_row::<3>(row, &mut col_sum, &mut col_sq),
                _ => sample_row::<4>(row, &mut col_sum, &mut col_sq),
            }
            rows_in += 1;
            if (y + 2) % block == 0 || y + 2 >= h {
                let base = (y / block) * cols;
                for (bx, (s, q)) in col_sum.chunks(half).zip(col_sq.chunks(half)).enumerate() {
                    sum[base + bx] = s.iter().map(|&v| v as u64).sum();
                    sq[base + bx] = q.iter().map(|&v| v as u64).sum();
                    count[base + bx] = s.len() as u64 * rows_in;
                }
                col_sum.fill(0);
                col_sq.fill(0);
                rows_in = 0;
            }
        }
        // Summed-area tables over the block grid, then mean and deviation in a window of
        // about two chips around each block.
        let sat = |v: &[u64]| {
            let mut t = vec![0u64; (cols + 1) * (rows + 1)];
            for r in 0..rows {
                let mut run = 0;
                for c in 0..cols {
                    run += v[r * cols + c];
                    t[(r + 1) * (cols + 1) + c + 1] = t[r * (cols + 1) + c + 1] + run;
                }
            }
            t
        };
        let (ts, tq, tn) = (sat(&sum), sat(&sq), sat(&count));
        let radius = ((chip / block as f64).round() as usize).max(1);
        let rect = |t: &[u64], c0: usize, r0: usize, c1: usize, r1: usize| {
            t[r1 * (cols + 1) + c1] + t[r0 * (cols + 1) + c0]
                - t[r0 * (cols + 1) + c1]
                - t[r1 * (cols + 1) + c0]
        };
        let mut values = vec![0f32; cols * rows];
        let mut total = 0f64;
        for r in 0..rows {
            let (r0, r1) = (r.saturating_sub(radius), (r + radius + 1).min(rows));
            for c in 0..cols {
                let (c0, c1) = (c.saturating_sub(radius), (c + radius + 1).min(cols));
                let n = rect(&tn, c0, r0, c1, r1).max(1) as f64;
                let mean = rect(&ts, c0, r0, c1, r1) as f64 / n;
                let var = (rect(&tq, c0, r0, c1, r1) as f64 / n - mean * mean).max(0.0);
                let texture = (var.sqrt() / 12.0).clamp(FLAT as f64, 1.0);
                // Near black and white the change would clip on one side: less there.
                let headroom = (mean.min(255.0 - mean) / 24.0).clamp(0.25, 1.0);
                let m = (texture * headroom) as f32;
                values[r * cols + c] = m;
                total += (m * m) as f64;
            }
        }
        Mask {
            block,
            cols,
            rows,
            values,
            mean_square: total / (cols * rows) as f64,
        }
    }
}

/// Adds the luminance of every other pixel of `row` (and its square) to the column sums.
fn sample_row<const N: usize>(row: &[u8], sum: &mut [u32], sq: &mut [u32]) {
    let pairs = row.chunks_exact(2 * N);
    let last = pairs.remainder();
    for ((s, q), p) in sum.iter_mut().zip(sq.iter_mut()).zip(pairs) {
        let l = luma(p[0], p[1], p[2]);
        *s += l;
        *q += l * l;
    }
    if !last.is_empty() {
        let l = luma(last[0], last[1], last[2]);
        sum[sum.len() - 1] += l;
        sq[sq.len() - 1] += l * l;
    }
}

/// Mean square of a bilinearly interpolated field of independent ±1 chips: (2/3)².
const PATTERN_MEAN_SQUARE: f64 = 4.0 / 9.0;

/// Embeds the mark carrying `id` into `pixels` (RGB or RGBA; alpha untouched).
pub fn embed(pixels: &mut Pixels, key: &Key, id: MarkId) -> Result<Embedded> {
    let chip = chip_size(pixels.width, pixels.height)?;
    let layout = Layout::new(key);
    let tile = layout.tile(key, id);
    let mask = Mask::measure(pixels, chip);

    // The gain that reaches the target PSNR on this image's mask, capped so that flat areas
    // (mask at its floor) move by at most one grey level.
    let target_rms = 255.0 / 10f64.powf(TARGET_PSNR / 20.0);
    let expected = (mask.mean_square * PATTERN_MEAN_SQUARE).sqrt();
    let gain = (target_rms / expected.max(1e-9)).min(1.0 / FLAT as f64) as f32;
    let rms = gain as f64 * expected;

    let (w, ch) = (pixels.width as usize, pixels.channels());
    // Along a row the pattern is linear between chip centres: runs of columns share their two
    // chips, and each column has its weight of the right-hand one.
    let chip_cols = (w as f64 / chip).ceil() as usize + 2;
    let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(chip_cols);
    let mut weight = Vec::with_capacity(w);
    for x in 0..w {
        let u = x as f64 / chip;
        let ix = u as usize;
        weight.push(u.fract() as f32);
        match runs.last_mut() {
            Some((_, end, i)) if *i == ix => *end = x + 1,
            _ => runs.push((x, x + 1, ix)),
        }
    }
    let mut pattern_row = vec![0f32; chip_cols];
    let mut mask_row = vec![0f32; mask.cols];
    let mut amp = vec![0f32; w];
    let mut delta = vec![0i8; w * ch];

    for (y, row) in pixels.data.chunks_exact_mut(w * ch).enumerate() {
        // This row of the pattern at every chip column (with the gain), and of the mask at
        // every block (between block centres vertically; constant across a block).
        let v = y as f64 / chip;
        let (cy, fy) = (v as usize, v.fract() as f32);
        let (t0, t1) = (
            &tile[(cy % CHIPS) * CHIPS..][..CHIPS],
            &tile[((cy + 1) % CHIPS) * CHIPS..][..CHIPS],
        );
        for (i, p) in pattern_row.iter_mut().enumerate() {
            let (a, b) = (t0[i % CHIPS], t1[i % CHIPS]);
            *p = gain * (a + (b - a) * fy);
        }
        let by = ((y as f32 + 0.5) / mask.block as f32 - 0.5).max(0.0);
        let r0 = (by as usize).min(mask.rows - 1);
        let r1 = (r0 + 1).min(mask.rows - 1);
        let wy = by.fract();
        let (m0, m1) = (
            &mask.values[r0 * mask.cols..][..mask.cols],
            &mask.values[r1 * mask.cols..][..mask.cols],
        );
        for ((m, &a), &b) in mask_row.iter_mut().zip(m0).zip(m1) {
            *m = a + (b - a) * wy;
        }

        for &(start, end, ix) in &runs {
            let (p0, p1) = (pattern_row[ix], pattern_row[ix + 1]);
            for (a, &fx) in amp[start..end].iter_mut().zip(&weight[start..end]) {
                *a = p0 + (p1 - p0) * fx;
            }
        }
        for (a, &m) in amp.chunks_mut(mask.block).zip(&mask_row) {
            a.iter_mut().for_each(|a| *a *= m);
        }
        match ch {
            3 => add_luma::<3>(row, &amp, &mut delta),
            _ => add_luma::<4>(row, &amp, &mut delta),
        }
    }
    Ok(Embedded {
        rms,
        strength: rms / target_rms,
    })
}

/// Rounds each pixel's change to whole levels and adds it to its R, G and B (alpha, if any,
/// untouched). `delta` is scratch space of the row's length in bytes.
fn add_luma<const N: usize>(row: &mut [u8], amp: &[f32], delta: &mut [i8]) {
    // Round to nearest without a libm call: adding 1.5 x 2^23 leaves the integer in the low
    // mantissa bits. |amp| <= 8.
    const MAGIC: f32 = 12_582_912.0;
    for (d, &a) in delta.chunks_exact_mut(N).zip(amp) {
        let q = ((a + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i8;
        d[0] = q;
        d[1] = q;
        d[2] = q;
    }
    for (c, &d) in row.iter_mut().zip(delta.iter()) {
        *c = (*c as i16 + d as i16).clamp(0, 255) as u8;
    }
}

/// What the detector found in one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// The ID, only when the pilot score reached [`THRESHOLD`] and the CRC matched.
    pub id: Option<MarkId>,
    /// The pilot's correlation peak in standard deviations of the correlation surface.
    pub score: f64,
    /// Whether the decoded bits passed the CRC (for 32- or 64-bit IDs).
    pub crc_ok: bool,
    /// The copy's scale relative to a whole-width copy (above 1 when it was cropped).
    pub zoom: f64,
}

impl Detection {
    /// Whether a mark was found and its ID read with a matching CRC.
    pub fn verified(&self) -> bool {
        self.id.is_some()
    }
}

/// A grey plane at detection resolution, filtered so that only the mark's band remains and
/// its local level is normalised (brightness and contrast changes do not matter).
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Plane {
    /// Luminance box-averaged by the largest integer factor keeping the width at least 1024.
    fn of(pixels: &Pixels) -> Plane {
        let (w0, h0, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
        let k = (w0 / 1024).max(1);
        let (w, h) = (w0 / k, h0 / k);
        let mut v = vec![0f32; w * h];
        let mut acc = vec![0u32; w];
        for y in 0..h {
            acc.iter_mut().for_each(|a| *a = 0);
            for row in pixels.data.chunks_exact(w0 * ch).skip(y * k).take(k) {
                for (a, block) in acc.iter_mut().zip(row.chunks_exact(k * ch)) {
                    *a += block
                        .chunks_exact(ch)
                        .map(|p| luma(p[0], p[1], p[2]))
                        .sum::<u32>();
                }
            }
            let scale = 1.0 / (k * k) as f32;
            for (o, &a) in v[y * w..][..w].iter_mut().zip(&acc) {
                *o = a as f32 * scale;
            }
        }
        let mut plane = Plane { w, h, v };
        plane.whiten();
        plane
    }

    /// High-pass (minus a Gaussian of sigma 1.5), then divide by the local mean magnitude.
    fn whiten(&mut self) {
        let low = blur(&self.v, self.w, self.h, &gaussian(1.5));
        for (v, l) in self.v.iter_mut().zip(&low) {
            *v -= l;
        }
        let mag: Vec<f32> = self.v.iter().map(|v| v.abs()).collect();
        let level = blur(&mag, self.w, self.h, &gaussian(4.0));
        for (v, l) in self.v.iter_mut().zip(&level) {
            *v = (*v / (l + 0.5)).clamp(-4.0, 4.0);
        }
    }
}

fn gaussian(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil() as i32;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable convolution with edge clamping.
fn blur(src: &[f32], w: usize, h: usize, kernel: &[f32]) -> Vec<f32> {
    let r = kernel.len() / 2;
    let mut tmp = vec![0f32; w * h];
    let mut line = vec![0f32; w.max(h) + 2 * r];
    for y in 0..h {
        let row = &src[y * w..][..w];
        line[..r].fill(row[0]);
        line[r..r + w].copy_from_slice(row);
        line[r + w..r + w + r].fill(row[w - 1]);
        for (x, o) in tmp[y * w..][..w].iter_mut().enumerate() {
            *o = kernel.iter().zip(&line[x..]).map(|(k, v)| k * v).sum();
        }
    }
    let mut out = vec![0f32; w * h];
    for (ky, &k) in kernel.iter().enumerate() {
        for y in 0..h {
            let sy = (y + ky).saturating_sub(r).min(h - 1);
            for (o, s) in out[y * w..][..w].iter_mut().zip(&tmp[sy * w..][..w]) {
                *o += k * s;
            }
        }
    }
    out
}

/// A rectangle of the plane: x0, y0, x1, y1.
type Window = (usize, usize, usize, usize);

/// Reads marks made with one key. Build it once and reuse it for many images.
pub struct Detector {
    key: Key,
    layout: Layout,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    /// Conjugated spectrum of the pilot's rendering in the accumulator.
    pilot_spectrum: Vec<Complex<f32>>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Detector").field("key", &self.key).finish()
    }
}

/// Weight of accumulator bin offset `i` (in bins) from a chip's centre: a bilinear hat.
fn hat(i: isize) -> f32 {
    (BINS as f32 - i.unsigned_abs() as f32).max(0.0) / BINS as f32
}

impl Detector {
    /// Prepares the detector for `key` (the pilot's spectrum and the FFT plans).
    pub fn new(key: &Key) -> Detector {
        let layout = Layout::new(key);
        let mut planner = FftPlanner::new();
        let forward = planner.plan_fft_forward(ACC);
        let inverse = planner.plan_fft_inverse(ACC);
        // The pilot as the accumulator sees it: pilot chips at their centres, bilinear hats.
        let mut template = vec![Complex::new(0f32, 0.0); ACC * ACC];
        for &c in &layout.pilot {
            let (cx, cy) = ((c % CHIPS * BINS) as isize, (c / CHIPS * BINS) as isize);
            for j in -(BINS as isize) + 1..BINS as isize {
                for i in -(BINS as isize) + 1..BINS as isize {
                    let (x, y) = (wrap(cx + i), wrap(cy + j));
                    template[y * ACC + x].re += layout.pn[c] * hat(i) * hat(j);
                }
            }
        }
        fft2(&mut template, &forward);
        template.iter_mut().for_each(|c| *c = c.conj());
        Detector {
            key: key.clone(),
            layout,
            forward,
            inverse,
            pilot_spectrum: template,
        }
    }

    /// Looks for a mark in `pixels` (upright, any size).
    pub fn detect(&self, pixels: &Pixels) -> Detection {
        let none = Detection {
            id: None,
            score: 0.0,
            crc_ok: false,
            zoom: 1.0,
        };
        if pixels.width < 64 || pixels.height < 64 {
            return none;
        }
        let plane = Plane::of(pixels);
        let whole = (0, 0, plane.w, plane.h);
        // Chip size of a whole-width copy; a crop enlarges it by the zoom.
        let nominal = plane.w as f64 / CHIPS_ACROSS;
        // The best of nine zooms around `centre`, `step` apart, folding `window`.
        let around = |centre: f64, step: f64, window: Window| {
            (-4..=4)
                .map(|i| {
                    let zoom = centre * (1.0 + step * i as f64);
                    self.locate(&plane, window, nominal * zoom, zoom)
                })
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .expect("nine candidates")
        };
        // A whole-width copy: the period is known to within rounding, for either layout.
        let mut best = around(1.0, 0.001, whole);
        if best.score < THRESHOLD {
            let narrow = around(NARROW_ZOOM, 0.001, whole);
            if narrow.score > best.score {
                best = narrow;
            }
        }
        if best.score < THRESHOLD {
            // A crop: scan the zoom on a window of about four tiles, 0.8% apart (a fold of
            // four tiles tolerates 0.4%), up to a crop keeping a third of the width.
            let mut coarse = Vec::new();
            let mut zoom = 0.97f64;
            while zoom < MAX_ZOOM {
                let side = (4.0 * CHIPS as f64 * nominal * zoom) as usize;
                let (ww, wh) = (side.min(plane.w), side.min(plane.h));
                let window = (
                    (plane.w - ww) / 2,
                    (plane.h - wh) / 2,
                    (plane.w + ww) / 2,
                    (plane.h + wh) / 2,
                );
                coarse.push(self.locate(&plane, window, nominal * zoom, zoom));
                zoom *= 1.008;
            }
            coarse.sort_by(|a, b| b.score.total_cmp(&a.score));
            for c in coarse.iter().take(3) {
                let refined = around(c.zoom, 0.001, whole);
                if refined.score > best.score {
                    best = refined;
                }
            }
        }
        // Last, a quarter of the step: a whole-image fold drifts by 0.4 chip per 0.1%.
        let finest = around(best.zoom, 0.00025, whole);
        if finest.score > best.score {
            best = finest;
        }
        let (id, crc_ok) = self.decode(&best.acc, best.offset);
        Detection {
            id: id.filter(|_| best.score >= THRESHOLD),
            score: best.score,
            crc_ok,
            zoom: best.zoom,
        }
    }

    /// Folds the window at a trial chip size and finds the pilot in the fold.
    fn locate(&self, plane: &Plane, window: Window, chip: f64, zoom: f64) -> Candidate {
        let acc = fold(plane, window, chip);
        let mut spectrum: Vec<Complex<f32>> = acc.iter().map(|&v| Complex::new(v, 0.0)).collect();
        fft2(&mut spectrum, &self.forward);
        for (s, t) in spectrum.iter_mut().zip(&self.pilot_spectrum) {
            *s *= t;
        }
        fft2(&mut spectrum, &self.inverse);
        let n = spectrum.len() as f64;
        let (mut sum, mut sq, mut peak, mut at) = (0f64, 0f64, f64::MIN, 0);
        for (i, c) in spectrum.iter().enumerate() {
            let v = c.re as f64;
            sum += v;
            sq += v * v;
            if v > peak {
                peak = v;
                at = i;
            }
        }
        let mean = sum / n;
        let sd = (sq / n - mean * mean).max(1e-30).sqrt();
        Candidate {
            score: (peak - mean) / sd,
            offset: (at % ACC, at / ACC),
            zoom,
            acc,
        }
    }

    /// Despreads the data chips at the pilot's offset and decodes a 32- and a 64-bit ID.
    ///
    /// A copy whose pilot is found clearly (score 7-10) still has a few percent of its coded
    /// bits wrong, enough for the CRC to reject most reads (measured: most of the misses after
    /// WebP q80 and 1080 px + q75 were CRC failures above the score threshold). So the decoder
    /// also tries flipping the least reliable bits (Chase decoding, [`CHASE_BITS`] of them,
    /// the likeliest combinations first) and keeps the first message whose CRC matches. When
    /// both sizes yield one, the size whose codeword agrees better with the chips wins: a
    /// 64-bit mark read as a 32-bit one agrees only by chance.
    fn decode(&self, acc: &[f32], (dx, dy): (usize, usize)) -> (Option<MarkId>, bool) {
        let mut chip_value = vec![0f32; CHIPS * CHIPS];
        for &c in &self.layout.data {
            let (cx, cy) = ((c % CHIPS * BINS + dx) as isize, (c / CHIPS * BINS + dy) as isize);
            let mut v = 0f32;
            for j in -(BINS as isize) + 1..BINS as isize {
                let row = &acc[wrap(cy + j) * ACC..][..ACC];
                for i in -(BINS as isize) + 1..BINS as isize {
                    v += row[wrap(cx + i)] * hat(i) * hat(j);
                }
            }
            chip_value[c] = v * self.layout.pn[c];
        }
        let mut best: Option<(f32, MarkId)> = None;
        for bits in [32u8, 64] {
            let n = MarkId::coded_len(bits);
            let mut soft = vec![0f32; n];
            for (k, &c) in self.layout.data.iter().enumerate() {
                soft[k % n] += chip_value[c];
            }
            let white = Layout::whitening(&self.key, bits);
            if let Some((agreement, id)) = chase(&soft, &white, bits) {
                if best.is_none_or(|(a, _)| agreement > a) {
                    best = Some((agreement, id));
                }
            }
        }
        match best {
            Some((_, id)) => (Some(id), true),
            None => (None, false),
        }
    }
}

/// Least reliable coded bits the decoder tries flipping: 2^5 = 32 CRC checks per ID size, so
/// a random message passes with a probability of 64 / 65536 per detection; the pilot score
/// threshold stands in front of that.
const CHASE_BITS: usize = 5;

/// Chase decoding of soft bits: the hard decision, then the same with every combination of
/// the [`CHASE_BITS`] least reliable bits flipped, cheapest (smallest flipped magnitude) first.
/// Returns the first ID whose CRC matches and its codeword's agreement with the soft bits.
fn chase(soft: &[f32], white: &[bool], bits: u8) -> Option<(f32, MarkId)> {
    let hard: Vec<bool> = soft.iter().zip(white).map(|(&s, &w)| (s > 0.0) ^ w).collect();
    let total: f32 = soft.iter().map(|s| s.abs()).sum();
    let mut weakest: Vec<usize> = (0..soft.len()).collect();
    weakest.sort_by(|&a, &b| soft[a].abs().total_cmp(&soft[b].abs()));
    weakest.truncate(CHASE_BITS);
    let cost = |flips: u32| -> f32 {
        weakest
            .iter()
            .enumerate()
            .filter(|(i, _)| flips >> i & 1 == 1)
            .map(|(_, &b)| soft[b].abs())
            .sum()
    };
    let mut patterns: Vec<(f32, u32)> = (0..1u32 << CHASE_BITS).map(|f| (cost(f), f)).collect();
    patterns.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut message = hard.clone();
    for (flipped, flips) in patterns {
        message.copy_from_slice(&hard);
        for (i, &b) in weakest.iter().enumerate() {
            if flips >> i & 1 == 1 {
                message[b] = !message[b];
            }
        }
        if let Some(id) = MarkId::from_message(&message, bits) {
            return Some((total - 2.0 * flipped, id));
        }
    }
    None
}

struct Candidate {
    score: f64,
    offset: (usize, usize),
    zoom: f64,
    acc: Vec<f32>,
}

fn wrap(i: isize) -> usize {
    i.rem_euclid(ACC as isize) as usize
}

/// Every tile of the window, at a chip size of `chip` pixels, averaged into one tile of
/// `ACC` x `ACC` bins.
fn fold(plane: &Plane, (x0, y0, x1, y1): Window, chip: f64) -> Vec<f32> {
    let per_tile = 1.0 / (chip * CHIPS as f64);
    let bin = |p: usize| (((p as f64 * per_tile).fract() * ACC as f64) as usize).min(ACC - 1);
    let bins_x: Vec<usize> = (x0..x1).map(bin).collect();
    let mut col_count = [0u32; ACC];
    let mut row_count = [0u32; ACC];
    for &b in &bins_x {
        col_count[b] += 1;
    }
    let mut acc = vec![0f32; ACC * ACC];
    for y in y0..y1 {
        let by = bin(y);
        row_count[by] += 1;
        let dst = &mut acc[by * ACC..][..ACC];
        for (&bx, &v) in bins_x.iter().zip(&plane.v[y * plane.w + x0..y * plane.w + x1]) {
            dst[bx] += v;
        }
    }
    let mut total = 0f64;
    let mut filled = 0usize;
    for (by, row) in acc.chunks_exact_mut(ACC).enumerate() {
        for (bx, v) in row.iter_mut().enumerate() {
            let n = row_count[by] * col_count[bx];
            if n > 0 {
                *v /= n as f32;
                total += *v as f64;
                filled += 1;
            }
        }
    }
    let mean = (total / filled.max(1) as f64) as f32;
    for (by, row) in acc.chunks_exact_mut(ACC).enumerate() {
        for (bx, v) in row.iter_mut().enumerate() {
            *v = if row_count[by] * col_count[bx] > 0 {
                *v - mean
            } else {
                0.0
            };
        }
    }
    acc
}

fn transpose(data: &mut [Complex<f32>]) {
    for y in 0..ACC {
        for x in y + 1..ACC {
            data.swap(y * ACC + x, x * ACC + y);
        }
    }
}

/// In-place 2-D FFT of an `ACC` x `ACC` array (rows, then columns).
fn fft2(data: &mut [Complex<f32>], fft: &Arc<dyn Fft<f32>>) {
    fft.process(data);
    transpose(data);
    fft.process(data);
    transpose(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_decimal_and_hex_and_refuse_what_does_not_fit() {
        assert_eq!(MarkId::parse("123456", 32).unwrap().value, 123456);
        assert_eq!(MarkId::parse("0xDEADbeef", 32).unwrap().value, 0xdead_beef);
        assert!(MarkId::parse("0x1_0000_0000", 32)
            .unwrap_err()
            .contains("--mark-bits 64"));
        assert_eq!(MarkId::parse("0x1_0000_0000", 64).unwrap().value, 1 << 32);
        assert!(MarkId::parse("0x1_0000_0000_0000_0000", 64).is_err());
        assert!(MarkId::parse("-3", 32).is_err());
        assert!(MarkId::parse("12", 48).is_err());
        assert_eq!(MarkId::parse("7", 32).unwrap().hex(), "00000007");
    }

    #[test]
    fn messages_round_trip_and_the_crc_catches_a_flipped_bit() {
        for id in [
            MarkId::parse("0xa5a5f00d", 32).unwrap(),
            MarkId::parse("0x0123456789abcdef", 64).unwrap(),
        ] {
            let mut m = id.message();
            assert_eq!(MarkId::from_message(&m, id.bits), Some(id));
            for i in 0..m.len() {
                m[i] = !m[i];
                assert_eq!(MarkId::from_message(&m, id.bits), None, "bit {i}");
                m[i] = !m[i];
            }
        }
        // CRC-16/CCITT-FALSE check value.
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn chase_decoding_corrects_weak_wrong_bits_and_never_strong_ones() {
        let id = MarkId::parse("0x4a414e45", 32).unwrap();
        let white = Layout::whitening(&Key::from_bytes([3; 32]), 32);
        let coded: Vec<bool> = id.message().iter().zip(&white).map(|(&m, &w)| m ^ w).collect();
        let clean: Vec<f32> = coded.iter().map(|&b| if b { 10.0 } else { -10.0 }).collect();
        assert_eq!(chase(&clean, &white, 32).map(|(_, id)| id), Some(id));
        // Three wrong bits among the five least reliable: found.
        let mut soft = clean.clone();
        for (i, b) in [(3, 0.5), (17, 1.0), (40, 2.0), (8, 3.0), (29, 4.0)] {
            soft[i] = if [3, 17, 40].contains(&i) {
                -soft[i].signum() * b
            } else {
                soft[i].signum() * b
            };
        }
        assert_eq!(chase(&soft, &white, 32).map(|(_, id)| id), Some(id));
        // Two confidently wrong bits: no ID (the CRC still rejects it).
        let mut soft = clean.clone();
        soft[5] = -soft[5];
        soft[6] = -soft[6];
        assert_eq!(chase(&soft, &white, 32), None);
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_say_why() {
        let key = Key::from_bytes([7; 32]);
        assert_eq!(Key::parse(&key.to_file_text()).unwrap(), key);
        assert!(Key::parse("hello")
            .unwrap_err()
            .contains("not a photoshield key file"));
        assert!(Key::parse(&format!("{KEY_HEADER}\nabc\n"))
            .unwrap_err()
            .contains("64 hexadecimal"));
        assert!(!format!("{key:?}").contains("0707"));
    }

    #[test]
    fn layouts_depend_on_the_key_and_split_pilot_and_data() {
        let a = Layout::new(&Key::from_bytes([1; 32]));
        let b = Layout::new(&Key::from_bytes([2; 32]));
        assert_ne!(a.pn, b.pn);
        assert_eq!(a.pilot.len(), PILOT_CHIPS);
        assert_eq!(a.data.len(), CHIPS * CHIPS - PILOT_CHIPS);
        let mut all: Vec<usize> = a.pilot.iter().chain(&a.data).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..CHIPS * CHIPS).collect::<Vec<_>>());
    }
}
