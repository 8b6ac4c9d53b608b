//! Images generated for the benches (none are read from disk).

use photoshield::{Layout, Pixels};

/// Smooth gradients with fine texture, like a photo.
pub fn photo(w: u32, h: u32) -> Pixels {
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let t = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 13) as u8 & 31;
            data.extend([(x / 24) as u8 / 2 + t, (y / 16) as u8 / 2 + t, 128 + t]);
        }
    }
    Pixels::new(w, h, Layout::Rgb8, data)
}
