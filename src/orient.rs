//! Applying the EXIF orientation to the pixels, so that the image shows upright once the tag is
//! gone. Mirrors and the half turn move pixels within the buffer they are in; the four
//! transposing orientations copy into a second buffer through cache-sized tiles (so a quarter
//! turn briefly holds the picture twice: the worst case of this stage).

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
    if let Some(flip) = Flip::of(orientation) {
        let mut pixels = pixels;
        match pixels.channels() {
            3 => flip_in_place::<3>(&mut pixels.data, w, h, flip),
            _ => flip_in_place::<4>(&mut pixels.data, w, h, flip),
        }
        return pixels;
    }
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

/// The orientations that keep width and height: done in place by swapping pixels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flip {
    Horizontal,
    Vertical,
    /// Both, which is the half turn.
    Both,
}

impl Flip {
    fn of(orientation: Orientation) -> Option<Flip> {
        match orientation {
            Orientation::FlipHorizontal => Some(Flip::Horizontal),
            Orientation::FlipVertical => Some(Flip::Vertical),
            Orientation::Rotate180 => Some(Flip::Both),
            _ => None,
        }
    }
}

/// Mirrors a `w` x `h` picture in place: rows are swapped pairwise from the ends inwards (and
/// reversed for a horizontal flip), one pair per rayon task.
fn flip_in_place<const CH: usize>(data: &mut [u8], w: usize, h: usize, flip: Flip) {
    use rayon::prelude::*;
    let stride = w * CH;
    let reverse = |row: &mut [u8]| row.as_chunks_mut::<CH>().0.reverse();
    if flip == Flip::Horizontal {
        data[..stride * h].par_chunks_mut(stride).for_each(reverse);
        return;
    }
    let (top, rest) = data[..stride * h].split_at_mut(stride * (h / 2));
    let (middle, bottom) = rest.split_at_mut(stride * (h % 2));
    top.par_chunks_mut(stride)
        .zip(bottom.par_chunks_mut(stride).rev())
        .for_each(|(a, b)| {
            a.swap_with_slice(b);
            if flip == Flip::Both {
                reverse(a);
                reverse(b);
            }
        });
    if flip == Flip::Both {
        reverse(middle);
    }
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
                    let first = map.base + tx as isize * map.dx + y as isize * map.dy;
                    copy_run(src, &mut row[tx..x_end], first, map.dx);
                }
            }
        });
}

/// Copies source pixels `first`, `first + dx`, `first + 2·dx`, ... into the (non-empty) `run`.
#[inline(always)]
fn copy_run<const CH: usize>(src: &[[u8; CH]], run: &mut [[u8; CH]], first: isize, dx: isize) {
    let last = first + (run.len() as isize - 1) * dx;
    let (low, high) = (first.min(last), first.max(last));
    // Every source pixel of the run lies between its two ends.
    assert!(low >= 0 && (high as usize) < src.len());
    if CH == 3 && (high as usize) + 1 < src.len() {
        // Three-byte pixels as four-byte words (one load and one store each, where a [u8; 3]
        // takes two of each): every store's fourth byte is the first of the next pixel, which
        // the next store writes; the run's last pixel is copied on its own.
        let last = run.len() - 1;
        // Both pointers come from the whole slices, so every store stays within what `to` may
        // write (the last word of the loop ends inside the run's last pixel).
        let (from, to) = (src.as_ptr().cast::<u8>(), run.as_mut_ptr().cast::<u8>());
        let mut s = first;
        for k in 0..last {
            // SAFETY: `s` stays between `low` and `high`, and `high + 1 < src.len()`, so the
            // four bytes from 3·s lie within `src`. `k + 1 < run.len()`, so the four bytes from
            // 3·k lie within `run`'s 3·run.len() bytes.
            unsafe {
                let word = std::ptr::read_unaligned(from.offset(3 * s).cast::<u32>());
                std::ptr::write_unaligned(to.add(3 * k).cast::<u32>(), word);
            }
            s += dx;
        }
        run[last] = src[s as usize];
    } else {
        let mut s = first;
        for d in run {
            *d = src[s as usize];
            s += dx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;
    use image::{DynamicImage, RgbImage, RgbaImage};

    fn numbered(w: u32, h: u32, layout: Layout) -> Pixels {
        let data = (0..w * h)
            .flat_map(|i| [(i % 251) as u8, (i / 251) as u8, 7, (i % 13) as u8])
            .collect::<Vec<u8>>()
            .chunks(4)
            .flat_map(|p| p[..layout.channels()].to_vec())
            .collect();
        Pixels::new(w, h, layout, data)
    }

    /// `image`'s own orientation code is the reference.
    #[test]
    fn matches_image_crate_for_all_eight_orientations_on_awkward_sizes() {
        for layout in [Layout::Rgb8, Layout::Rgba8] {
            for (w, h) in [(1, 1), (3, 7), (65, 17), (130, 67), (64, 129)] {
                for exif in 1..=8 {
                    let o = Orientation::from_exif(exif).unwrap();
                    let px = numbered(w, h, layout);
                    let mut reference = match layout {
                        Layout::Rgb8 => {
                            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, px.data.clone()).unwrap())
                        }
                        Layout::Rgba8 => {
                            DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, px.data.clone()).unwrap())
                        }
                    };
                    reference.apply_orientation(o);
                    let got = apply(px, o);
                    assert_eq!(
                        (got.width, got.height),
                        (reference.width(), reference.height()),
                        "exif {exif}"
                    );
                    assert_eq!(got.data, reference.into_bytes(), "{layout:?} exif {exif} {w}x{h}");
                }
            }
        }
    }
}
