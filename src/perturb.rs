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

/// Lattice step of the coarse evaluation, in pixels.
const STEP: usize = 4;
/// Mask blocks, in pixels.
const BLOCK: usize = 4;

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
        let (a, b) = GRADIENTS[(hash3(seed, gx as u64, gy as u64) & 15) as usize];
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

/// The smooth field, sampled every [`STEP`] pixels: `gw` x `gh` values.
struct Lattice {
    gw: usize,
    values: Vec<f32>,
}

impl Lattice {
    fn build(kind: NoiseKind, seed: u64, width: usize, height: usize) -> Lattice {
        let (gw, gh) = (width / STEP + 2, height / STEP + 2);
        let short = width.min(height).max(1) as f32;
        let mut values = vec![0.0f32; gw * gh];
        match kind {
            NoiseKind::Perlin => {
                let period = 0.2 * short;
                values.par_chunks_mut(gw).enumerate().for_each(|(gy, row)| {
                    for (gx, v) in row.iter_mut().enumerate() {
                        let (px, py) = ((gx * STEP) as f32, (gy * STEP) as f32);
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
                        let (px, py) = ((gx * STEP) as f32, (gy * STEP) as f32);
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
        Lattice { gw, values }
    }

    /// The field along row `y`, interpolated vertically at every lattice column.
    fn row(&self, y: usize, out: &mut [f32]) {
        let (gy, fy) = (y / STEP, (y % STEP) as f32 / STEP as f32);
        let (a, b) = (
            &self.values[gy * self.gw..(gy + 1) * self.gw],
            &self.values[(gy + 1) * self.gw..(gy + 2) * self.gw],
        );
        for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
            *o = p + fy * (q - p);
        }
    }
}

/// Per-block amplitude in 1/256ths of ε (0..=256), from a just-noticeable-difference model:
/// luminance masking (less in dark areas, where the binary pattern shows) times texture
/// masking (more where local contrast hides it, less in flat skies and walls).
struct Mask {
    bw: usize,
    values: Vec<f32>,
}

impl Mask {
    fn build(pixels: &Pixels) -> Mask {
        let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
        let (bw, bh) = (w.div_ceil(BLOCK) + 1, h.div_ceil(BLOCK) + 1);
        let luma = |x: usize, y: usize| -> i32 {
            let p = &pixels.data[(y * w + x) * ch..];
            (77 * p[0] as i32 + 150 * p[1] as i32 + 29 * p[2] as i32) >> 8
        };
        // Block means of luminance and of absolute gradient.
        let mut mean = vec![0.0f32; bw * bh];
        let mut texture = vec![0.0f32; bw * bh];
        mean.par_chunks_mut(bw)
            .zip(texture.par_chunks_mut(bw))
            .enumerate()
            .for_each(|(by, (m_row, t_row))| {
                let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
                for bx in 0..bw {
                    let (x0, x1) = (bx * BLOCK, ((bx + 1) * BLOCK).min(w));
                    let (mut s, mut t, mut n) = (0i32, 0i32, 0i32);
                    for y in y0..y1 {
                        for x in x0..x1 {
                            let v = luma(x, y);
                            s += v;
                            if x + 1 < w {
                                t += (luma(x + 1, y) - v).abs();
                            }
                            if y + 1 < h {
                                t += (luma(x, y + 1) - v).abs();
                            }
                            n += 1;
                        }
                    }
                    if n > 0 {
                        m_row[bx] = s as f32 / n as f32;
                        t_row[bx] = t as f32 / n as f32;
                    }
                }
            });
        let mean = box3(&mean, bw, bh);
        let texture = box3(&texture, bw, bh);
        let values = mean
            .iter()
            .zip(&texture)
            .map(|(&m, &t)| {
                let luminance = (0.45 + 0.55 * m / 64.0).clamp(0.45, 1.0);
                let contrast = (0.6 + t / 10.0).clamp(0.6, 1.0);
                luminance * contrast
            })
            .collect();
        Mask { bw, values }
    }

    fn row(&self, y: usize, out: &mut [f32]) {
        // Block centres sit at BLOCK/2; interpolate between the two nearest block rows.
        let fy = (y as f32 - (BLOCK as f32 - 1.0) / 2.0) / BLOCK as f32;
        let by = fy.floor().max(0.0) as usize;
        let t = (fy - by as f32).clamp(0.0, 1.0);
        let by1 = (by + 1).min(self.values.len() / self.bw - 1);
        let (a, b) = (
            &self.values[by * self.bw..(by + 1) * self.bw],
            &self.values[by1 * self.bw..(by1 + 1) * self.bw],
        );
        for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
            *o = p + t * (q - p);
        }
    }
}

/// 3x3 box filter of a `w` x `h` map, clamped at the edges.
fn box3(v: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    s += v[yy * w + xx];
                    n += 1.0;
                }
            }
            out[y * w + x] = s / n;
        }
    }
    out
}

/// Everything the per-pixel kernel needs, built once per image.
struct Field {
    kind: NoiseKind,
    epsilon: f32,
    seed: u64,
    lattice: Lattice,
    mask: Option<Mask>,
}

impl Field {
    fn new(pixels: &Pixels, settings: &Perturb, seed: u64) -> Field {
        let (w, h) = (pixels.width as usize, pixels.height as usize);
        Field {
            kind: settings.kind,
            epsilon: settings.epsilon as f32,
            seed,
            lattice: Lattice::build(settings.kind, seed, w, h),
            mask: settings.mask.then(|| Mask::build(pixels)),
        }
    }

    /// The signed offset for pixel x of a row, given the row's interpolated lattice values.
    #[inline(always)]
    fn sign(kind: NoiseKind, n_row: &[f32], x: usize) -> f32 {
        let (gx, fx) = (x / STEP, (x % STEP) as f32 / STEP as f32);
        let n = n_row[gx] + fx * (n_row[gx + 1] - n_row[gx]);
        match kind {
            // sign(sin(16·π·n)) = +1 when frac(8n) < 1/2: no transcendental per pixel.
            NoiseKind::Perlin => {
                let t = 8.0 * n;
                if t - t.floor() < 0.5 {
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

    #[inline(always)]
    fn amplitude(&self, a_row: &[f32], x: usize) -> f32 {
        match &self.mask {
            None => self.epsilon,
            Some(_) => {
                let fx = (x as f32 - (BLOCK as f32 - 1.0) / 2.0) / BLOCK as f32;
                let bx = fx.floor().max(0.0) as usize;
                let t = (fx - bx as f32).clamp(0.0, 1.0);
                let a = a_row[bx] + t * (a_row[bx + 1] - a_row[bx]);
                self.epsilon * a
            }
        }
    }

    /// Perturbs one row of pixels (`ch` channels) in place.
    fn apply_row(&self, y: usize, row: &mut [u8], ch: usize, n_row: &mut [f32], a_row: &mut [f32]) {
        if self.kind == NoiseKind::Uniform {
            let span = 2 * self.epsilon as u64 + 1;
            for (x, px) in row.chunks_exact_mut(ch).enumerate() {
                let h = hash3(self.seed, x as u64, y as u64);
                let scale = match &self.mask {
                    Some(_) => self.amplitude(a_row, x) / self.epsilon,
                    None => 1.0,
                };
                for (c, v) in px[..3].iter_mut().enumerate() {
                    let r = ((h >> (c * 16)) & 0xFFFF) * span >> 16;
                    let offset = ((r as f32 - self.epsilon) * scale).round() as i32;
                    *v = (*v as i32 + offset).clamp(0, 255) as u8;
                }
            }
            return;
        }
        self.lattice.row(y, n_row);
        for (x, px) in row.chunks_exact_mut(ch).enumerate() {
            let offset = (Self::sign(self.kind, n_row, x) * self.amplitude(a_row, x)).round() as i32;
            for v in &mut px[..3] {
                *v = (*v as i32 + offset).clamp(0, 255) as u8;
            }
        }
    }
}

/// Adds the perturbation to `pixels`, with `seed` the file's own seed ([`file_seed`]).
/// Every channel of every pixel moves by at most `epsilon`; alpha is untouched.
pub fn apply(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    let field = Field::new(pixels, settings, seed);
    let (w, ch) = (pixels.width as usize, pixels.channels());
    let stride = w * ch;
    let rows_per_band = 32;
    let gw = field.lattice.gw;
    let bw = field.mask.as_ref().map_or(1, |m| m.bw);
    pixels
        .data
        .par_chunks_mut(stride * rows_per_band)
        .enumerate()
        .for_each(|(band, rows)| {
            let mut n_row = vec![0.0f32; gw];
            let mut a_row = vec![0.0f32; bw];
            for (i, row) in rows.chunks_exact_mut(stride).enumerate() {
                let y = band * rows_per_band + i;
                if let Some(mask) = &field.mask {
                    mask.row(y, &mut a_row);
                }
                field.apply_row(y, row, ch, &mut n_row, &mut a_row);
            }
        });
}

/// The plain reference of [`apply`]: pixel by pixel, the field interpolated in two dimensions
/// directly from the lattice and the mask, no row buffers, no threads.
pub fn apply_reference(pixels: &mut Pixels, settings: &Perturb, seed: u64) {
    let field = Field::new(pixels, settings, seed);
    let (w, h, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
    let mut n_row = vec![0.0f32; field.lattice.gw];
    let mut a_row = vec![0.0f32; field.mask.as_ref().map_or(1, |m| m.bw)];
    for y in 0..h {
        for x in 0..w {
            // Recompute the row buffers for every pixel: slow on purpose, independent of bands.
            field.lattice.row(y, &mut n_row);
            if let Some(mask) = &field.mask {
                mask.row(y, &mut a_row);
            }
            let i = (y * w + x) * ch;
            let mut one = pixels.data[i..i + ch].to_vec();
            if field.kind == NoiseKind::Uniform {
                let h = hash3(seed, x as u64, y as u64);
                let span = 2 * field.epsilon as u64 + 1;
                let scale = if field.mask.is_some() {
                    field.amplitude(&a_row, x) / field.epsilon
                } else {
                    1.0
                };
                for c in 0..3 {
                    let r = ((h >> (c * 16)) & 0xFFFF) * span >> 16;
                    let offset = ((r as f32 - field.epsilon) * scale).round() as i32;
                    one[c] = (one[c] as i32 + offset).clamp(0, 255) as u8;
                }
            } else {
                let offset = (Field::sign(field.kind, &n_row, x) * field.amplitude(&a_row, x)).round() as i32;
                for v in &mut one[..3] {
                    *v = (*v as i32 + offset).clamp(0, 255) as u8;
                }
            }
            pixels.data[i..i + ch].copy_from_slice(&one);
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
