//! The optional adversarial perturbation: a procedural noise field (Perlin by default, Gabor, or
//! uniform as the baseline), binarised to ±ε, scaled per pixel by a just-noticeable-difference
//! mask, and added to the pixels. Bounded (|change| ≤ ε on every channel), deterministic from
//! (seed, file name), and cheap: the smooth field is evaluated on a coarse lattice and
//! interpolated, and per-pixel randomness is a counter-based hash with no shared state.

use rayon::prelude::*;

use crate::isa::Isa;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixels::Pixels;

/// Which noise field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// Perlin gradient noise (4 octaves, period 0.2 x the shorter side) through the colour map
    /// sin(16·π·n), then its sign: the structured noise of Co et al. (CCS 2019).
    #[default]
    Perlin,
    /// Sparse Gabor noise (random orientations), then its sign.
    Gabor,
    /// Independent uniform noise per pixel and channel: the baseline.
    Uniform,
}

/// Perturbation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perturb {
    /// L-infinity bound in 8-bit levels, 1 to 16 (low = 4, medium = 8, high = 12).
    pub epsilon: u8,
    /// The noise field. Default: Perlin.
    pub kind: NoiseKind,
    /// Scale the amplitude by a perceptual mask (less in dark and flat areas). Default: on.
    pub mask: bool,
    /// Base seed; each file's seed mixes in its relative path. Default: 0.
    pub seed: u64,
}

impl Perturb {
    /// Perlin noise of bound `epsilon`, masked, seed 0.
    pub fn new(epsilon: u8) -> Perturb {
        Perturb {
            epsilon,
            kind: NoiseKind::Perlin,
            mask: true,
            seed: 0,
        }
    }

    /// Checks the bound; [`Error::Options`] when it is outside 1 to 16.
    pub fn validate(&self) -> Result<()> {
        if !(1..=16).contains(&self.epsilon) {
            return Err(Error::Options(format!(
                "perturbation strength must be 1 to 16 levels, not {}",
                self.epsilon
            )));
        }
        Ok(())
    }
}

/// Parses "low", "medium", "high" or a number of levels.
pub fn parse_level(s: &str) -> std::result::Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "low" => Ok(4),
        "medium" => Ok(8),
        "high" => Ok(12),
        n => n
            .parse::<u8>()
            .ok()
            .filter(|v| (1..=16).contains(v))
            .ok_or_else(|| format!("'{s}': use low, medium, high or a number of levels from 1 to 16")),
    }
}

/// SplitMix64 finaliser: a good 64-bit mix for counter-based randomness.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline(always)]
fn hash3(seed: u64, a: u64, b: u64) -> u64 {
    mix(seed ^ mix(a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ mix(b.wrapping_add(0x632B_E59B_D9B4_E019))))
}

/// The seed of one file: the user's seed mixed with the file's relative path (FNV-1a), so every
/// file gets its own pattern and the result does not depend on the order of processing.
pub(crate) fn file_seed(seed: u64, name: &str) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01B3);
    }
    mix(seed ^ mix(h))
}

/// Mask blocks, in pixels.
const BLOCK: usize = 8;

/// Lattice step of the smooth field for an image whose shorter side is `short`: an eighth of the
/// finest Perlin octave's period (0.025 x the side) or of the Gabor wavelength, 2 to 32 pixels.
fn lattice_step(short: usize) -> usize {
    (short / 320).clamp(2, 32)
}

/// Unit gradients for Perlin noise (16 directions).
const GRADIENTS: [(f32, f32); 16] = {
    let mut g = [(0.0f32, 0.0f32); 16];
    // cos/sin of k·22.5°, written out (const fn cannot call trig).
    let c = [
        1.0,
        0.9238795,
        0.70710677,
        0.38268343,
        0.0,
        -0.38268343,
        -0.70710677,
        -0.9238795,
        -1.0,
        -0.9238795,
        -0.70710677,
        -0.38268343,
        0.0,
        0.38268343,
        0.70710677,
        0.9238795,
    ];
    let mut k = 0;
    while k < 16 {
        g[k] = (c[k], c[(k + 12) % 16]);
        k += 1;
    }
    g
};

fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// The unit gradient at integer lattice point (gx, gy) of the octave seeded `seed`.
#[inline(always)]
fn gradient(seed: u64, gx: i64, gy: i64) -> (f32, f32) {
    let h = mix(seed
        ^ (gx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (gy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    GRADIENTS[(h & 15) as usize]
}

/// Perlin's blend of the four corner gradients `g` (x0y0, x1y0, x0y1, x1y1) at (fx, fy)
/// within the cell, with `u` = fade(fx) and `v` = fade(fy): about -1..1.
#[inline(always)]
fn perlin_faded(g: [(f32, f32); 4], fx: f32, fy: f32, u: f32, v: f32) -> f32 {
    let dot = |(a, b): (f32, f32), dx: f32, dy: f32| a * dx + b * dy;
    let n00 = dot(g[0], fx, fy);
    let n10 = dot(g[1], fx - 1.0, fy);
    let n01 = dot(g[2], fx, fy - 1.0);
    let n11 = dot(g[3], fx - 1.0, fy - 1.0);
    let a = n00 + u * (n10 - n00);
    let b = n01 + u * (n11 - n01);
    (a + v * (b - a)) * std::f32::consts::SQRT_2
}

/// Single-octave Perlin gradient noise at (x, y) in lattice units, hashing each corner: the
/// definition that [`Octave`] computes faster.
#[cfg(test)]
fn perlin(seed: u64, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (ix, iy) = (x0 as i64, y0 as i64);
    let g = [
        gradient(seed, ix, iy),
        gradient(seed, ix + 1, iy),
        gradient(seed, ix, iy + 1),
        gradient(seed, ix + 1, iy + 1),
    ];
    let (fx, fy) = (x - x0, y - y0);
    perlin_faded(g, fx, fy, fade(fx), fade(fy))
}

/// One Perlin octave over a rectangle from the origin, sampled at the columns of a lattice:
/// the gradients of its lattice points are hashed once each, where [`perlin`] hashes four per
/// call (one point serves many samples), and each column's cell, offset and fade are worked
/// out once for every row.
struct Octave {
    amp: f32,
    freq: f32,
    cols: usize,
    gradients: Vec<(f32, f32)>,
    /// Per sampled column: its cell, its offset in the cell, and the offset's fade.
    columns: Vec<(usize, f32, f32)>,
}

impl Octave {
    /// The octave seeded `seed`, weighted `amp`, at `freq` cycles per pixel, for samples every
    /// `step` pixels on `gw` columns and at rows up to `max_y` pixels.
    fn new(seed: u64, amp: f32, freq: f32, step: usize, gw: usize, max_y: f32) -> Octave {
        let columns: Vec<(usize, f32, f32)> = (0..gw)
            .map(|k| {
                let x = (k * step) as f32 * freq;
                let ix = x as i32;
                let fx = x - ix as f32;
                (ix as usize, fx, fade(fx))
            })
            .collect();
        let cols = columns.last().map_or(0, |c| c.0) + 2;
        let rows = (max_y * freq) as usize + 2;
        let gradients = (0..rows as i64)
            .flat_map(|gy| (0..cols as i64).map(move |gx| gradient(seed, gx, gy)))
            .collect();
        Octave {
            amp,
            freq,
            cols,
            gradients,
            columns,
        }
    }

    /// Adds `amp` x [`perlin`] at ((k·step) as f32 · freq, py · freq) to `out[k]`: the lattice
    /// row at pixel row `py` (non-negative, at most the `max_y` the octave was built for).
    #[inline(always)]
    fn add_row(&self, py: f32, out: &mut [f32]) {
        let y = py * self.freq;
        let iy = y as i32;
        let fy = y - iy as f32;
        let v = fade(fy);
        let above = &self.gradients[iy as usize * self.cols..];
        for (o, &(cx, fx, u)) in out.iter_mut().zip(&self.columns) {
            let g = [
                above[cx],
                above[cx + 1],
                above[cx + self.cols],
                above[cx + self.cols + 1],
            ];
            *o += self.amp * perlin_faded(g, fx, fy, u, v);
        }
    }
}

/// Adds every octave at lattice row `py` (pixels) to `row`.
#[inline(always)]
fn perlin_row(octaves: &[Octave], py: f32, row: &mut [f32]) {
    for octave in octaves {
        octave.add_row(py, row);
    }
}

/// [`perlin_row`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn perlin_row_avx2(octaves: &[Octave], py: f32, row: &mut [f32]) {
    perlin_row(octaves, py, row)
}

/// Values on a lattice every `step` pixels, interpolated bilinearly in between.
struct Grid {
    step: usize,
    gw: usize,
    values: Vec<f32>,
    /// k / step for k in 0..step: the horizontal and vertical weights.
    weights: Vec<f32>,
}

impl Grid {
    fn new(step: usize, gw: usize, values: Vec<f32>) -> Grid {
        let weights = (0..step).map(|k| k as f32 / step as f32).collect();
        Grid {
            step,
            gw,
            values,
            weights,
        }
    }

    /// The lattice row `gy` interpolated horizontally at every pixel column of `out`, cell by
    /// cell (no division per pixel); the same arithmetic as [`Grid::at`].
    #[inline(always)]
    fn expand(&self, gy: usize, out: &mut [f32]) {
        let row = &self.values[gy * self.gw..(gy + 1) * self.gw];
        for (cell, chunk) in out.chunks_mut(self.step).enumerate() {
            let (a, d) = (row[cell], row[cell + 1] - row[cell]);
            for (o, &fx) in chunk.iter_mut().zip(&self.weights) {
                *o = a + fx * d;
            }
        }
    }

    /// The lattice row above pixel row `y`, and the vertical weight of `y` below it.
    #[inline(always)]
    fn vertical(&self, y: usize) -> (usize, f32) {
        (y / self.step, self.weights[y % self.step])
    }

    /// The value at pixel (x, y): horizontally along the lattice rows above and below, then
    /// vertically between them. The plain definition that [`Expanded`] computes row by row.
    fn at(&self, x: usize, y: usize) -> f32 {
        let (gy, fy) = self.vertical(y);
        let (gx, fx) = (x / self.step, self.weights[x % self.step]);
        let along = |gy: usize| {
            let row = &self.values[gy * self.gw..];
            row[gx] + fx * (row[gx + 1] - row[gx])
        };
        let (top, bottom) = (along(gy), along(gy + 1));
        top + fy * (bottom - top)
    }
}

/// Two lattice rows of a [`Grid`] interpolated at every pixel column: the pixel rows between
/// them are then one multiply-add per pixel, in loops over whole rows.
struct Expanded {
    /// The lattice row in `top` (`bottom` holds the next one); `usize::MAX` before the first.
    gy: usize,
    top: Vec<f32>,
    bottom: Vec<f32>,
}

impl Expanded {
    fn new(width: usize) -> Expanded {
        Expanded {
            gy: usize::MAX,
            top: vec![0.0; width],
            bottom: vec![0.0; width],
        }
    }

    /// Makes `top` and `bottom` the lattice rows around pixel row `y`; returns its weight.
    #[inline(always)]
    fn at_row(&mut self, grid: &Grid, y: usize) -> f32 {
        let (gy, fy) = grid.vertical(y);
        if gy != self.gy {
            if self.gy != usize::MAX && gy == self.gy + 1 {
                std::mem::swap(&mut self.top, &mut self.bottom);
            } else {
                grid.expand(gy, &mut self.top);
            }
            grid.expand(gy + 1, &mut self.bottom);
            self.gy = gy;
        }
        fy
    }

    /// The row's values between `top` and `bottom` at weight `f` (from [`Expanded::at_row`]).
    #[inline(always)]
    fn lerp(&self, f: f32) -> impl Iterator<Item = f32> + '_ {
        self.top
            .iter()
            .zip(&self.bottom)
            .map(move |(t, b)| t + f * (b - t))
    }
}

/// The smooth noise field of an image.
fn noise_grid(kind: NoiseKind, seed: u64, width: usize, height: usize, isa: Isa) -> Grid {
    let short = width.min(height).max(1);
    let step = lattice_step(short);
    let (gw, gh) = (width / step + 2, height / step + 2);
    let short = short as f32;
    let mut values = vec![0.0f32; gw * gh];
    match kind {
        NoiseKind::Perlin => {
            let period = 0.2 * short;
            let max_y = ((gh - 1) * step) as f32;
            let octaves: Vec<Octave> = (0..4u64)
                .map(|octave| {
                    let (amp, freq) = (0.5f32.powi(octave as i32), 2f32.powi(octave as i32) / period);
                    Octave::new(seed ^ (octave << 56), amp, freq, step, gw, max_y)
                })
                .collect();
            values.par_chunks_mut(gw).enumerate().for_each(|(gy, row)| {
                let py = (gy * step) as f32;
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `apply_with` lets Isa::Avx2 through only on a CPU that has AVX2.
                    Isa::Avx2 => unsafe { perlin_row_avx2(&octaves, py, row) },
                    _ => perlin_row(&octaves, py, row),
                }
            });
        }
        NoiseKind::Gabor => {
            // Kernels of radius r on a grid of r-sized cells, a few random impulses per cell.
            let r = (0.04 * short).max(4.0);
            let wavelength = 0.02 * short;
            let impulses = 4u64;
            values.par_chunks_mut(gw).enumerate().for_each(|(gy, row)| {
                for (gx, v) in row.iter_mut().enumerate() {
                    let (px, py) = ((gx * step) as f32, (gy * step) as f32);
                    let (cx, cy) = ((px / r).floor() as i64, (py / r).floor() as i64);
                    let mut sum = 0.0f32;
                    for ny in cy - 1..=cy + 1 {
                        for nx in cx - 1..=cx + 1 {
                            for k in 0..impulses {
                                let h = hash3(seed, (nx as u64) << 32 ^ ny as u32 as u64, k);
                                let ix = (nx as f32 + (h & 0xFFFF) as f32 / 65536.0) * r;
                                let iy = (ny as f32 + ((h >> 16) & 0xFFFF) as f32 / 65536.0) * r;
                                let (dx, dy) = (px - ix, py - iy);
                                let d2 = (dx * dx + dy * dy) / (r * r);
                                if d2 >= 1.0 {
                                    continue;
                                }
                                let angle = ((h >> 32) & 0xFFFF) as f32 / 65536.0 * std::f32::consts::TAU;
                                let weight = if (h >> 63) == 1 { 1.0 } else { -1.0 };
                                let phase = (dx * angle.cos() + dy * angle.sin()) / wavelength;
                                sum += weight * (-4.0 * d2).exp() * (std::f32::consts::TAU * phase).cos();
                            }
                        }
                    }
                    *v = sum;
                }
            });
        }
        NoiseKind::Uniform => {}
    }
    Grid::new(step, gw, values)
}

/// The perceptual mask: amplitude factors (0..1) at the corners of 8x8 blocks, from a
/// just-noticeable-difference model: luminance masking (less in dark areas, where the binary
/// pattern shows) times texture masking (more where local contrast hides it, less in flat
/// skies and walls).
fn mask_grid(pixels: &Pixels, isa: Isa) -> Grid {
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
    let mut factor = vec![0.0f32; bw * bh];
    factor
        .par_chunks_mut(bw * MASK_BAND)
        .enumerate()
        .for_each(|(band, out)| match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `apply_with` lets Isa::Avx2 through only on a CPU that has AVX2.
            Isa::Avx2 => unsafe { mask_blocks_avx2(pixels, band * MASK_BAND, out) },
            _ => mask_blocks(pixels, band * MASK_BAND, out),
        });
    // Corner values: the mean of the (up to four) blocks around each corner, which also smooths.
    let (gw, gh) = (bw + 2, bh + 2);
    let mut values = vec![0.0f32; gw * gh];
    for gy in 0..gh {
        for gx in 0..gw {
            let (mut s, mut n) = (0.0, 0.0);
            for by in gy.saturating_sub(1)..gy.min(bh) {
                for bx in gx.saturating_sub(1)..gx.min(bw) {
                    s += factor[by * bw + bx];
                    n += 1.0;
                }
            }
            values[gy * gw + gx] = if n > 0.0 { s / n } else { 1.0 };
        }
    }
    Grid::new(BLOCK, gw, values)
}

/// The luminance of row `y`, one value per pixel.
#[inline(always)]
fn luma_row(pixels: &Pixels, y: usize, out: &mut [u16]) {
    let ch = pixels.channels();
    let stride = pixels.width as usize * ch;
    let row = &pixels.data[y * stride..(y + 1) * stride];
    // At most 256 x 255: the weighted sum fits 16 bits, so the vectors hold 16 lanes, not 8.
    let luma = |p: &[u8]| (77 * p[0] as u16 + 150 * p[1] as u16 + 29 * p[2] as u16) >> 8;
    match ch {
        3 => out
            .iter_mut()
            .zip(row.as_chunks::<3>().0)
            .for_each(|(l, p)| *l = luma(p)),
        _ => out
            .iter_mut()
            .zip(row.as_chunks::<4>().0)
            .for_each(|(l, p)| *l = luma(p)),
    }
}

/// Block rows of the mask per task: each task computes the luminance of one row more than it
/// samples (the row below its last block), so larger bands waste less.
const MASK_BAND: usize = 4;

/// [`mask_blocks`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask_blocks_avx2(pixels: &Pixels, by0: usize, out: &mut [f32]) {
    mask_blocks(pixels, by0, out)
}

/// The mask factors of the blocks of the block rows from `by0` on (`out` holds whole block
/// rows), from the mean luminance and the mean absolute gradient (to the right, and to the row
/// two below) of each block, over every other row: block statistics do not need every row,
/// and this halves the cost of the mask.
#[inline(always)]
fn mask_blocks(pixels: &Pixels, by0: usize, out: &mut [f32]) {
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let (mut cur, mut next) = (vec![0u16; w], vec![0u16; w]);
    // Per column, over the sampled rows: luminance, and the horizontal and vertical gradients
    // (loops over whole rows, which the compiler vectorises); then sums per block. Per column
    // every sum is of at most BLOCK / 2 values of at most 255, so 16 bits hold them.
    const _: () = assert!(BLOCK.div_ceil(2) * 255 <= u16::MAX as usize);
    let (mut lum, mut gh, mut gv) = (vec![0u16; w], vec![0u16; w], vec![0u16; w]);
    luma_row(pixels, by0 * BLOCK, &mut cur);
    for (k, out) in out.chunks_mut(w.div_ceil(BLOCK)).enumerate() {
        let by = by0 + k;
        let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
        for v in [&mut lum, &mut gh, &mut gv] {
            v.fill(0);
        }
        let mut rows = 0;
        // `cur` holds the luminance of row y on every pass (BLOCK is even, so the row below
        // this block row's last sample is the next block row's first).
        for y in (y0..y1).step_by(2) {
            if y + 2 < h {
                luma_row(pixels, y + 2, &mut next);
            } else {
                next.copy_from_slice(&cur);
            }
            for (l, c) in lum.iter_mut().zip(&cur) {
                *l += c;
            }
            for (g, p) in gh.iter_mut().zip(cur.windows(2)) {
                *g += p[1].abs_diff(p[0]);
            }
            for ((g, a), b) in gv.iter_mut().zip(&cur).zip(&next) {
                *g += a.abs_diff(*b);
            }
            rows += 1;
            std::mem::swap(&mut cur, &mut next);
        }
        let blocks = lum.chunks(BLOCK).zip(gh.chunks(BLOCK)).zip(gv.chunks(BLOCK));
        for (o, ((l, gh), gv)) in out.iter_mut().zip(blocks) {
            let n = (l.len() * rows) as f32;
            let total = |v: &[u16]| v.iter().map(|&x| x as i32).sum::<i32>();
            let sum = total(l);
            let tex = total(gv) / 2 + total(gh);
            let (m, t) = (sum as f32 / n, tex as f32 / n);
            let luminance = (0.45 + 0.55 * m / 64.0).clamp(0.45, 1.0);
            let contrast = (0.6 + t / 10.0).clamp(0.6, 1.0);
            *o = luminance * contrast;
        }
    }
}

/// Everything the per-pixel kernel needs, built once per image.
struct Field {
    kind: NoiseKind,
    epsilon: f32,
    seed: u64,
    noise: Grid,
    mask: Option<Grid>,
}

impl Field {
    fn new(pixels: &Pixels, settings: &Perturb, seed: u64, isa: Isa) -> Field {
        let (w, h) = (pixels.width as usize, pixels.height as usize);
        Field {
            kind: settings.kind,
            epsilon: settings.epsilon as f32,
            seed,
            noise: noise_grid(settings.kind, seed, w, h, isa),
            mask: settings.mask.then(|| mask_grid(pixels, isa)),
        }
    }

    /// ±1 from a field value ([`perlin_sign`] or [`gabor_sign`]).
    #[inline(always)]
    fn sign(&self, n: f32) -> f32 {
        match self.kind {
            NoiseKind::Perlin => perlin_sign(n),
            _ => gabor_sign(n),
        }
    }

    /// The uniform baseline's offset for channel `c` of pixel (x, y), scaled by `scale`.
    #[inline(always)]
    fn uniform(&self, x: usize, y: usize, c: usize, scale: f32) -> i16 {
        let span = 2 * self.epsilon as u32 + 1;
        uniform_offset(self.uniform_draws(x, y), c, span, self.epsilon, scale)
    }

    /// The 64 random bits of pixel (x, y) for the uniform baseline: 16 per colour channel.
    #[inline(always)]
    fn uniform_draws(&self, x: usize, y: usize) -> u64 {
        mix(self.seed ^ ((y as u64) << 32 | x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Fills `bytes` with the uniform baseline's offsets of row `y`, one per colour byte
    /// (alpha bytes stay 0); `scales` gives each pixel's mask factor.
    #[inline(always)]
    fn uniform_row(&self, y: usize, ch: usize, bytes: &mut [i8], scales: impl Iterator<Item = f32>) {
        let span = 2 * self.epsilon as u32 + 1;
        for ((x, b), a) in bytes.chunks_exact_mut(ch).enumerate().zip(scales) {
            let h = self.uniform_draws(x, y);
            for (c, o) in b[..3].iter_mut().enumerate() {
                *o = uniform_offset(h, c, span, self.epsilon, a) as i8;
            }
        }
    }
}

/// sign(sin(16·π·n)), which is +1 exactly when frac(8n) < 1/2, i.e. when floor(16n) is even
/// (no transcendental, no libm call per pixel; the offset keeps the truncation a floor).
#[inline(always)]
fn perlin_sign(n: f32) -> f32 {
    // The parity of floor(16n + 4096) from the mantissa: rounding x - 0.5 to the nearest
    // integer with the 1.5 x 2^23 trick is floor(x) (no float-to-int conversion, which the
    // compiler cannot vectorise with saturation).
    let bits = (16.0 * n + (4096.0 - 0.5) + MAGIC).to_bits();
    if bits & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// The sign of a Gabor field value.
#[inline(always)]
fn gabor_sign(n: f32) -> f32 {
    if n >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// 1.5 x 2^23: adding it to a float of magnitude below 2^22 leaves round(x) in the low
/// mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// Rounds an offset within ±16 to the nearest integer (halves to even) without a libm call or
/// a saturating conversion: adding 1.5 x 2^23 leaves the integer in the low mantissa bits.
#[inline(always)]
fn round_small(x: f32) -> i16 {
    ((x + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i16
}

/// Row buffers of one worker.
struct Rows {
    noise: Expanded,
    mask: Expanded,
    offset: Vec<i8>,
    /// The offsets per byte of the row (alpha bytes stay 0).
    bytes: Vec<i8>,
}

impl Rows {
    fn new(field: &Field, width: usize, channels: usize) -> Rows {
        let masked = field.mask.is_some();
        Rows {
            noise: Expanded::new(if field.kind == NoiseKind::Uniform {
                0
            } else {
                width
            }),
            mask: Expanded::new(if masked { width } else { 0 }),
            offset: vec![0; width],
            bytes: vec![0; width * channels],
        }
    }
}

impl Field {
    /// Perturbs the rows of one band, the first of which is row `y0`, in place.
    fn apply_band(&self, isa: Isa, y0: usize, band: &mut [u8], ch: usize, r: &mut Rows) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `apply_with` lets Isa::Avx2 through only on a CPU that has AVX2.
            Isa::Avx2 => unsafe { self.apply_band_avx2(y0, band, ch, r) },
            _ => self.apply_rows(y0, band, ch, r),
        }
    }

    /// [`Field::apply_rows`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_band_avx2(&self, y0: usize, band: &mut [u8], ch: usize, r: &mut Rows) {
        self.apply_rows(y0, band, ch, r)
    }

    #[inline(always)]
    fn apply_rows(&self, y0: usize, band: &mut [u8], ch: usize, r: &mut Rows) {
        let stride = r.offset.len() * ch;
        for (i, row) in band.chunks_exact_mut(stride).enumerate() {
            self.apply_row(y0 + i, row, ch, r);
        }
    }

    /// Perturbs row `y` (`ch` channels per pixel) in place.
    #[inline(always)]
    fn apply_row(&self, y: usize, row: &mut [u8], ch: usize, r: &mut Rows) {
        let fm = match &self.mask {
            Some(mask) => r.mask.at_row(mask, y),
            None => 0.0,
        };
        if self.kind == NoiseKind::Uniform {
            // The offsets of the whole row first, then one vectorised add: hashing and adding
            // in one loop kept both scalar.
            match self.mask {
                Some(_) => self.uniform_row(y, ch, &mut r.bytes, r.mask.lerp(fm)),
                None => self.uniform_row(y, ch, &mut r.bytes, std::iter::repeat(1.0)),
            }
            add_bytes(row, &r.bytes);
            return;
        }
        let fy = r.noise.at_row(&self.noise, y);
        // One loop per noise kind, so that the kind is not tested per pixel.
        match self.kind {
            NoiseKind::Perlin => self.offsets(r, fy, fm, perlin_sign),
            _ => self.offsets(r, fy, fm, gabor_sign),
        }
        match ch {
            3 => add_grey::<3>(row, &r.offset, &mut r.bytes),
            _ => add_grey::<4>(row, &r.offset, &mut r.bytes),
        }
    }
}

impl Field {
    /// Fills `r.offset` with each pixel's offset: ±ε by `sign` of the noise, times the mask,
    /// rounded; `fy` and `fm` are the row's vertical weights in the noise and the mask.
    #[inline(always)]
    fn offsets(&self, r: &mut Rows, fy: f32, fm: f32, sign: impl Fn(f32) -> f32) {
        let eps = self.epsilon;
        let noise = r.noise.lerp(fy);
        match &self.mask {
            Some(_) => {
                for ((o, n), a) in r.offset.iter_mut().zip(noise).zip(r.mask.lerp(fm)) {
                    *o = round_small(sign(n) * (eps * a)) as i8;
                }
            }
            None => {
                for (o, n) in r.offset.iter_mut().zip(noise) {
                    *o = round_small(sign(n) * eps) as i8;
                }
            }
        }
    }
}

/// Adds each pixel's offset to its R, G and B (alpha untouched), saturating. The offsets are
/// first spread to one per byte, so that the add runs as one loop over bytes, which the
/// compiler vectorises. `bytes` is scratch space of the row's length.
#[inline(always)]
fn add_grey<const N: usize>(row: &mut [u8], offset: &[i8], bytes: &mut [i8]) {
    for (b, &o) in bytes.chunks_exact_mut(N).zip(offset) {
        b[0] = o;
        b[1] = o;
        b[2] = o;
    }
    add_bytes(row, bytes);
}

/// Adds `bytes[i]` to `row[i]` for every byte, saturating.
#[inline(always)]
fn add_bytes(row: &mut [u8], bytes: &[i8]) {
    for (v, &o) in row.iter_mut().zip(bytes) {
        *v = add_saturating(*v, o);
    }
}

/// The uniform baseline's offset for channel `c` from a pixel's random bits `h`: a draw from
/// -ε..=ε (`span` = 2ε + 1 values), times the mask factor `scale`, rounded.
#[inline(always)]
fn uniform_offset(h: u64, c: usize, span: u32, epsilon: f32, scale: f32) -> i16 {
    let r = (((h >> (c * 16)) as u32 & 0xFFFF) * span) >> 16;
    round_small((r as i32 as f32 - epsilon) * scale)
}

/// `v + o` clamped to 0..=255, as a signed saturating add on `v - 128` (one instruction per
/// 32 bytes with AVX2, where widening to 16 bits takes five).
#[inline(always)]
fn add_saturating(v: u8, o: i8) -> u8 {
    ((v ^ 0x80) as i8).saturating_add(o) as u8 ^ 0x80
}

/// Adds the perturbation to `pixels`, with `seed` the file's own seed ([`file_seed`]).
/// Every channel of every pixel moves by at most `epsilon`; alpha is untouched.
// Hook for tests/perturb.rs and benches/perturb.rs (the pipeline calls it itself): hidden, not part of the API.
#[doc(hidden)]
pub fn apply(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    apply_with(pixels, settings, seed, Isa::detect())
}

/// [`apply`] with the kernels compiled for `isa` (every instruction set gives the same
/// output); an instruction set this CPU lacks falls back to the baseline.
// Hook for tests/perturb.rs and benches/perturb.rs (every kernel against the reference): hidden, not part of the API.
#[doc(hidden)]
pub fn apply_with(pixels: &mut Pixels, settings: &Perturb, seed: u64, isa: Isa) {
    let isa = if Isa::available().contains(&isa) {
        isa
    } else {
        Isa::Baseline
    };
    let field = Field::new(pixels, settings, seed, isa);
    let (w, ch) = (pixels.width as usize, pixels.channels());
    let rows_per_band = 32;
    pixels
        .data
        .par_chunks_mut(w * ch * rows_per_band)
        .enumerate()
        .for_each_init(
            || Rows::new(&field, w, ch),
            |buffers, (band, rows)| field.apply_band(isa, band * rows_per_band, rows, ch, buffers),
        );
}

/// The plain reference of [`apply`]: pixel by pixel, each value interpolated on its own from
/// the lattices, no row buffers shared between pixels, no threads. A test hook: hidden from the
/// documentation, not part of the supported API.
#[doc(hidden)]
pub fn apply_reference(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    let field = Field::new(pixels, settings, seed, Isa::Baseline);
    let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
    for y in 0..h {
        for x in 0..w {
            let a = field.mask.as_ref().map(|mask| mask.at(x, y));
            let i = (y * w + x) * ch;
            for c in 0..3 {
                let offset = if field.kind == NoiseKind::Uniform {
                    field.uniform(x, y, c, a.unwrap_or(1.0))
                } else {
                    let s = field.sign(field.noise.at(x, y));
                    match a {
                        Some(a) => round_small(s * (field.epsilon * a)),
                        None => (s * field.epsilon) as i16,
                    }
                };
                pixels.data[i + c] = (pixels.data[i + c] as i16 + offset).clamp(0, 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_add_is_the_clamped_sum_for_every_byte_and_offset() {
        for v in 0..=255u8 {
            for o in i8::MIN..=i8::MAX {
                assert_eq!(
                    add_saturating(v, o) as i16,
                    (v as i16 + o as i16).clamp(0, 255),
                    "{v} {o}"
                );
            }
        }
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("low"), Ok(4));
        assert_eq!(parse_level("MEDIUM"), Ok(8));
        assert_eq!(parse_level("12"), Ok(12));
        assert!(parse_level("17").is_err() && parse_level("0").is_err() && parse_level("max").is_err());
    }

    #[test]
    fn file_seeds_differ_by_name_and_are_stable() {
        assert_ne!(file_seed(1, "a.jpg"), file_seed(1, "b.jpg"));
        assert_eq!(file_seed(1, "a.jpg"), file_seed(1, "a.jpg"));
        assert_ne!(file_seed(1, "a.jpg"), file_seed(2, "a.jpg"));
    }

    #[test]
    fn octave_tables_give_the_hashed_perlin_noise() {
        // The whole field, against its definition at every lattice point.
        for (w, h) in [(1usize, 1usize), (640, 480), (1000, 3000)] {
            let grid = noise_grid(NoiseKind::Perlin, 5, w, h, Isa::Baseline);
            let gh = grid.values.len() / grid.gw;
            let (short, step) = (w.min(h) as f32, grid.step);
            for gy in 0..gh {
                for gx in 0..grid.gw {
                    let (px, py) = ((gx * step) as f32, (gy * step) as f32);
                    let (mut sum, mut amp, mut freq) = (0.0, 1.0, 1.0 / (0.2 * short));
                    for octave in 0..4u64 {
                        sum += amp * perlin(5 ^ (octave << 56), px * freq, py * freq);
                        amp *= 0.5;
                        freq *= 2.0;
                    }
                    assert_eq!(grid.values[gy * grid.gw + gx], sum, "{w}x{h} at ({gx}, {gy})");
                }
            }
        }
    }

    #[test]
    fn gradients_are_unit_vectors() {
        for (a, b) in GRADIENTS {
            assert!((a * a + b * b - 1.0).abs() < 1e-5);
        }
    }
}
