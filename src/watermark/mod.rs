//! The visible protection: copyright text, logo and notice line. This module holds the settings
//! and the renderer, which sizes and places the stamps (3x3 grid or a diagonal tile) and keeps
//! them in a cache; `raster` turns text into coverage, `effects` adds the outline and shadow,
//! `blend` builds the premultiplied stamp and draws it. Pixels are touched only inside each
//! stamp's rectangle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixels::{Layout, Pixels};

mod blend;
mod effects;
mod raster;

pub(crate) use blend::div255;
use blend::Premul;
pub use blend::{blend_all, blend_reference, Stamp};
use effects::{dilate, shadow};
use raster::missing_message;
pub use raster::Mask;
pub(crate) use raster::{missing_glyphs, rasterise};

/// The font embedded in the binary: DejaVu Sans Bold (licence in fonts/LICENSE-DejaVu.txt).
pub(crate) static BUNDLED_FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Where a watermark or logo goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// Top left corner.
    TopLeft,
    /// Top edge, centred.
    Top,
    /// Top right corner.
    TopRight,
    /// Left edge, centred.
    Left,
    /// The middle of the image.
    Center,
    /// Right edge, centred.
    Right,
    /// Bottom left corner.
    BottomLeft,
    /// Bottom edge, centred.
    Bottom,
    /// Bottom right corner (the default).
    #[default]
    BottomRight,
    /// Repeated diagonally across the whole image.
    Tile,
}

impl Position {
    /// (horizontal, vertical) anchor in 0, 1, 2 = start, middle, end; `None` for tile.
    fn anchor(self) -> Option<(u8, u8)> {
        use Position::*;
        Some(match self {
            TopLeft => (0, 0),
            Top => (1, 0),
            TopRight => (2, 0),
            Left => (0, 1),
            Center => (1, 1),
            Right => (2, 1),
            BottomLeft => (0, 2),
            Bottom => (1, 2),
            BottomRight => (2, 2),
            Tile => return None,
        })
    }
}

/// Text colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Colour {
    /// White on dark backgrounds, black on light ones, chosen per placement.
    #[default]
    Auto,
    /// This colour (red, green, blue).
    Rgb([u8; 3]),
}

impl std::str::FromStr for Colour {
    type Err = String;
    fn from_str(s: &str) -> Result<Colour, String> {
        let hex = |h: &str| u8::from_str_radix(h, 16).map_err(|_| format!("invalid colour '{s}'"));
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Colour::Auto),
            "white" => Ok(Colour::Rgb([255, 255, 255])),
            "black" => Ok(Colour::Rgb([0, 0, 0])),
            h if h.len() == 7 && h.starts_with('#') => {
                Ok(Colour::Rgb([hex(&h[1..3])?, hex(&h[3..5])?, hex(&h[5..7])?]))
            }
            _ => Err(format!("invalid colour '{s}': use auto, white, black or #rrggbb")),
        }
    }
}

/// How the notice line is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum NoticeStyle {
    /// A dark band added under the image (the canvas grows); nothing of the photo is covered.
    #[default]
    Band,
    /// Drawn over the bottom edge of the photo.
    Overlay,
}

/// Visible watermark settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Watermark {
    /// Text with tokens `{year}`, `{date}` (capture date from EXIF, else today) and
    /// `{filename}`; `\n` or a newline starts a new line. Default: none.
    pub text: Option<String>,
    /// Font file bytes (TrueType/OpenType). Default: `None`, the bundled DejaVu Sans Bold.
    pub font: Option<Arc<Vec<u8>>>,
    /// Text height as a percentage of the image's shorter side. Default: 4.
    pub size: f32,
    /// Smallest text height in pixels, for tiny images. Default: 12.
    pub min_px: f32,
    /// Default: bottom-right.
    pub position: Position,
    /// Distance from the edges, percent of the shorter side. Default: 3.
    pub margin: f32,
    /// Tile mode: angle in degrees, counter-clockwise. Default: 30.
    pub angle: f32,
    /// Tile mode: gap between repeats, in text heights. Default: 2.
    pub spacing: f32,
    /// 0 (invisible) to 1 (opaque). Default: 0.6.
    pub opacity: f32,
    /// Default: auto.
    pub colour: Colour,
    /// A contrasting outline around the glyphs. Default: on.
    pub outline: bool,
    /// A soft dark shadow. Default: on.
    pub shadow: bool,
    /// A logo image (PNG with alpha, any format `image` reads). Default: none.
    pub logo: Option<Arc<Vec<u8>>>,
    /// Logo width as a percentage of the shorter side. Default: 15.
    pub logo_size: f32,
    /// Default: bottom-left.
    pub logo_position: Position,
    /// A visible notice line, e.g. "Not licensed for AI training". Default: none.
    pub notice: Option<String>,
    /// Default: band.
    pub notice_style: NoticeStyle,
}

impl Default for Watermark {
    fn default() -> Watermark {
        Watermark {
            text: None,
            font: None,
            size: 4.0,
            min_px: 12.0,
            position: Position::BottomRight,
            margin: 3.0,
            angle: 30.0,
            spacing: 2.0,
            opacity: 0.6,
            colour: Colour::Auto,
            outline: true,
            shadow: true,
            logo: None,
            logo_size: 15.0,
            logo_position: Position::BottomLeft,
            notice: None,
            notice_style: NoticeStyle::Band,
        }
    }
}

impl Watermark {
    /// Checks the ranges of every setting, whether or not anything is drawn: a wrong value is
    /// an error even when the text it would style is missing.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Options(m));
        if !(self.size > 0.0 && self.size <= 50.0) {
            return bad(format!(
                "watermark size must be above 0 and at most 50 percent, not {}",
                self.size
            ));
        }
        if !(0.0..=1.0).contains(&self.opacity) {
            return bad(format!("opacity must be between 0 and 1, not {}", self.opacity));
        }
        if !(self.logo_size > 0.0 && self.logo_size <= 100.0) {
            return bad(format!(
                "logo size must be above 0 and at most 100 percent of the shorter side, not {}",
                self.logo_size
            ));
        }
        if !(0.0..=25.0).contains(&self.margin) {
            return bad(format!("margin must be 0 to 25 percent, not {}", self.margin));
        }
        if !((0.0..=20.0).contains(&self.spacing) && self.angle.is_finite()) {
            return bad("tile spacing must be 0 to 20 text heights and the angle a number".into());
        }
        if self.min_px < 1.0 {
            return bad("the minimum text size must be at least 1 pixel".into());
        }
        if self.logo_position == Position::Tile {
            return bad("a logo cannot be tiled; choose one of the nine positions".into());
        }
        Ok(())
    }

    /// True when there is anything to draw.
    pub fn is_active(&self) -> bool {
        self.text.is_some() || self.logo.is_some() || self.notice.is_some()
    }
}

/// Values for the text tokens of one image.
#[derive(Clone, Debug, Default)]
// Hook for tests/edges.rs, tests/watermark.rs and benches/watermark.rs: hidden, not part of the API.
#[doc(hidden)]
pub struct Tokens<'a> {
    /// (year, month, day) the photo was taken, or today.
    pub date: (i32, u32, u32),
    pub filename: &'a str,
}

/// Expands `{year}`, `{date}`, `{filename}` and the two-character `\n`.
pub(crate) fn expand(template: &str, tokens: &Tokens) -> String {
    let (y, m, d) = tokens.date;
    template
        .replace("{year}", &y.to_string())
        .replace("{date}", &format!("{y:04}-{m:02}-{d:02}"))
        .replace("{filename}", tokens.filename)
        .replace("\\n", "\n")
}

/// Light or dark ink, chosen from the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
// Hook for tests/watermark.rs (the stamp cache): hidden, not part of the API.
#[doc(hidden)]
pub enum Ink {
    Light,
    Dark,
    Fixed([u8; 3]),
}

impl Ink {
    /// (text colour, outline colour).
    fn colours(self) -> ([u8; 3], [u8; 3]) {
        match self {
            Ink::Light => ([255, 255, 255], [0, 0, 0]),
            Ink::Dark => ([0, 0, 0], [255, 255, 255]),
            Ink::Fixed(c) => {
                let luma = 0.2126 * c[0] as f32 + 0.7152 * c[1] as f32 + 0.0722 * c[2] as f32;
                (c, if luma > 128.0 { [0, 0, 0] } else { [255, 255, 255] })
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StampKey {
    text: String,
    px: u32,
    align: u8,
    ink: Ink,
    /// Angle in hundredths of a degree.
    angle: i32,
    opacity: u32,
    channels: usize,
}

/// The text stamps of a batch, rendered once per (text, size, alignment, ink, angle) and shared
/// by every worker thread.
#[derive(Debug, Default)]
pub(crate) struct StampCache {
    stamps: Mutex<HashMap<StampKey, Arc<Stamp>>>,
}

/// Notice text height relative to the watermark text.
const NOTICE_SCALE: f32 = 0.6;

/// Most distinct stamps kept; a batch of mixed sizes needs a few dozen.
const CACHE_LIMIT: usize = 256;

/// A watermark ready to draw: the font parsed and the logo decoded once.
#[derive(Debug)]
// Hook for tests/edges.rs, tests/watermark.rs and benches/watermark.rs (the pipeline draws with it): hidden, not part of the API.
#[doc(hidden)]
pub struct Renderer {
    settings: Watermark,
    font: FontArc,
    logo: Option<Pixels>,
    cache: StampCache,
}

impl Renderer {
    /// Checks the settings and prepares the font and logo.
    pub fn new(settings: &Watermark) -> Result<Renderer> {
        settings.validate()?;
        let bad = |m: String| Err(Error::Options(m));
        let font = match &settings.font {
            None => FontArc::try_from_slice(BUNDLED_FONT)
                .map_err(|e| Error::Options(format!("bundled font: {e}")))?,
            Some(bytes) => FontArc::try_from_vec(bytes.to_vec())
                .map_err(|_| Error::Options("the font file is not a TrueType or OpenType font".into()))?,
        };
        for text in [&settings.text, &settings.notice].into_iter().flatten() {
            let template = text
                .replace("{year}", "")
                .replace("{date}", "")
                .replace("{filename}", "");
            let missing = missing_glyphs(&font, &template);
            if !missing.is_empty() {
                return bad(missing_message(&missing));
            }
        }
        let logo = match &settings.logo {
            None => None,
            Some(bytes) => {
                let img = image::load_from_memory(bytes)
                    .map_err(|e| Error::Options(format!("the logo cannot be read: {e}")))?
                    .into_rgba8();
                let (w, h) = img.dimensions();
                Some(Pixels::new(w, h, Layout::Rgba8, img.into_raw()))
            }
        };
        Ok(Renderer {
            settings: settings.clone(),
            font,
            logo,
            cache: StampCache::default(),
        })
    }

    pub fn settings(&self) -> &Watermark {
        &self.settings
    }

    /// Text height in pixels for an image whose shorter side is `short`.
    fn text_px(&self, short: u32, factor: f32) -> f32 {
        (short as f32 * self.settings.size * factor / 100.0)
            .max(self.settings.min_px)
            .round()
    }

    /// (outline radius, shadow blur radius, shadow offset) in pixels for text of `px`.
    fn effect_sizes(&self, px: f32) -> (usize, usize, usize) {
        let s = &self.settings;
        let outline_r = if s.outline {
            (px * 0.08).round().max(2.0) as usize
        } else {
            0
        };
        let shadow_r = if s.shadow {
            (px * 0.06).round().max(1.0) as usize
        } else {
            0
        };
        let offset = if s.shadow {
            (px * 0.04).round().max(1.0) as usize
        } else {
            0
        };
        (outline_r, shadow_r, offset)
    }

    /// Empty border around the glyphs that leaves room for outline and shadow.
    fn pad(&self, px: f32) -> usize {
        let (outline_r, shadow_r, offset) = self.effect_sizes(px);
        outline_r + 3 * shadow_r + offset + 1
    }

    /// The stamp for `text`, from the cache or rendered now.
    pub fn stamp(
        &self,
        text: &str,
        px: f32,
        align: u8,
        ink: Ink,
        angle: f32,
        channels: usize,
    ) -> Result<Arc<Stamp>> {
        let key = StampKey {
            text: text.to_string(),
            px: px as u32,
            align,
            ink,
            angle: (angle * 100.0).round() as i32,
            opacity: (self.settings.opacity * 1000.0) as u32,
            channels,
        };
        if let Some(s) = self
            .cache
            .stamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(s));
        }
        let s = &self.settings;
        let (outline_r, shadow_r, offset) = self.effect_sizes(px);
        let mask = rasterise(&self.font, text, px, align, self.pad(px))?;
        let (colour, outline_colour) = ink.colours();
        let mut layers: Vec<([u8; 3], Mask, f32)> = Vec::new();
        let outlined = (s.shadow || s.outline).then(|| dilate(&mask, outline_r));
        if let (true, Some(outlined)) = (s.shadow, &outlined) {
            layers.push(([0, 0, 0], shadow(outlined, shadow_r, offset, offset), 0.7));
        }
        if let (true, Some(outlined)) = (s.outline, outlined) {
            layers.push((outline_colour, outlined, 1.0));
        }
        let refs: Vec<([u8; 3], &Mask, f32)> = layers.iter().map(|(c, m, k)| (*c, m, *k)).collect();
        let mut all = refs;
        all.push((colour, &mask, 1.0));
        let stamp = Premul::from_layers(mask.width, mask.height, &all)
            .faded(s.opacity)
            .rotated(angle)
            .into_stamp(channels);
        let stamp = Arc::new(stamp);
        let mut cache = self.cache.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&stamp));
        Ok(stamp)
    }

    /// Draws the text, logo and notice onto `pixels`; a band notice makes the canvas taller.
    pub fn apply(&self, pixels: Pixels, tokens: &Tokens) -> Result<Pixels> {
        self.apply_noting(pixels, tokens, &mut Vec::new())
    }

    /// [`Renderer::apply`], telling in `notes` what was shrunk, wrapped or left out to fit.
    pub fn apply_noting(&self, pixels: Pixels, tokens: &Tokens, notes: &mut Vec<String>) -> Result<Pixels> {
        let mut pixels = pixels;
        let placements = self.placements_noting(&pixels, tokens, notes)?;
        blend_all(&mut pixels, &placements);
        if let Some(band) = self.band_layout(pixels.width, pixels.height, tokens) {
            match band {
                Some(fitted) => {
                    note_fit(notes, "notice", &fitted);
                    pixels = self.add_band(pixels, &fitted)?;
                }
                None => notes.push(format!(
                    "the notice does not fit a {} px wide band even at {} px on several lines; not drawn",
                    pixels.width, self.settings.min_px
                )),
            }
        }
        Ok(pixels)
    }

    /// Height of the notice band added under a `width` x `height` photo (0 without one): what
    /// a size budget must leave room for.
    pub fn band_height(&self, width: u32, height: u32, tokens: &Tokens) -> u32 {
        match self.band_layout(width, height, tokens) {
            Some(Some(fitted)) => self.band_px(&fitted),
            _ => 0,
        }
    }

    /// The band notice's layout for a `width` x `height` photo: `None` without a band notice,
    /// `Some(None)` when it cannot fit.
    fn band_layout(&self, width: u32, height: u32, tokens: &Tokens) -> Option<Option<Fitted>> {
        let s = &self.settings;
        let (Some(template), NoticeStyle::Band) = (&s.notice, s.notice_style) else {
            return None;
        };
        let text = self.printable(&expand(template, tokens));
        let px = self.text_px(width.min(height), NOTICE_SCALE);
        // The band's text keeps half a text height of dark band on each side.
        Some(self.fit_text(&text, px, width as f32 - px))
    }

    /// Band height for a fitted notice: its lines plus 0.8 of a text height.
    fn band_px(&self, fitted: &Fitted) -> u32 {
        let lines = fitted.text.lines().count().max(1) as f32;
        let scaled = self.font.as_scaled(PxScale::from(fitted.px));
        let line_height = scaled.height() + scaled.line_gap();
        (fitted.px * 1.8 + line_height * (lines - 1.0)).round() as u32
    }

    /// Width in pixels of the visible text (widest line, with outline and shadow) at `px`.
    fn text_width(&self, text: &str, px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(px));
        let widest = text
            .split('\n')
            .map(|line| {
                let mut x = 0.0f32;
                let mut prev = None;
                for ch in line.chars() {
                    let id = self.font.glyph_id(ch);
                    if let Some(p) = prev {
                        x += scaled.kern(p, id);
                    }
                    x += scaled.h_advance(id);
                    prev = Some(id);
                }
                x
            })
            .fold(0.0, f32::max);
        let (outline_r, shadow_r, offset) = self.effect_sizes(px);
        widest + 2.0 * (outline_r + shadow_r) as f32 + offset as f32
    }

    /// Height in pixels of `lines` lines of text at `px`, with outline and shadow.
    fn text_height(&self, lines: usize, px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(px));
        let (outline_r, shadow_r, offset) = self.effect_sizes(px);
        (scaled.height() + scaled.line_gap()) * lines as f32 - scaled.line_gap()
            + 2.0 * (outline_r + shadow_r) as f32
            + offset as f32
    }

    /// `text` laid out to fit `avail` pixels of width: at `px` when it fits; else shrunk, down
    /// to the legible minimum (`min_px`); else, at that size, broken into lines at spaces.
    /// `None` when a single word is wider than `avail` even then: the text is never clipped.
    fn fit_text(&self, text: &str, px: f32, avail: f32) -> Option<Fitted> {
        let fits = |t: &str, px: f32| self.text_width(t, px) <= avail;
        if fits(text, px) {
            return Some(Fitted {
                text: text.to_string(),
                px,
                shrunk_from: None,
                wrapped: false,
            });
        }
        let min = self.settings.min_px.min(px);
        // Width grows about linearly with the size: start from the proportional guess.
        let mut size = (px * avail / self.text_width(text, px)).floor().clamp(min, px);
        while size > min && !fits(text, size) {
            size = (size - 1.0).max(min);
        }
        if fits(text, size) {
            return Some(Fitted {
                text: text.to_string(),
                px: size,
                shrunk_from: Some(px),
                wrapped: false,
            });
        }
        let mut lines: Vec<String> = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if fits(&candidate, min) {
                    line = candidate;
                } else if line.is_empty() {
                    return None;
                } else {
                    lines.push(std::mem::replace(&mut line, word.to_string()));
                    if !fits(&line, min) {
                        return None;
                    }
                }
            }
            lines.push(line);
        }
        Some(Fitted {
            text: lines.join("\n"),
            px: min,
            shrunk_from: Some(px),
            wrapped: true,
        })
    }

    /// Every stamp drawn over the photo (text, logo, overlay notice) with its top-left corner,
    /// in drawing order. Nothing outside these rectangles changes.
    pub fn placements(&self, pixels: &Pixels, tokens: &Tokens) -> Result<Vec<(Arc<Stamp>, i64, i64)>> {
        self.placements_noting(pixels, tokens, &mut Vec::new())
    }

    /// The text (or overlay notice) at a grid position, fitted to the image's width and height
    /// within the margins; `None` (with a note) when it cannot fit.
    fn fitted_anchored(
        &self,
        pixels: &Pixels,
        what: &str,
        text: &str,
        px: f32,
        margin: i64,
        notes: &mut Vec<String>,
    ) -> Option<Fitted> {
        let avail = pixels.width as f32 - 2.0 * margin as f32;
        let tall = pixels.height as f32 - 2.0 * margin as f32;
        match self.fit_text(text, px, avail) {
            Some(f) if self.text_height(f.text.lines().count().max(1), f.px) <= tall => {
                note_fit(notes, what, &f);
                Some(f)
            }
            _ => {
                notes.push(format!(
                    "the {what} does not fit the {}x{} image even at {} px on several lines; not drawn",
                    pixels.width, pixels.height, self.settings.min_px
                ));
                None
            }
        }
    }

    /// [`Renderer::placements`], telling in `notes` what was shrunk, wrapped or left out.
    pub fn placements_noting(
        &self,
        pixels: &Pixels,
        tokens: &Tokens,
        notes: &mut Vec<String>,
    ) -> Result<Vec<(Arc<Stamp>, i64, i64)>> {
        let s = &self.settings;
        let short = pixels.width.min(pixels.height);
        let margin = (short as f32 * s.margin / 100.0).round() as i64;
        let mut placements: Vec<(Arc<Stamp>, i64, i64)> = Vec::new();
        if let Some(template) = &s.text {
            let text = self.printable(&expand(template, tokens));
            let px = self.text_px(short, 1.0);
            match s.position.anchor() {
                Some((ax, ay)) => {
                    if let Some(f) = self.fitted_anchored(pixels, "watermark text", &text, px, margin, notes)
                    {
                        placements.push(self.anchored(pixels, &f.text, f.px, ax, ay, margin)?);
                    }
                }
                None => self.tile(pixels, &text, px, &mut placements)?,
            }
        }
        if let (Some(logo), Some((ax, ay))) = (&self.logo, s.logo_position.anchor()) {
            let stamp = self.logo_stamp(logo, short, pixels.channels())?;
            let (x, y) = anchor_xy(pixels, stamp.width, stamp.height, ax, ay, margin);
            placements.push((stamp, x, y));
        }
        if let (Some(template), NoticeStyle::Overlay) = (&s.notice, s.notice_style) {
            let text = self.printable(&expand(template, tokens));
            let px = self.text_px(short, NOTICE_SCALE);
            if let Some(f) = self.fitted_anchored(pixels, "notice", &text, px, margin / 2, notes) {
                placements.push(self.anchored(pixels, &f.text, f.px, 1, 2, margin / 2)?);
            }
        }
        Ok(placements)
    }

    /// A text stamp at a grid position, its ink chosen from what lies under it.
    fn anchored(
        &self,
        pixels: &Pixels,
        text: &str,
        px: f32,
        ax: u8,
        ay: u8,
        margin: i64,
    ) -> Result<(Arc<Stamp>, i64, i64)> {
        let light = self.stamp(text, px, ax, Ink::Light, 0.0, pixels.channels())?;
        let (x, y) = anchor_xy(pixels, light.width, light.height, ax, ay, margin);
        let ink = self.ink_at(pixels, x, y, &light);
        let stamp = if ink == Ink::Light {
            light
        } else {
            self.stamp(text, px, ax, ink, 0.0, pixels.channels())?
        };
        Ok((stamp, x, y))
    }

    /// The glyph coverage of the (non-tiled) watermark text and its top-left corner in the
    /// image, aligned with the stamp `placements` returns first: for legibility checks.
    pub fn text_coverage(&self, pixels: &Pixels, tokens: &Tokens) -> Result<Option<(Mask, i64, i64)>> {
        let s = &self.settings;
        let (Some(template), Some((ax, ay))) = (&s.text, s.position.anchor()) else {
            return Ok(None);
        };
        let short = pixels.width.min(pixels.height);
        let text = self.printable(&expand(template, tokens));
        let margin = (short as f32 * s.margin / 100.0).round() as i64;
        let Some(f) = self.fitted_anchored(
            pixels,
            "",
            &text,
            self.text_px(short, 1.0),
            margin,
            &mut Vec::new(),
        ) else {
            return Ok(None);
        };
        let (text, px) = (f.text, f.px);
        let mask = rasterise(&self.font, &text, px, ax, self.pad(px))?;
        let (x, y) = anchor_xy(pixels, mask.width, mask.height, ax, ay, margin);
        Ok(Some((mask, x, y)))
    }

    /// Replaces characters the font cannot draw (from a file name, say) with '?'.
    fn printable(&self, text: &str) -> String {
        text.chars()
            .map(|c| {
                if c.is_whitespace() || self.font.glyph_id(c).0 != 0 {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    /// Light ink on a dark background, dark ink on a light one; a fixed colour stays fixed.
    fn ink_at(&self, pixels: &Pixels, x: i64, y: i64, stamp: &Stamp) -> Ink {
        match self.settings.colour {
            Colour::Rgb(c) => Ink::Fixed(c),
            Colour::Auto => {
                if mean_luma(pixels, x, y, stamp.width, stamp.height) > 140.0 {
                    Ink::Dark
                } else {
                    Ink::Light
                }
            }
        }
    }

    /// Placements covering the whole image on a rotated brick lattice.
    fn tile(
        &self,
        pixels: &Pixels,
        text: &str,
        px: f32,
        out: &mut Vec<(Arc<Stamp>, i64, i64)>,
    ) -> Result<()> {
        let s = &self.settings;
        let flat = rasterise(&self.font, text, px, 1, 0)?;
        let gap = s.spacing * px;
        let (along, across) = (flat.width as f32 + gap, flat.height as f32 + gap);
        let (sin, cos) = s.angle.to_radians().sin_cos();
        // Unit vectors of the text direction on screen (y down, counter-clockwise angle).
        let (ux, uy) = (cos, -sin);
        let (vx, vy) = (sin, cos);
        let light = self.stamp(text, px, 1, Ink::Light, s.angle, pixels.channels())?;
        let (w, h) = (pixels.width as f32, pixels.height as f32);
        let reach = (w * w + h * h).sqrt() / 2.0 + along + across;
        let (ni, nj) = ((reach / along).ceil() as i64, (reach / across).ceil() as i64);
        let (cx, cy) = (w / 2.0, h / 2.0);
        for j in -nj..=nj {
            let brick = if j.rem_euclid(2) == 1 { 0.5 } else { 0.0 };
            for i in -ni..=ni {
                let a = (i as f32 + brick) * along;
                let b = j as f32 * across;
                let (px_c, py_c) = (cx + a * ux + b * vx, cy + a * uy + b * vy);
                let x = (px_c - light.width as f32 / 2.0).round() as i64;
                let y = (py_c - light.height as f32 / 2.0).round() as i64;
                if x + light.width as i64 <= 0
                    || y + light.height as i64 <= 0
                    || x >= w as i64
                    || y >= h as i64
                {
                    continue;
                }
                let ink = self.ink_at(pixels, x, y, &light);
                let stamp = if ink == Ink::Light {
                    Arc::clone(&light)
                } else {
                    self.stamp(text, px, 1, ink, s.angle, pixels.channels())?
                };
                out.push((stamp, x, y));
            }
        }
        Ok(())
    }

    fn logo_stamp(&self, logo: &Pixels, short: u32, channels: usize) -> Result<Arc<Stamp>> {
        let target_w = ((short as f32 * self.settings.logo_size / 100.0).round() as u32).max(1);
        let target_h = ((logo.height as f32 * target_w as f32 / logo.width as f32).round() as u32).max(1);
        let resized = crate::resize::resize_exact(logo, target_w, target_h)?;
        let mut data = resized.data;
        for p in data.chunks_exact_mut(4) {
            let a = p[3] as u32;
            for v in &mut p[..3] {
                *v = div255(*v as u32 * a) as u8;
            }
        }
        let premul = Premul {
            width: target_w as usize,
            height: target_h as usize,
            data,
        };
        Ok(Arc::new(premul.faded(self.settings.opacity).into_stamp(channels)))
    }

    /// Adds a dark band under the image with the notice centred in it.
    fn add_band(&self, pixels: Pixels, fitted: &Fitted) -> Result<Pixels> {
        let stamp = self.stamp(&fitted.text, fitted.px, 1, Ink::Light, 0.0, pixels.channels())?;
        let band_h = self.band_px(fitted);
        let (w, h) = (pixels.width, pixels.height);
        let ch = pixels.channels();
        let mut data = pixels.data;
        let fill: [u8; 4] = [24, 24, 24, 255];
        data.reserve_exact(w as usize * band_h as usize * ch);
        for _ in 0..w as usize * band_h as usize {
            data.extend_from_slice(&fill[..ch]);
        }
        let mut out = Pixels::new(w, h + band_h, pixels.layout, data);
        let x = (w as i64 - stamp.width as i64) / 2;
        let y = h as i64 + (band_h as i64 - stamp.height as i64) / 2;
        blend_all(&mut out, &[(stamp, x, y)]);
        Ok(out)
    }
}

/// A text laid out to fit: its lines (joined by `\n`) and its size.
struct Fitted {
    text: String,
    px: f32,
    /// The size asked for, when the text had to be made smaller.
    shrunk_from: Option<f32>,
    wrapped: bool,
}

/// Says what fitting did to a text, if anything.
fn note_fit(notes: &mut Vec<String>, what: &str, f: &Fitted) {
    if let Some(from) = f.shrunk_from {
        let lines = f.text.lines().count();
        notes.push(if f.wrapped && f.px >= from {
            format!("the {what} was too wide: broken into {lines} lines")
        } else if f.wrapped {
            format!(
                "the {what} was too wide: set at {} px instead of {from} and broken into {lines} lines",
                f.px
            )
        } else {
            format!("the {what} was too wide: set at {} px instead of {from}", f.px)
        });
    }
}

/// Top-left corner of a `w` x `h` box anchored in `pixels` with a margin.
fn anchor_xy(pixels: &Pixels, w: usize, h: usize, ax: u8, ay: u8, margin: i64) -> (i64, i64) {
    let place = |size: u32, len: usize, a: u8| -> i64 {
        match a {
            0 => margin,
            1 => (size as i64 - len as i64) / 2,
            _ => size as i64 - len as i64 - margin,
        }
    };
    (place(pixels.width, w, ax), place(pixels.height, h, ay))
}

/// Mean luminance of the pixels under a box (sampled every few pixels), 0..255.
fn mean_luma(pixels: &Pixels, x: i64, y: i64, w: usize, h: usize) -> f32 {
    let (x0, y0) = (x.max(0) as u32, y.max(0) as u32);
    let x1 = ((x + w as i64).max(0) as u32).min(pixels.width);
    let y1 = ((y + h as i64).max(0) as u32).min(pixels.height);
    let (mut sum, mut n) = (0.0f64, 0u32);
    let step = (w.max(h) / 32).max(1);
    for yy in (y0..y1).step_by(step) {
        for xx in (x0..x1).step_by(step) {
            let [r, g, b] = pixels.rgb(xx, yy);
            sum += 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
            n += 1;
        }
    }
    if n == 0 {
        128.0
    } else {
        (sum / n as f64) as f32
    }
}

/// Days since 1970-01-01 to a civil (year, month, day) (Howard Hinnant's algorithm).
// Hook for src/cli.rs (SOURCE_DATE_EPOCH as today's date): hidden, not part of the API.
#[doc(hidden)]
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + if m <= 2 { 1 } else { 0 }) as i32;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::effects::{box_columns, box_rows};
    use super::*;

    /// The next value of a small linear congruential generator: test data without a seed file.
    fn lcg(state: &mut u32) -> u32 {
        *state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *state
    }

    #[test]
    fn box_blurs_are_the_clipped_window_sums() {
        let mut state = 99u32;
        for (w, h, r) in [(1, 1, 2), (1, 7, 3), (7, 1, 3), (13, 9, 1), (20, 15, 6)] {
            let src: Vec<u32> = (0..w * h).map(|_| lcg(&mut state) >> 22).collect();
            let n = (2 * r + 1) as u32;
            let (mut rows, mut columns) = (vec![0u32; w * h], vec![0u32; w * h]);
            box_rows(&src, &mut rows, w, r);
            box_columns(&src, &mut columns, w, r);
            for y in 0..h {
                for x in 0..w {
                    let along: u32 = (x.saturating_sub(r)..(x + r + 1).min(w))
                        .map(|xx| src[y * w + xx])
                        .sum();
                    let down: u32 = (y.saturating_sub(r)..(y + r + 1).min(h))
                        .map(|yy| src[yy * w + x])
                        .sum();
                    assert_eq!(rows[y * w + x], along / n, "{w}x{h} r={r} row sum at ({x}, {y})");
                    assert_eq!(
                        columns[y * w + x],
                        down / n,
                        "{w}x{h} r={r} column sum at ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn dilate_is_the_maximum_over_the_disc() {
        let mut state = 12345u32;
        for (w, h, r) in [
            (1, 1, 3),
            (1, 9, 2),
            (9, 1, 2),
            (2, 2, 1),
            (31, 17, 4),
            (40, 23, 9),
        ] {
            let mut mask = Mask::new(w, h);
            for v in &mut mask.data {
                // Mostly empty, like glyphs: a few bright and grey pixels.
                let bits = lcg(&mut state);
                *v = if bits >> 28 == 0 { (bits >> 8) as u8 } else { 0 };
            }
            let got = dilate(&mask, r);
            for y in 0..h {
                for x in 0..w {
                    let mut want = 0u8;
                    for dy in -(r as isize)..=r as isize {
                        let hw = (((r * r) as f32 - (dy * dy) as f32).sqrt()).round() as isize;
                        for dx in -hw..=hw {
                            let (sx, sy) = (x as isize + dx, y as isize + dy);
                            if (0..w as isize).contains(&sx) && (0..h as isize).contains(&sy) {
                                want = want.max(mask.data[sy as usize * w + sx as usize]);
                            }
                        }
                    }
                    assert_eq!(got.data[y * w + x], want, "{w}x{h} r={r} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn div255_rounds_exactly() {
        for x in 0..=255 * 255 {
            assert_eq!(div255(x), (x + 127) / 255, "x = {x}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn tokens_expand() {
        let t = Tokens {
            date: (2024, 6, 1),
            filename: "IMG_1.jpg",
        };
        assert_eq!(
            expand("© {year} Jane\\n{date} {filename}", &t),
            "© 2024 Jane\n2024-06-01 IMG_1.jpg"
        );
    }

    #[test]
    fn bundled_font_covers_copyright_and_accents() {
        let font = FontArc::try_from_slice(BUNDLED_FONT).unwrap();
        assert!(missing_glyphs(&font, "© 2024 Zoë Ångström, Łódź — ½").is_empty());
        assert_eq!(missing_glyphs(&font, "写真 ok"), vec!['写', '真']);
    }

    #[test]
    fn kerning_is_applied() {
        let font = FontArc::try_from_slice(BUNDLED_FONT).unwrap();
        let scaled = font.as_scaled(PxScale::from(100.0));
        let (a, v) = (font.glyph_id('A'), font.glyph_id('V'));
        assert!(scaled.kern(a, v) < 0.0, "DejaVu kerns AV");
        let av = rasterise(&font, "AV", 100.0, 0, 0).unwrap();
        let a_v = rasterise(&font, "A", 100.0, 0, 0).unwrap().width
            + rasterise(&font, "V", 100.0, 0, 0).unwrap().width;
        assert!(
            av.width + 2 < a_v,
            "kerned pair is narrower than its letters apart"
        );
    }

    #[test]
    fn multi_line_text_is_taller() {
        let font = FontArc::try_from_slice(BUNDLED_FONT).unwrap();
        let one = rasterise(&font, "Jane", 40.0, 1, 0).unwrap();
        let two = rasterise(&font, "Jane\nDoe", 40.0, 1, 0).unwrap();
        assert!(two.height > one.height * 3 / 2);
    }
}
