//! `compare`: what a protected copy costs in image quality and how much of its perturbation
//! survives what platforms do. Pure functions of two images of the same size.

use serde::Serialize;

use crate::codec::{self, DecodeLimits, EncodeSettings};
use crate::error::{Error, Result};
use crate::format::OutputFormat;
use crate::pixels::{Layout, Pixels};
use crate::resize;

/// The figures `photoshield compare` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Width of the compared images, in pixels.
    pub width: u32,
    /// Height of the compared images, in pixels.
    pub height: u32,
    /// Largest absolute difference of any channel of any pixel, in levels.
    pub max_abs_diff: u8,
    /// Peak signal-to-noise ratio over R, G and B, in dB (infinite for identical images).
    pub psnr_db: f64,
    /// Mean structural similarity of the luminance (8x8 windows), 1 for identical images.
    pub ssim: f64,
    /// After a JPEG q75 re-encode of both images: correlation of the luminance difference with
    /// the original difference (1 = the pattern is intact, 0 = gone).
    pub jpeg75_correlation: f64,
    /// After a JPEG q75 re-encode of both: RMS of the difference relative to before.
    pub jpeg75_energy_kept: f64,
    /// After shrinking both to half size: RMS of the difference relative to before (fine
    /// noise averages away, structured noise stays).
    pub downscale2x_energy_kept: f64,
    /// When the copy was smaller or larger than the original: the original's size, before
    /// [`to_size_of`] resized it to the copy's for the comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_resized_from: Option<(u32, u32)>,
}

fn luma(p: &Pixels) -> Vec<f64> {
    let ch = p.channels();
    p.data
        .chunks_exact(ch)
        .map(|c| 0.299 * c[0] as f64 + 0.587 * c[1] as f64 + 0.114 * c[2] as f64)
        .collect()
}

fn rgb(p: &Pixels) -> Pixels {
    p.clone().flatten([255, 255, 255])
}

/// PSNR over the RGB channels.
pub fn psnr(a: &Pixels, b: &Pixels) -> f64 {
    let (a, b) = (rgb(a), rgb(b));
    let se: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let mse = se / a.data.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Mean SSIM of the luminance over every 8x8 window (summed-area tables).
pub fn ssim(a: &Pixels, b: &Pixels) -> f64 {
    let (w, h) = (a.width as usize, a.height as usize);
    let (x, y) = (luma(a), luma(b));
    let win = 8.min(w).min(h);
    let table = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let mut t = vec![0.0; (w + 1) * (h + 1)];
        for r in 0..h {
            let mut row = 0.0;
            for c in 0..w {
                row += f(r * w + c);
                t[(r + 1) * (w + 1) + c + 1] = t[r * (w + 1) + c + 1] + row;
            }
        }
        t
    };
    let (sx, sy) = (table(&|i| x[i]), table(&|i| y[i]));
    let (sxx, syy, sxy) = (
        table(&|i| x[i] * x[i]),
        table(&|i| y[i] * y[i]),
        table(&|i| x[i] * y[i]),
    );
    let sum = |t: &[f64], r: usize, c: usize| {
        t[(r + win) * (w + 1) + c + win] - t[r * (w + 1) + c + win] - t[(r + win) * (w + 1) + c]
            + t[r * (w + 1) + c]
    };
    let (c1, c2) = ((0.01 * 255.0f64).powi(2), (0.03 * 255.0f64).powi(2));
    let n = (win * win) as f64;
    let (mut total, mut count) = (0.0, 0.0);
    for r in 0..=h - win {
        for c in 0..=w - win {
            let (mx, my) = (sum(&sx, r, c) / n, sum(&sy, r, c) / n);
            let vx = sum(&sxx, r, c) / n - mx * mx;
            let vy = sum(&syy, r, c) / n - my * my;
            let cov = sum(&sxy, r, c) / n - mx * my;
            total += ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1.0;
        }
    }
    total / count
}

fn difference(a: &Pixels, b: &Pixels) -> Vec<f64> {
    luma(b).iter().zip(luma(a)).map(|(p, o)| p - o).collect()
}

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|d| d * d).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

fn jpeg75(p: &Pixels) -> Result<Pixels> {
    let bytes = codec::encode(
        &rgb(p),
        EncodeSettings {
            format: OutputFormat::Jpeg,
            quality: 75,
        },
        None,
    )?;
    Ok(codec::decode(
        &bytes,
        crate::format::Format::Jpeg,
        DecodeLimits { max_pixels: u64::MAX },
    )?
    .pixels)
}

/// Compares an original with its protected copy (same size, as displayed).
/// The original brought to the size of `copy`, when the copy is a resized version of it (the
/// same aspect ratio, up to the rounding of one pixel): a preset's copy compares against the
/// best a resize could give. A copy of another aspect (cropped, or with a notice band) is
/// refused, since no pixel of it lines up with the original.
pub fn to_size_of(original: Pixels, copy: &Pixels) -> Result<Pixels> {
    let (ow, oh) = (original.width as u64, original.height as u64);
    let (cw, ch) = (copy.width as u64, copy.height as u64);
    if (ow, oh) == (cw, ch) {
        return Ok(original);
    }
    // Resizing rounds each side to the nearest pixel: the other side may be off by one.
    let width_fits = (ow * ch).abs_diff(cw * oh) <= oh.max(ow);
    if !width_fits {
        return Err(Error::Options(format!(
            "the images differ in shape ({}x{} and {}x{}): the copy is cropped or has a notice band, so no pixel lines up; compare a copy made without --notice or cropping",
            ow, oh, cw, ch
        )));
    }
    resize::resize_exact(&original, copy.width, copy.height)
}

/// Measures how `protected` differs from `original` (same size; alpha is ignored): the
/// difference itself, and how much of it survives a JPEG at quality 75 and a 2x downscale.
/// [`Error::Options`] when the sizes differ (see [`to_size_of`] for a resized copy).
pub fn compare(original: &Pixels, protected: &Pixels) -> Result<Comparison> {
    if (original.width, original.height) != (protected.width, protected.height) {
        return Err(Error::Options(format!(
            "the images differ in size ({}x{} and {}x{}); compare a copy made without resizing",
            original.width, original.height, protected.width, protected.height
        )));
    }
    let (o, p) = (rgb(original), rgb(protected));
    let max_abs_diff = o
        .data
        .iter()
        .zip(&p.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let d = difference(&o, &p);
    let before = rms(&d);
    let (oj, pj) = (jpeg75(&o)?, jpeg75(&p)?);
    let dj = difference(&oj, &pj);
    let (hw, hh) = ((o.width / 2).max(1), (o.height / 2).max(1));
    let (os, ps) = (
        resize::resize_exact(&o, hw, hh)?,
        resize::resize_exact(&p, hw, hh)?,
    );
    let ds = difference(&os, &ps);
    let ratio = |after: f64| if before == 0.0 { 0.0 } else { after / before };
    Ok(Comparison {
        width: o.width,
        height: o.height,
        max_abs_diff,
        psnr_db: psnr(&o, &p),
        ssim: ssim(&o, &p),
        jpeg75_correlation: correlation(&d, &dj),
        jpeg75_energy_kept: ratio(rms(&dj)),
        downscale2x_energy_kept: ratio(rms(&ds)),
        original_resized_from: None,
    })
}

/// Decodes a file for comparison: upright, RGB.
pub fn load(bytes: &[u8]) -> Result<Pixels> {
    let format = crate::format::sniff(bytes)?;
    let decoded = codec::decode(
        bytes,
        format,
        DecodeLimits {
            max_pixels: crate::options::DEFAULT_MAX_PIXELS,
        },
    )?;
    let px = crate::orient::apply(decoded.pixels, decoded.orientation);
    Ok(if px.layout == Layout::Rgba8 {
        px.flatten([255, 255, 255])
    } else {
        px
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_matches_a_hand_computation() {
        // 2x1 image, differences 0,0,0 and 3,4,0 over six channel values: MSE = 25/6.
        let a = Pixels::new(2, 1, Layout::Rgb8, vec![10, 20, 30, 40, 50, 60]);
        let b = Pixels::new(2, 1, Layout::Rgb8, vec![10, 20, 30, 43, 54, 60]);
        let want = 10.0 * (255.0f64 * 255.0 / (25.0 / 6.0)).log10();
        assert!((psnr(&a, &b) - want).abs() < 1e-9, "{} vs {want}", psnr(&a, &b));
        assert!(psnr(&a, &a).is_infinite());
    }

    #[test]
    fn ssim_is_one_for_identical_and_lower_for_noisy() {
        // A smooth ramp, then the same ramp with strong pixel noise.
        let data: Vec<u8> = (0..32 * 32 * 3).map(|i| ((i / 3) % 32 * 6) as u8).collect();
        let a = Pixels::new(32, 32, Layout::Rgb8, data.clone());
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let noisy: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, v)| v.saturating_add((i % 17) as u8))
            .collect();
        assert!(ssim(&a, &Pixels::new(32, 32, Layout::Rgb8, noisy)) < 0.99);
    }
}
