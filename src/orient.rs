//! Applying the EXIF orientation to the pixels, so that the image shows upright once the tag is
//! gone. The four transposing orientations go through cache-sized tiles.

use image::metadata::Orientation;

use crate::pixels::Pixels;

/// Side of the square tiles the transposing cases copy through (fits L1 for RGBA).
const TILE: usize = 64;

/// Returns `pixels` transformed so that they display as `orientation` asks.
pub fn apply(pixels: Pixels, orientation: Orientation) -> Pixels {
    if orientation == Orientation::NoTransforms {
        return pixels;
    }
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let swaps = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (ow, oh) = if swaps { (h, w) } else { (w, h) };
    let ch = pixels.channels();
    let mut out = vec![0u8; pixels.data.len()];
    // For each output pixel (x, y), the source pixel it takes.
    let source = source_of(orientation, w, h);
    if swaps {
        for ty in (0..oh).step_by(TILE) {
            for tx in (0..ow).step_by(TILE) {
                for y in ty..(ty + TILE).min(oh) {
                    let row = &mut out[y * ow * ch..(y + 1) * ow * ch];
                    for x in tx..(tx + TILE).min(ow) {
                        let (sx, sy) = source(x, y);
                        let s = (sy * w + sx) * ch;
                        row[x * ch..x * ch + ch].copy_from_slice(&pixels.data[s..s + ch]);
                    }
                }
            }
        }
    } else {
        for y in 0..oh {
            let row = &mut out[y * ow * ch..(y + 1) * ow * ch];
            for x in 0..ow {
                let (sx, sy) = source(x, y);
                let s = (sy * w + sx) * ch;
                row[x * ch..x * ch + ch].copy_from_slice(&pixels.data[s..s + ch]);
            }
        }
    }
    Pixels::new(ow as u32, oh as u32, pixels.layout, out)
}

/// Maps an output coordinate to its source coordinate in a `w` x `h` image.
fn source_of(orientation: Orientation, w: usize, h: usize) -> impl Fn(usize, usize) -> (usize, usize) {
    move |x, y| match orientation {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (w - 1 - x, y),
        Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
        Orientation::FlipVertical => (x, h - 1 - y),
        // EXIF 5: transpose.
        Orientation::Rotate90FlipH => (y, x),
        // EXIF 6: rotate 90 clockwise.
        Orientation::Rotate90 => (y, h - 1 - x),
        // EXIF 7: transverse.
        Orientation::Rotate270FlipH => (w - 1 - y, h - 1 - x),
        // EXIF 8: rotate 270 clockwise.
        Orientation::Rotate270 => (w - 1 - y, x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;
    use image::{DynamicImage, RgbImage};

    fn numbered(w: u32, h: u32) -> Pixels {
        let data = (0..w * h)
            .flat_map(|i| [(i % 251) as u8, (i / 251) as u8, 7])
            .collect();
        Pixels::new(w, h, Layout::Rgb8, data)
    }

    /// `image`'s own orientation code is the reference.
    #[test]
    fn matches_image_crate_for_all_eight_orientations_on_awkward_sizes() {
        for (w, h) in [(1, 1), (3, 7), (65, 17), (130, 67)] {
            for exif in 1..=8 {
                let o = Orientation::from_exif(exif).unwrap();
                let px = numbered(w, h);
                let mut reference =
                    DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, px.data.clone()).unwrap());
                reference.apply_orientation(o);
                let got = apply(px, o);
                assert_eq!(
                    (got.width, got.height),
                    (reference.width(), reference.height()),
                    "exif {exif}"
                );
                assert_eq!(got.data, reference.into_rgb8().into_raw(), "exif {exif} {w}x{h}");
            }
        }
    }
}
