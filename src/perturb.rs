//! The optional adversarial perturbation: a procedural noise field (Perlin by default, Gabor, or
//! uniform as the baseline), binarised to ±ε, scaled per pixel by a just-noticeable-difference
//! mask, and added to the pixels. Bounded (|change| ≤ ε on every channel), deterministic from
//! (seed, file name), and cheap: the smooth field is evaluated on a coarse lattice and
//! interpolated, and per-pixel randomness is a counter-based hash with no shared state.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixels::Pixels;

/// Which noise field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
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
    pub kind: NoiseKind,
    /// Scale the amplitude by a perceptual mask (less in dark and flat areas). Default: on.
    pub mask: bool,
    /// Base seed; each file's seed mixes in its relative path. Default: 0.
    pub seed: u64,
}

impl Perturb {
    pub fn new(epsilon: u8) -> Perturb {
        Perturb {
            epsilon,
            kind: NoiseKind::Perlin,
            mask: true,
            seed: 0,
        }
    }

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
pub fn file_seed(seed: u64, name: &str) -> u64 {
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

/// Single-octave Perlin gradient noise at (x, y) in lattice units, about -1..1.
fn perlin(seed: u64, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (ix, iy) = (x0 as i64, y0 as i64);
    let grad = |gx: i64, gy: i64, dx: f32, dy: f32| {
        let h = mix(seed
            ^ (gx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (gy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
        let (a, b) = GRADIENTS[(h & 15) as usize];
        a * dx + b * dy
    };
    let n00 = grad(ix, iy, fx, fy);
    let n10 = grad(ix + 1, iy, fx - 1.0, fy);
    let n01 = grad(ix, iy + 1, fx, fy - 1.0);
    let n11 = grad(ix + 1, iy + 1, fx - 1.0, fy - 1.0);
    let (u, v) = (fade(fx), fade(fy));
    let a = n00 + u * (n10 - n00);
    let b = n01 + u * (n11 - n01);
    (a + v * (b - a)) * std::f32::consts::SQRT_2
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

    /// The lattice row interpolated vertically at pixel row `y`.
    fn row(&self, y: usize, out: &mut [f32]) {
        let (gy, fy) = (y / self.step, self.weights[y % self.step]);
        let (a, b) = (
            &self.values[gy * self.gw..(gy + 1) * self.gw],
            &self.values[(gy + 1) * self.gw..(gy + 2) * self.gw],
        );
        for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
            *o = p + fy * (q - p);
        }
    }

    /// One pixel of a row from [`Grid::row`].
    #[inline(always)]
    fn at(&self, row: &[f32], x: usize) -> f32 {
        let (gx, fx) = (x / self.step, self.weights[x % self.step]);
        row[gx] + fx * (row[gx + 1] - row[gx])
    }

    /// A whole row of pixels from [`Grid::row`], cell by cell (no division per pixel); the same
    /// arithmetic as [`Grid::at`].
    fn expand(&self, row: &[f32], out: &mut [f32]) {
        for (cell, chunk) in out.chunks_mut(self.step).enumerate() {
            let (a, d) = (row[cell], row[cell + 1] - row[cell]);
            for (o, &fx) in chunk.iter_mut().zip(&self.weights) {
                *o = a + fx * d;
            }
        }
    }
}

/// The smooth noise field of an image.
fn noise_grid(kind: NoiseKind, seed: u64, width: usize, height: usize) -> Grid {
    let short = width.min(height).max(1);
    let step = lattice_step(short);
    let (gw, gh) = (width / step + 2, height / step + 2);
    let short = short as f32;
    let mut values = vec![0.0f32; gw * gh];
    match kind {
        NoiseKind::Perlin => {
            let period = 0.2 * short;
            values.par_chunks_mut(gw).enumerate().for_each(|(gy, row)| {
                for (gx, v) in row.iter_mut().enumerate() {
                    let (px, py) = ((gx * step) as f32, (gy * step) as f32);
                    let (mut sum, mut amp, mut freq) = (0.0, 1.0, 1.0 / period);
                    for octave in 0..4u64 {
                        sum += amp * perlin(seed ^ (octave << 56), px * freq, py * freq);
                        amp *= 0.5;
                        freq *= 2.0;
                    }
                    *v = sum;
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
fn mask_grid(pixels: &Pixels) -> Grid {
    let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
    let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
    let stride = w * ch;
    let luma_row = |y: usize, out: &mut [i32]| {
        let row = &pixels.data[y * stride..(y + 1) * stride];
        let luma = |p: &[u8]| (77 * p[0] as i32 + 150 * p[1] as i32 + 29 * p[2] as i32) >> 8;
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
    };
    // Per block: mean luminance and mean absolute gradient (to the right, and to the row two
    // below), over every other row: block statistics do not need every row, and this halves
    // the cost of the mask.
    let mut factor = vec![0.0f32; bw * bh];
    factor.par_chunks_mut(bw).enumerate().for_each(|(by, out)| {
        let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
        let (mut sum, mut tex) = (vec![0i32; bw], vec![0i32; bw]);
        let (mut cur, mut next) = (vec![0i32; w], vec![0i32; w]);
        // Whole-row gradients first (loops the compiler vectorises), then sums per block.
        let (mut gh, mut gv) = (vec![0i32; w], vec![0i32; w]);
        luma_row(y0, &mut cur);
        let mut rows = 0;
        for y in (y0..y1).step_by(2) {
            if y + 2 < h {
                luma_row(y + 2, &mut next);
            } else {
                next.copy_from_slice(&cur);
            }
            for (g, p) in gh.iter_mut().zip(cur.windows(2)) {
                *g = (p[1] - p[0]).abs();
            }
            for ((g, a), b) in gv.iter_mut().zip(&cur).zip(&next) {
                *g = (a - b).abs();
            }
            let blocks = cur.chunks(BLOCK).zip(gh.chunks(BLOCK)).zip(gv.chunks(BLOCK));
            for (((c, h), v), (s, t)) in blocks.zip(sum.iter_mut().zip(tex.iter_mut())) {
                *s += c.iter().sum::<i32>();
                *t += v.iter().sum::<i32>() / 2 + h.iter().sum::<i32>();
            }
            rows += 1;
            std::mem::swap(&mut cur, &mut next);
        }
        for (b, o) in out.iter_mut().enumerate() {
            let n = (((b + 1) * BLOCK).min(w) - b * BLOCK) * rows;
            let (m, t) = (sum[b] as f32 / n as f32, tex[b] as f32 / n as f32);
            let luminance = (0.45 + 0.55 * m / 64.0).clamp(0.45, 1.0);
            let contrast = (0.6 + t / 10.0).clamp(0.6, 1.0);
            *o = luminance * contrast;
        }
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

/// Everything the per-pixel kernel needs, built once per image.
struct Field {
    kind: NoiseKind,
    epsilon: f32,
    seed: u64,
    noise: Grid,
    mask: Option<Grid>,
}

impl Field {
    fn new(pixels: &Pixels, settings: &Perturb, seed: u64) -> Field {
        let (w, h) = (pixels.width as usize, pixels.height as usize);
        Field {
            kind: settings.kind,
            epsilon: settings.epsilon as f32,
            seed,
            noise: noise_grid(settings.kind, seed, w, h),
            mask: settings.mask.then(|| mask_grid(pixels)),
        }
    }

    /// ±1 from a field value: for Perlin, sign(sin(16·π·n)), which is +1 exactly when
    /// frac(8n) < 1/2, i.e. when floor(16n) is even (no transcendental, no libm call per
    /// pixel; the offset keeps the truncation a floor); for Gabor, the sign of n.
    #[inline(always)]
    fn sign(&self, n: f32) -> f32 {
        match self.kind {
            NoiseKind::Perlin => {
                // The parity of floor(16n + 4096) from the mantissa: rounding x - 0.5 to the
                // nearest integer with the 1.5 x 2^23 trick is floor(x) (no float-to-int
                // conversion, which the compiler cannot vectorise with saturation).
                let bits = (16.0 * n + (4096.0 - 0.5) + MAGIC).to_bits();
                if bits & 1 == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
            _ => {
                if n >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }

    /// The uniform baseline's offset for channel `c` of pixel (x, y), scaled by `scale`.
    #[inline(always)]
    fn uniform(&self, x: usize, y: usize, c: usize, scale: f32) -> i16 {
        let h = mix(self.seed ^ ((y as u64) << 32 | x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let span = 2 * self.epsilon as u64 + 1;
        let r = (((h >> (c * 16)) & 0xFFFF) * span) >> 16;
        round_small((r as f32 - self.epsilon) * scale)
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
    noise: Vec<f32>,
    mask: Vec<f32>,
    n: Vec<f32>,
    a: Vec<f32>,
    offset: Vec<i16>,
    /// The offsets per byte of the row (alpha bytes stay 0).
    bytes: Vec<i8>,
}

impl Rows {
    fn new(field: &Field, width: usize, channels: usize) -> Rows {
        Rows {
            noise: vec![0.0; field.noise.gw],
            mask: vec![0.0; field.mask.as_ref().map_or(0, |m| m.gw)],
            n: vec![0.0; width],
            a: vec![0.0; width],
            offset: vec![0; width],
            bytes: vec![0; width * channels],
        }
    }
}

impl Field {
    /// Perturbs row `y` (`ch` channels per pixel) in place.
    fn apply_row(&self, y: usize, row: &mut [u8], ch: usize, r: &mut Rows) {
        let width = r.n.len();
        if let Some(mask) = &self.mask {
            mask.row(y, &mut r.mask);
            mask.expand(&r.mask, &mut r.a);
        }
        if self.kind == NoiseKind::Uniform {
            for (x, px) in row.chunks_exact_mut(ch).enumerate() {
                let scale = if self.mask.is_some() { r.a[x] } else { 1.0 };
                for (c, v) in px[..3].iter_mut().enumerate() {
                    *v = (*v as i16 + self.uniform(x, y, c, scale)).clamp(0, 255) as u8;
                }
            }
            return;
        }
        self.noise.row(y, &mut r.noise);
        self.noise.expand(&r.noise, &mut r.n);
        let eps = self.epsilon;
        match &self.mask {
            Some(_) => {
                for x in 0..width {
                    r.offset[x] = round_small(self.sign(r.n[x]) * (eps * r.a[x]));
                }
            }
            None => {
                for x in 0..width {
                    r.offset[x] = round_small(self.sign(r.n[x]) * eps);
                }
            }
        }
        match ch {
            3 => add_grey::<3>(row, &r.offset, &mut r.bytes),
            _ => add_grey::<4>(row, &r.offset, &mut r.bytes),
        }
    }
}

/// Adds each pixel's offset to its R, G and B (alpha untouched). The offsets are first spread
/// to one per byte, so that the add runs as one loop over bytes, which the compiler vectorises.
/// `bytes` is scratch space of the row's length.
fn add_grey<const N: usize>(row: &mut [u8], offset: &[i16], bytes: &mut [i8]) {
    for (b, &o) in bytes.chunks_exact_mut(N).zip(offset) {
        let o = o as i8;
        b[0] = o;
        b[1] = o;
        b[2] = o;
    }
    for (v, &o) in row.iter_mut().zip(bytes.iter()) {
        *v = (*v as i16 + o as i16).clamp(0, 255) as u8;
    }
}

/// Adds the perturbation to `pixels`, with `seed` the file's own seed ([`file_seed`]).
/// Every channel of every pixel moves by at most `epsilon`; alpha is untouched.
pub fn apply(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    let field = Field::new(pixels, settings, seed);
    let (w, ch) = (pixels.width as usize, pixels.channels());
    let stride = w * ch;
    let rows_per_band = 32;
    pixels
        .data
        .par_chunks_mut(stride * rows_per_band)
        .enumerate()
        .for_each(|(band, rows)| {
            let mut buffers = Rows::new(&field, w, ch);
            for (i, row) in rows.chunks_exact_mut(stride).enumerate() {
                field.apply_row(band * rows_per_band + i, row, ch, &mut buffers);
            }
        });
}

/// The plain reference of [`apply`]: pixel by pixel, each value interpolated on its own from
/// the lattices, no row buffers shared between pixels, no threads.
pub fn apply_reference(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    let field = Field::new(pixels, settings, seed);
    let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
    let mut noise_row = vec![0.0f32; field.noise.gw];
    let mut mask_row = vec![0.0f32; field.mask.as_ref().map_or(0, |m| m.gw)];
    for y in 0..h {
        for x in 0..w {
            let a = match &field.mask {
                Some(mask) => {
                    mask.row(y, &mut mask_row);
                    Some(mask.at(&mask_row, x))
                }
                None => None,
            };
            let i = (y * w + x) * ch;
            for c in 0..3 {
                let offset = if field.kind == NoiseKind::Uniform {
                    field.uniform(x, y, c, a.unwrap_or(1.0))
                } else {
                    field.noise.row(y, &mut noise_row);
                    let s = field.sign(field.noise.at(&noise_row, x));
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
    fn gradients_are_unit_vectors() {
        for (a, b) in GRADIENTS {
            assert!((a * a + b * b - 1.0).abs() < 1e-5);
        }
    }
}
