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
    // Every byte of `out` is written below.
    let mut out = crate::pixels::scratch_buffer(pixels.data.len());
    let map = source_map(orientation, w, h);
    match pixels.channels() {
        3 => copy_mapped::<3>(&pixels.data, &mut out, ow, oh, map),
        _ => copy_mapped::<4>(&pixels.data, &mut out, ow, oh, map),
    }
    crate::pixels::recycle(pixels.data);
    Pixels::new(ow as u32, oh as u32, pixels.layout, out)
}

/// The source pixel index of output pixel (x, y) is `base + x * dx + y * dy`: every EXIF
/// orientation is such an affine map (steps of ±1 or ±width).
#[derive(Clone, Copy)]
struct Map {
    base: isize,
    dx: isize,
    dy: isize,
}

fn source_map(orientation: Orientation, w: usize, h: usize) -> Map {
    let (w, h) = (w as isize, h as isize);
    let (base, dx, dy) = match orientation {
        Orientation::NoTransforms => (0, 1, w),
        Orientation::FlipHorizontal => (w - 1, -1, w),
        Orientation::Rotate180 => ((h - 1) * w + w - 1, -1, -w),
        Orientation::FlipVertical => ((h - 1) * w, 1, -w),
        // EXIF 5: transpose, output (x, y) takes source (y, x).
        Orientation::Rotate90FlipH => (0, w, 1),
        // EXIF 6: rotate 90 clockwise, source (y, h - 1 - x).
        Orientation::Rotate90 => ((h - 1) * w, -w, 1),
        // EXIF 7: transverse, source (w - 1 - y, h - 1 - x).
        Orientation::Rotate270FlipH => ((h - 1) * w + w - 1, -w, -1),
        // EXIF 8: rotate 270 clockwise, source (w - 1 - y, x).
        Orientation::Rotate270 => (w - 1, w, -1),
    };
    Map { base, dx, dy }
}

/// Copies every output pixel from its source through cache-sized tiles (a column walk through
/// the source stays within a few pages per tile). Bands of one tile row go to rayon, so a single
/// large photo uses every core.
fn copy_mapped<const CH: usize>(src: &[u8], dst: &mut [u8], ow: usize, oh: usize, map: Map) {
    use rayon::prelude::*;
    let (src, _) = src.as_chunks::<CH>();
    let (dst, _) = dst.as_chunks_mut::<CH>();
    dst[..ow * oh]
        .par_chunks_mut(TILE * ow)
        .enumerate()
        .for_each(|(band, rows)| {
            let ty = band * TILE;
            for tx in (0..ow).step_by(TILE) {
                let x_end = (tx + TILE).min(ow);
                for (i, row) in rows.chunks_exact_mut(ow).enumerate() {
                    let y = ty + i;
                    let mut s = map.base + tx as isize * map.dx + y as isize * map.dy;
                    for d in &mut row[tx..x_end] {
                        *d = src[s as usize];
                        s += map.dx;
                    }
                }
            }
        });
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
