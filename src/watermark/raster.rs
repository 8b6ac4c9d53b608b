//! Text to coverage: lays out a text with ab_glyph (kerned, several lines, aligned) and
//! rasterises it into an 8-bit coverage mask.

use ab_glyph::{Font, FontArc, Glyph, PxScale, ScaleFont};

use crate::error::{Error, Result};

/// An 8-bit coverage mask.
#[derive(Clone, Debug, PartialEq, Eq)]
// Hook for tests/edges.rs and tests/watermark.rs (Renderer::text_coverage): hidden, not part of the API.
#[doc(hidden)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Mask {
    pub(super) fn new(width: usize, height: usize) -> Mask {
        Mask {
            width,
            height,
            data: vec![0; width * height],
        }
    }
}

/// Lays out `text` (kerned, one line per `\n`, lines aligned by `align` 0/1/2 = left/centre/
/// right) at `px` pixels per em, and rasterises it into a coverage mask with `pad` pixels of
/// empty border. Characters the font lacks are returned as an error listing them.
pub(crate) fn rasterise(font: &FontArc, text: &str, px: f32, align: u8, pad: usize) -> Result<Mask> {
    let missing = missing_glyphs(font, text);
    if !missing.is_empty() {
        return Err(Error::Options(missing_message(&missing)));
    }
    let scale = PxScale::from(px);
    let scaled = font.as_scaled(scale);
    let line_height = scaled.height() + scaled.line_gap();
    let mut lines: Vec<(Vec<Glyph>, f32)> = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let mut glyphs = Vec::new();
        let mut x = 0.0f32;
        let mut prev = None;
        for ch in line.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(
                scale,
                ab_glyph::point(x, scaled.ascent() + i as f32 * line_height),
            ));
            x += scaled.h_advance(id);
            prev = Some(id);
        }
        lines.push((glyphs, x));
    }
    let widest = lines.iter().map(|l| l.1).fold(0.0, f32::max);
    let height = line_height * lines.len() as f32 - scaled.line_gap();
    let (w, h) = (
        widest.ceil() as usize + 2 * pad + 2,
        height.ceil() as usize + 2 * pad + 2,
    );
    let mut mask = Mask::new(w, h);
    for (glyphs, line_width) in lines {
        let shift = match align {
            0 => 0.0,
            1 => (widest - line_width) / 2.0,
            _ => widest - line_width,
        } + pad as f32
            + 1.0;
        for mut glyph in glyphs {
            glyph.position.x += shift;
            glyph.position.y += pad as f32 + 1.0;
            if let Some(outlined) = font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    let x = b.min.x as i64 + gx as i64;
                    let y = b.min.y as i64 + gy as i64;
                    if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                        let v = &mut mask.data[y as usize * w + x as usize];
                        *v = (*v).max((cov * 255.0).round().min(255.0) as u8);
                    }
                });
            }
        }
    }
    Ok(mask)
}

/// Characters of `text` (other than line breaks and spaces) that `font` has no glyph for.
pub(crate) fn missing_glyphs(font: &FontArc, text: &str) -> Vec<char> {
    let mut missing: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && font.glyph_id(*c).0 == 0)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

pub(super) fn missing_message(missing: &[char]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|c| format!("'{c}' (U+{:04X})", *c as u32))
        .collect();
    format!(
        "the font has no glyph for {}; choose another with --font",
        list.join(", ")
    )
}
