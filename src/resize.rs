//! Downscaling to a maximum long edge with fast_image_resize (Lanczos3, alpha-aware). Never
//! upscales: a photo already within the limit passes through untouched.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result, Source};
use crate::pixels::{Layout, Pixels};

/// The size a `width` x `height` image takes when its long edge is limited to `max_edge`,
/// keeping the aspect ratio (rounded, at least 1 pixel per side).
pub fn fitted_size(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_edge || max_edge == 0 {
        return (width, height);
    }
    let scale = max_edge as f64 / long as f64;
    let fit = |v: u32| ((v as f64 * scale).round() as u32).clamp(1, max_edge);
    if width >= height {
        (max_edge, fit(height))
    } else {
        (fit(width), max_edge)
    }
}

/// Shrinks `pixels` so that its long edge is at most `max_edge`.
pub fn fit_long_edge(pixels: Pixels, max_edge: u32) -> Result<Pixels> {
    let (w, h) = fitted_size(pixels.width, pixels.height, max_edge);
    if (w, h) == (pixels.width, pixels.height) {
        return Ok(pixels);
    }
    let out = resize_exact(&pixels, w, h)?;
    crate::pixels::recycle(pixels.data);
    Ok(out)
}

/// Resamples `pixels` to exactly `w` x `h` (Lanczos3; alpha-aware for RGBA).
pub fn resize_exact(pixels: &Pixels, w: u32, h: u32) -> Result<Pixels> {
    let pixel_type = match pixels.layout {
        Layout::Rgb8 => PixelType::U8x3,
        Layout::Rgba8 => PixelType::U8x4,
    };
    let src = ImageRef::new(pixels.width, pixels.height, &pixels.data, pixel_type)
        .map_err(|e| Error::Resize(Source::from(e)))?;
    let mut dst = Image::new(w, h, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| Error::Resize(Source::from(e)))?;
    Ok(Pixels::new(w, h, pixels.layout, dst.into_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_size_keeps_aspect_and_never_upscales() {
        assert_eq!(fitted_size(4000, 3000, 1080), (1080, 810));
        assert_eq!(fitted_size(3000, 4000, 1080), (810, 1080));
        assert_eq!(fitted_size(800, 600, 1080), (800, 600));
        assert_eq!(fitted_size(10000, 1, 100), (100, 1));
    }

    #[test]
    fn resize_of_flat_image_stays_flat() {
        let px = Pixels::new(300, 200, Layout::Rgb8, vec![77; 300 * 200 * 3]);
        let out = fit_long_edge(px, 150).unwrap();
        assert_eq!((out.width, out.height), (150, 100));
        assert!(out.data.iter().all(|&v| v == 77));
    }
}
