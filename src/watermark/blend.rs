//! From layers to pixels: the premultiplied stamp (composited, faded, rotated), and the blend
//! kernel that draws it onto a photo, in parallel row bands, touching only the stamp's runs.

use rayon::prelude::*;

use super::raster::Mask;
use crate::pixels::Pixels;
use std::sync::Arc;

/// A stamp ready to blend onto images with `channels` channels: premultiplied colour (for RGBA
/// images the alpha rides along as a fourth "colour") and 255 - alpha, both `channels` bytes per
/// pixel, so that the kernel is one byte-wise formula that vectorises.
#[derive(Clone, Debug)]
// Hook for tests/watermark.rs and benches/watermark.rs (placements and the blend kernels): hidden, not part of the API.
#[doc(hidden)]
pub struct Stamp {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// Premultiplied colour, `channels` bytes per pixel: each byte is at most its alpha.
    pub colour: Vec<u8>,
    /// 255 - alpha, repeated `channels` times per pixel.
    pub inv: Vec<u8>,
    /// Runs of columns `[start, end)` holding non-zero alpha, row after row (gaps shorter than
    /// `RUN_GAP` are bridged): the kernel visits only these.
    pub runs: Vec<(u32, u32)>,
    /// Per row, the range of `runs` that belongs to it.
    pub row_runs: Vec<(u32, u32)>,
}

/// Transparent gaps shorter than this stay inside a run (a run has a fixed cost).
const RUN_GAP: usize = 8;

impl Stamp {
    /// A stamp from premultiplied RGBA rows (each colour byte at most its alpha) for images with
    /// `channels` (3 or 4) channels.
    pub fn new(width: usize, height: usize, rgba: &[u8], channels: usize) -> Stamp {
        assert_eq!(rgba.len(), width * height * 4);
        let mut runs: Vec<(u32, u32)> = Vec::new();
        let mut row_runs = Vec::with_capacity(height);
        for row in rgba.chunks_exact(width * 4) {
            let first = runs.len() as u32;
            let mut open: Option<(usize, usize)> = None;
            for (x, p) in row.chunks_exact(4).enumerate() {
                if p[3] == 0 {
                    continue;
                }
                open = match open {
                    Some((s, e)) if x - e < RUN_GAP => Some((s, x + 1)),
                    Some((s, e)) => {
                        runs.push((s as u32, e as u32));
                        Some((x, x + 1))
                    }
                    None => Some((x, x + 1)),
                };
            }
            if let Some((s, e)) = open {
                runs.push((s as u32, e as u32));
            }
            row_runs.push((first, runs.len() as u32));
        }
        let mut colour = Vec::with_capacity(width * height * channels);
        let mut inv = Vec::with_capacity(width * height * channels);
        for p in rgba.chunks_exact(4) {
            colour.extend_from_slice(&p[..channels]);
            inv.extend(std::iter::repeat_n(255 - p[3], channels));
        }
        Stamp {
            width,
            height,
            channels,
            colour,
            inv,
            runs,
            row_runs,
        }
    }

    /// Alpha of pixel (x, y).
    pub fn alpha(&self, x: usize, y: usize) -> u8 {
        255 - self.inv[(y * self.width + x) * self.channels]
    }
}

/// A premultiplied RGBA image while a stamp is being built.
#[derive(Clone, Debug)]
pub(super) struct Premul {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) data: Vec<u8>,
}

impl Premul {
    /// Straight-colour layers composited bottom to top: (colour, coverage, strength).
    pub(super) fn from_layers(width: usize, height: usize, layers: &[([u8; 3], &Mask, f32)]) -> Premul {
        let mut data = vec![0u8; width * height * 4];
        for (colour, mask, strength) in layers {
            let k = (strength.clamp(0.0, 1.0) * 256.0) as u32;
            for (px, &m) in data.chunks_exact_mut(4).zip(&mask.data) {
                let a = (m as u32 * k) >> 8;
                if a == 0 {
                    continue;
                }
                // Premultiplied "over": out = src + dst * (1 - a).
                let inv = 255 - a;
                for c in 0..3 {
                    px[c] = (div255(colour[c] as u32 * a) + div255(px[c] as u32 * inv)) as u8;
                }
                px[3] = (a + div255(px[3] as u32 * inv)) as u8;
            }
        }
        Premul { width, height, data }
    }

    /// Multiplies every pixel (premultiplied, so all four bytes) by `opacity`; alphas that end
    /// below 2 (invisible) become exactly transparent, so the kernel skips them.
    pub(super) fn faded(mut self, opacity: f32) -> Premul {
        let k = (opacity.clamp(0.0, 1.0) * 256.0).round() as u32;
        for p in self.data.chunks_exact_mut(4) {
            for v in p.iter_mut() {
                *v = ((*v as u32 * k) >> 8) as u8;
            }
            if p[3] < 2 {
                p.fill(0);
            }
        }
        self
    }

    pub(super) fn into_stamp(self, channels: usize) -> Stamp {
        Stamp::new(self.width, self.height, &self.data, channels)
    }

    /// The stamp rotated by `degrees` counter-clockwise about its centre (bilinear).
    pub(super) fn rotated(self, degrees: f32) -> Premul {
        if degrees.rem_euclid(360.0) == 0.0 {
            return self;
        }
        let (s, c) = degrees.to_radians().sin_cos();
        let (w, h) = (self.width as f32, self.height as f32);
        let nw = (w * c.abs() + h * s.abs()).ceil() as usize;
        let nh = (w * s.abs() + h * c.abs()).ceil() as usize;
        let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw as f32 / 2.0, nh as f32 / 2.0);
        let mut data = vec![0u8; nw * nh * 4];
        for y in 0..nh {
            for x in 0..nw {
                // Inverse rotation (screen y points down, so counter-clockwise flips the sign).
                let (dx, dy) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
                let sx = c * dx - s * dy + cx - 0.5;
                let sy = s * dx + c * dy + cy - 0.5;
                if sx <= -1.0 || sy <= -1.0 || sx >= w || sy >= h {
                    continue;
                }
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let sample = |xx: f32, yy: f32, ch: usize| -> f32 {
                    if xx < 0.0 || yy < 0.0 || xx >= w || yy >= h {
                        0.0
                    } else {
                        self.data[(yy as usize * self.width + xx as usize) * 4 + ch] as f32
                    }
                };
                for ch in 0..4 {
                    let v = sample(x0, y0, ch) * (1.0 - fx) * (1.0 - fy)
                        + sample(x0 + 1.0, y0, ch) * fx * (1.0 - fy)
                        + sample(x0, y0 + 1.0, ch) * (1.0 - fx) * fy
                        + sample(x0 + 1.0, y0 + 1.0, ch) * fx * fy;
                    data[(y * nw + x) * 4 + ch] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Premul {
            width: nw,
            height: nh,
            data,
        }
    }
}

/// round(x / 255) for 0 <= x <= 65535, without a division.
#[inline(always)]
pub(crate) fn div255(x: u32) -> u32 {
    (x + 128 + ((x + 128) >> 8)) >> 8
}

/// Rows per parallel band when blending a large image.
const BAND_ROWS: usize = 64;

/// Blends every placement, in order, onto `pixels`; large images go in parallel row bands (each
/// band applies the placements in the same order, so the result does not depend on threads).
// Hook for tests/watermark.rs and benches/watermark.rs: hidden, not part of the API.
#[doc(hidden)]
pub fn blend_all(pixels: &mut Pixels, placements: &[(Arc<Stamp>, i64, i64)]) {
    if placements.is_empty() {
        return;
    }
    let (width, height, ch) = (pixels.width as usize, pixels.height as usize, pixels.channels());
    let stride = width * ch;
    let band = |(index, rows): (usize, &mut [u8])| {
        let y0 = index * BAND_ROWS;
        for (stamp, x, y) in placements {
            blend_region(rows, width, ch, y0, rows.len() / stride, stamp, *x, *y);
        }
    };
    if pixels.pixel_count() >= 1 << 20 {
        pixels
            .data
            .par_chunks_mut(stride * BAND_ROWS)
            .enumerate()
            .for_each(band);
    } else {
        pixels
            .data
            .chunks_mut(stride * BAND_ROWS)
            .enumerate()
            .for_each(band);
    }
    let _ = height;
}

/// Blends `stamp` with its top-left at (`sx`, `sy`) into the rows `y0 .. y0 + nrows` held in
/// `rows`; everything outside both is left alone.
#[allow(clippy::too_many_arguments)]
fn blend_region(
    rows: &mut [u8],
    width: usize,
    ch: usize,
    y0: usize,
    nrows: usize,
    stamp: &Stamp,
    sx: i64,
    sy: i64,
) {
    let top = sy.max(y0 as i64);
    let bottom = (sy + stamp.height as i64).min((y0 + nrows) as i64);
    let stride = width * ch;
    for y in top..bottom {
        let srow = (y - sy) as usize;
        let row = &mut rows[(y as usize - y0) * stride..(y as usize - y0 + 1) * stride];
        let (first, last) = stamp.row_runs[srow];
        for &(s0, s1) in &stamp.runs[first as usize..last as usize] {
            // Clip the run to the image.
            let x_start = (sx + s0 as i64).max(0);
            let x_end = (sx + s1 as i64).min(width as i64);
            if x_start >= x_end {
                continue;
            }
            let from = (srow * stamp.width + (x_start - sx) as usize) * ch;
            let len = (x_end - x_start) as usize * ch;
            let dst = &mut row[x_start as usize * ch..x_start as usize * ch + len];
            blend_span(dst, &stamp.colour[from..from + len], &stamp.inv[from..from + len]);
        }
    }
}

/// The blend kernel, premultiplied "over" byte by byte: `d = c + round(d * inv / 255)`, where
/// `c` is the stamp's premultiplied colour and `inv` its 255 - alpha (for an RGBA image the alpha
/// byte follows the same formula). Integer only, in 16 bits, no branch and no bounds check in
/// the loop, so the compiler vectorises it.
#[inline]
pub(crate) fn blend_span(dst: &mut [u8], colour: &[u8], inv: &[u8]) {
    let n = dst.len().min(colour.len()).min(inv.len());
    let (dst, colour, inv) = (&mut dst[..n], &colour[..n], &inv[..n]);
    for i in 0..n {
        let x = dst[i] as u16 * inv[i] as u16 + 128;
        dst[i] = colour[i].wrapping_add(((x + (x >> 8)) >> 8) as u8);
    }
}

/// The plain reference of [`blend_span`]: one pixel at a time, by index, with a division. A test
/// hook: hidden from the documentation, not part of the supported API.
#[doc(hidden)]
pub fn blend_reference(pixels: &mut Pixels, stamp: &Stamp, sx: i64, sy: i64) {
    let ch = pixels.channels();
    assert_eq!(ch, stamp.channels);
    for y in 0..stamp.height as i64 {
        for x in 0..stamp.width as i64 {
            let (ix, iy) = (sx + x, sy + y);
            if ix < 0 || iy < 0 || ix >= pixels.width as i64 || iy >= pixels.height as i64 {
                continue;
            }
            let a = stamp.alpha(x as usize, y as usize) as u32;
            let s = (y as usize * stamp.width + x as usize) * ch;
            let d = (iy as usize * pixels.width as usize + ix as usize) * ch;
            for c in 0..ch {
                let v = stamp.colour[s + c] as u32 + (pixels.data[d + c] as u32 * (255 - a) + 127) / 255;
                pixels.data[d + c] = v as u8;
            }
        }
    }
}
