//! What makes a text readable on any photo: the outline (a disc-shaped dilation of the
//! coverage) and the soft shadow (three box blurs, shifted).

use super::raster::Mask;

/// Grows a mask by `r` pixels in every direction (a disc-shaped maximum filter).
pub(super) fn dilate(mask: &Mask, r: usize) -> Mask {
    if r == 0 {
        return mask.clone();
    }
    let (w, h) = (mask.width, mask.height);
    // The disc as rows: at vertical distance dy it spans `half_widths[dy]` pixels either side.
    let half_widths: Vec<usize> = (0..=r)
        .map(|dy| (((r * r - dy * dy) as f32).sqrt()).round() as usize)
        .collect();
    // Horizontal maxima over every half-width up to r, each from the one before: the window
    // x ± k is the union of the windows (x - 1) ± (k - 1), x ± (k - 1) and (x + 1) ± (k - 1),
    // with the ends clamped to the row. One pass of three loads and two maxima per pixel,
    // which vectorises.
    let mut horizontal: Vec<Vec<u8>> = vec![mask.data.clone()];
    for k in 1..=r {
        let prev = &horizontal[k - 1];
        let mut next = vec![0u8; w * h];
        for (out, row) in next.chunks_exact_mut(w).zip(prev.chunks_exact(w)) {
            if w == 1 {
                out[0] = row[0];
                continue;
            }
            out[0] = row[0].max(row[1]);
            out[w - 1] = row[w - 2].max(row[w - 1]);
            let (left, centre, right) = (&row[..w - 2], &row[1..w - 1], &row[2..]);
            for (((o, &a), &c), &b) in out[1..w - 1].iter_mut().zip(left).zip(centre).zip(right) {
                *o = a.max(c).max(b);
            }
        }
        horizontal.push(next);
    }
    // Each output row: the maximum of the rows dy above and below at their half-widths.
    let mut out = Mask::new(w, h);
    for (y, dst) in out.data.chunks_exact_mut(w).enumerate() {
        for (dy, &hw) in half_widths.iter().enumerate() {
            for sy in [y.checked_sub(dy), Some(y + dy).filter(|&v| v < h)]
                .into_iter()
                .flatten()
            {
                let src = &horizontal[hw][sy * w..(sy + 1) * w];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = (*d).max(v);
                }
            }
        }
    }
    out
}

/// A soft shadow: the mask box-blurred three times with radius `r`, shifted by (`dx`, `dy`).
pub(super) fn shadow(mask: &Mask, r: usize, dx: usize, dy: usize) -> Mask {
    let (w, h) = (mask.width, mask.height);
    let mut buf: Vec<u32> = mask.data.iter().map(|&v| v as u32).collect();
    let mut tmp = vec![0u32; w * h];
    for _ in 0..3 {
        box_rows(&buf, &mut tmp, w, r);
        box_columns(&tmp, &mut buf, w, r);
    }
    let mut out = Mask::new(w, h);
    for y in dy..h {
        for x in dx..w {
            out.data[y * w + x] = buf[(y - dy) * w + (x - dx)].min(255) as u8;
        }
    }
    out
}

/// The sum of each value's neighbours within `r` along its row (the window clipped at the
/// ends), divided by 2r + 1: a running sum, one add and one subtract per value.
pub(super) fn box_rows(src: &[u32], dst: &mut [u32], w: usize, r: usize) {
    let n = (2 * r + 1) as u32;
    for (s, d) in src.chunks_exact(w).zip(dst.chunks_exact_mut(w)) {
        let mut sum: u32 = s[..(r + 1).min(w)].iter().sum();
        for x in 0..w {
            d[x] = sum / n;
            if x + r + 1 < w {
                sum += s[x + r + 1];
            }
            if x >= r {
                sum -= s[x - r];
            }
        }
    }
}

/// [`box_rows`] down the columns, a whole row of running sums at a time.
pub(super) fn box_columns(src: &[u32], dst: &mut [u32], w: usize, r: usize) {
    let n = (2 * r + 1) as u32;
    let rows: Vec<&[u32]> = src.chunks_exact(w).collect();
    let mut sum = vec![0u32; w];
    for row in rows.iter().take(r + 1) {
        sum.iter_mut().zip(*row).for_each(|(s, &v)| *s += v);
    }
    for (y, d) in dst.chunks_exact_mut(w).enumerate() {
        d.iter_mut().zip(&sum).for_each(|(d, &s)| *d = s / n);
        if let Some(entering) = rows.get(y + r + 1) {
            sum.iter_mut().zip(*entering).for_each(|(s, &v)| *s += v);
        }
        if y >= r {
            sum.iter_mut().zip(rows[y - r]).for_each(|(s, &v)| *s -= v);
        }
    }
}

/// imageproc, an independent implementation, as the oracle for both kernels.
#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};
    use imageproc::morphology::{grayscale_dilate, Mask as Element};

    /// A coverage mask like a rasterised text's: mostly empty, with soft-edged blobs.
    fn blobs(w: usize, h: usize, seed: u32) -> Mask {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        let mut mask = Mask::new(w, h);
        for _ in 0..(w * h / 40).max(1) {
            let (x, y, v) = (next() as usize % w, next() as usize % h, (next() % 256) as u8);
            mask.data[y * w + x] = v;
        }
        mask
    }

    fn gray(w: usize, h: usize, data: Vec<u8>) -> GrayImage {
        GrayImage::from_raw(w as u32, h as u32, data).unwrap()
    }

    #[test]
    fn dilate_equals_imageprocs_grayscale_dilation_by_the_same_disc() {
        for (w, h, r, seed) in [
            (1, 1, 1, 1),
            (9, 4, 2, 2),
            (40, 25, 3, 3),
            (64, 64, 6, 4),
            (33, 70, 9, 5),
        ] {
            let mask = blobs(w, h, seed);
            // The disc `dilate` promises: at vertical distance dy, round(sqrt(r² - dy²)) pixels
            // either side of the centre.
            let mut disc = GrayImage::new(2 * r as u32 + 1, 2 * r as u32 + 1);
            for dy in 0..=r {
                let half = ((r * r - dy * dy) as f32).sqrt().round() as usize;
                for dx in 0..=half {
                    for (x, y) in [
                        (r + dx, r + dy),
                        (r - dx, r + dy),
                        (r + dx, r - dy),
                        (r - dx, r - dy),
                    ] {
                        disc.put_pixel(x as u32, y as u32, Luma([255]));
                    }
                }
            }
            let element = Element::from_image(&disc, r as u8, r as u8);
            let theirs = grayscale_dilate(&gray(w, h, mask.data.clone()), &element);
            assert_eq!(dilate(&mask, r).data, theirs.into_raw(), "{w}x{h}, r = {r}");
        }
    }

    #[test]
    fn one_box_blur_pass_equals_imageprocs_box_filter() {
        for (w, h, r, seed) in [(1, 1, 2, 6), (12, 5, 1, 7), (40, 25, 3, 8), (64, 48, 7, 9)] {
            let mask = blobs(w, h, seed);
            let src: Vec<u32> = mask.data.iter().map(|&v| v as u32).collect();
            let (mut tmp, mut ours) = (vec![0; w * h], vec![0; w * h]);
            box_rows(&src, &mut tmp, w, r);
            box_columns(&tmp, &mut ours, w, r);
            // imageproc repeats the edge pixels where the window leaves the image; photoshield
            // counts zeros there. A border of r zeros makes the two the same.
            let (pw, ph) = (w + 2 * r, h + 2 * r);
            let mut padded = vec![0u8; pw * ph];
            for y in 0..h {
                padded[(y + r) * pw + r..(y + r) * pw + r + w]
                    .copy_from_slice(&mask.data[y * w..(y + 1) * w]);
            }
            let theirs = imageproc::filter::box_filter(&gray(pw, ph, padded), r as u32, r as u32);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(
                        ours[y * w + x],
                        theirs.get_pixel((x + r) as u32, (y + r) as u32)[0] as u32,
                        "{w}x{h}, r = {r}, at ({x}, {y})"
                    );
                }
            }
        }
    }
}
