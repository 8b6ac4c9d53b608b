//! The pipeline: bytes in, protected bytes out, with a report of what was done. Pure: no file
//! system, the same output for the same input and options on any thread. The only state it
//! keeps is each thread's spare image buffers ([`crate::pixels::recycle`]), whose old contents
//! never reach an output.

use serde::Serialize;

use crate::codec::{self, DecodeLimits, EncodeSettings};
use crate::error::{Error, Result};
use crate::format::{Format, OutputFormat};
use crate::mark::{self, Mark};
use crate::metadata::{self, Found, Kind};
use crate::options::Options;
use crate::perturb;
use crate::pixels::{Layout, Pixels};
use crate::strip::{self, Rights, StripOptions};

/// Below this JPEG/WebP quality the encoder smooths much of a ±4 perturbation away.
pub(crate) const MIN_PERTURB_QUALITY: u8 = 85;
use crate::watermark::{self, Renderer, Tokens};
use crate::{orient, resize};

/// What the pipeline knows about the file it processes, besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileContext<'a> {
    /// The file's path relative to the input root, with `/` separators ("" for stdin).
    pub name: &'a str,
}

/// A protected image and the report of how it was made.
#[derive(Debug)]
pub struct Processed {
    /// The output file.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: OutputFormat,
    /// What was done.
    pub report: Report,
}

/// What happened to one image.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The input's format, from its content.
    pub input_format: Format,
    /// The output's format.
    pub output_format: OutputFormat,
    /// Stored size of the input, before orientation.
    pub input_size: (u32, u32),
    /// Size of the output, width and height in pixels, a notice band included.
    pub output_size: (u32, u32),
    /// The EXIF orientation that was applied to the pixels (1 = none).
    pub orientation: u8,
    /// Metadata present in the input and absent from the output.
    pub removed: Vec<Found>,
    /// Whether an ICC profile was carried over.
    pub icc_kept: bool,
    /// The invisible mark, when one was embedded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<MarkReport>,
    /// Things the user should know ("first frame of 5 kept", ...).
    pub notes: Vec<String>,
}

/// The invisible mark embedded in one image.
#[derive(Clone, Debug, Serialize)]
pub struct MarkReport {
    /// The ID, as hex with `0x`.
    pub id: String,
    /// The mark's amplitude as a fraction of full strength (1 = full; flat images get less).
    pub strength: f64,
}

/// A configured pipeline, built once and shared by every worker thread.
#[derive(Debug)]
pub struct Pipeline {
    options: Options,
    /// The watermark renderer (font, logo, stamp cache), when anything is to be drawn.
    watermark: Option<Renderer>,
}

impl Pipeline {
    /// Checks the options and prepares everything that does not depend on the image.
    pub fn new(options: &Options) -> Result<Pipeline> {
        options.validate()?;
        let watermark = match options.watermark.is_active() {
            true => Some(Renderer::new(&options.watermark)?),
            false => None,
        };
        Ok(Pipeline {
            options: options.clone(),
            watermark,
        })
    }

    /// The options the pipeline was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The date for photos without a capture date.
    fn today(&self) -> (i32, u32, u32) {
        self.options.today.unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            watermark::civil_from_days((secs / 86_400) as i64)
        })
    }

    /// The token values of one file: its capture date (from its EXIF block, else today) and
    /// its name.
    fn tokens<'a>(&self, exif: Option<&[u8]>, ctx: &FileContext<'a>) -> Tokens<'a> {
        Tokens {
            date: exif
                .and_then(metadata::capture_date)
                .unwrap_or_else(|| self.today()),
            filename: ctx.name.rsplit('/').next().unwrap_or(ctx.name),
        }
    }

    /// The rights notice with its tokens expanded for one file.
    fn expand_rights(rights: &Rights, tokens: &Tokens) -> Rights {
        Rights {
            notice: watermark::expand(&rights.notice, tokens),
            ..rights.clone()
        }
    }

    /// Strips a file without touching its pixels: the containers' metadata goes, the
    /// compressed image data stays byte for byte (JPEG, PNG, WebP). Honours `keep_icc` and
    /// `rights`; keeps a minimal EXIF with the orientation so nothing turns sideways.
    pub fn strip(&self, bytes: &[u8], ctx: &FileContext) -> Result<Processed> {
        let (out, report) = self.strip_spliced(bytes, ctx)?;
        Ok(Processed {
            bytes: out.to_vec(),
            format: report.output_format,
            report,
        })
    }

    /// [`Pipeline::strip`], with the output as pieces of the input and new bytes (nothing of
    /// the compressed data is copied until it is written).
    pub(crate) fn strip_spliced<'a>(
        &self,
        bytes: &'a [u8],
        ctx: &FileContext,
    ) -> Result<(strip::Spliced<'a>, Report)> {
        let o = &self.options;
        let format = crate::format::sniff(bytes)?;
        let rights = o
            .rights
            .as_ref()
            .map(|r| Self::expand_rights(r, &self.tokens(strip::exif_block(bytes, format), ctx)));
        let options = StripOptions {
            keep_icc: o.keep_icc,
            keep_orientation: true,
            rights,
        };
        let (out, found, strip_notes) = strip::strip_and_scan(bytes, &options)?;
        let output_format = OutputFormat::for_input(format);
        let icc_dropped = strip_notes
            .iter()
            .any(|n| n.starts_with("colour profile dropped"));
        let icc_kept = o.keep_icc && !icc_dropped && found.iter().any(|f| f.kind == Kind::Icc);
        let removed = found
            .into_iter()
            .filter(|f| !(f.kind == Kind::Icc && icc_kept))
            .collect();
        let size = codec::dimensions(bytes, format).unwrap_or((0, 0));
        let orientation = strip::exif_orientation(bytes, format);
        let mut notes = strip_notes;
        if orientation > 1 {
            notes.push(format!(
                "kept a minimal EXIF block holding only the orientation ({orientation})"
            ));
        }
        Ok((
            out,
            Report {
                input_format: format,
                output_format,
                input_size: size,
                output_size: size,
                orientation: 1,
                removed,
                icc_kept,
                mark: None,
                notes,
            },
        ))
    }

    /// The output format for an input of `format`.
    pub fn output_format(&self, format: Format) -> OutputFormat {
        self.options
            .format
            .unwrap_or_else(|| OutputFormat::for_input(format))
    }

    /// Embeds the mark, or explains in a note why it could not be (an error instead when the
    /// mark is required).
    fn embed_mark(
        &self,
        pixels: &mut Pixels,
        m: &Mark,
        notes: &mut Vec<String>,
    ) -> Result<Option<MarkReport>> {
        match mark::embed(pixels, &m.key, m.id) {
            Ok(e) if e.is_weak() => {
                let why = format!(
                    "the image is too flat for the mark: it reaches {:.0}% of its strength (flat areas move by at most one grey level) and may not survive recompression",
                    100.0 * e.strength
                );
                if m.required {
                    return Err(Error::Mark(format!("{why} (--require-mark)")));
                }
                notes.push(why);
                Ok(Some(MarkReport {
                    id: m.id.to_string(),
                    strength: e.strength,
                }))
            }
            Ok(e) => Ok(Some(MarkReport {
                id: m.id.to_string(),
                strength: e.strength,
            })),
            Err(e) if !m.required => {
                notes.push(format!("no invisible mark: {e}"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The output size for an upright `width` x `height` photo: (photo width, photo height)
    /// within the limits of the options with the notice band added under it. Never larger than
    /// the photo; the aspect changes only to fit the preset's shapes.
    // Hook for tests/edges.rs (the sizes presets give): hidden, not part of the API.
    #[doc(hidden)]
    pub fn fitted_size(&self, width: u32, height: u32, tokens: &Tokens) -> (u32, u32) {
        let o = &self.options;
        let band = |w: f64, h: f64| {
            self.watermark.as_ref().map_or(0.0, |r| {
                r.band_height(w.round().max(1.0) as u32, h.round().max(1.0) as u32, tokens) as f64
            })
        };
        let (sw, sh) = (width as f64, height as f64);
        // The part of the photo kept (cw x ch) and the scale it is drawn at. The band depends on
        // the size and the size on the band: a few rounds settle both.
        let (mut cw, mut ch, mut scale) = (sw, sh, 1.0f64);
        for _ in 0..4 {
            let b = band(cw * scale, ch * scale);
            scale = 1.0f64;
            if let Some(mw) = o.max_width {
                scale = scale.min(mw as f64 / cw);
            }
            if let Some(edge) = o.max_size {
                scale = scale.min(edge as f64 / cw).min((edge as f64 - b).max(1.0) / ch);
            }
            if let Some((lo, hi)) = o.aspect {
                // The tallest crop the width allows, then the widest the height allows (from
                // the whole photo each round, so a crop made for a larger band grows back).
                ch = ((cw * scale / lo - b) / scale).clamp(1.0, sh);
                cw = (hi * (ch * scale + b) / scale).clamp(1.0, sw);
            }
        }
        let mut w = ((cw * scale).round() as u32).clamp(1, width);
        let mut h = ((ch * scale).round() as u32).clamp(1, height);
        // Rounding may leave the total a pixel over a limit: trim the photo.
        let total = |w: u32, h: u32| h as f64 + band(w as f64, h as f64);
        if let Some(mw) = o.max_width {
            w = w.min(mw);
        }
        if let Some(edge) = o.max_size {
            while total(w, h) > edge as f64 && h > 1 {
                h -= 1;
            }
            w = w.min(edge);
        }
        if let Some((lo, _)) = o.aspect {
            while (w as f64) < lo * total(w, h) - 1e-9 && h > 1 {
                h -= 1;
            }
        }
        (w, h)
    }

    /// Step 5: crops (centred) and resizes the upright photo to [`Pipeline::fitted_size`].
    fn fit(&self, pixels: Pixels, tokens: &Tokens, notes: &mut Vec<String>) -> Result<Pixels> {
        let o = &self.options;
        let band = self
            .watermark
            .as_ref()
            .map_or(0, |r| r.band_height(pixels.width, pixels.height, tokens));
        if o.max_width.is_none() && o.aspect.is_none() && band == 0 {
            // A long edge alone: the plain aspect-keeping resize.
            return match o.max_size {
                Some(edge) => resize::fit_long_edge(pixels, edge),
                None => Ok(pixels),
            };
        }
        if o.max_size.is_none() && o.max_width.is_none() && o.aspect.is_none() {
            return Ok(pixels);
        }
        let (sw, sh) = (pixels.width, pixels.height);
        let (w, h) = self.fitted_size(sw, sh, tokens);
        // The centred crop of the photo with the output's shape (the whole photo when the
        // shape is kept, up to rounding).
        let (mut cw, mut ch) = (sw, sh);
        let (wide_src, wide_out) = (sw as u64 * h as u64, w as u64 * sh as u64);
        if wide_src.abs_diff(wide_out) > (sw.max(sh) as u64) {
            if wide_src > wide_out {
                cw = ((sh as f64 * w as f64 / h as f64).round() as u32).clamp(1, sw);
            } else {
                ch = ((sw as f64 * h as f64 / w as f64).round() as u32).clamp(1, sh);
            }
            notes.push(format!(
                "cropped to {cw}x{ch} of {sw}x{sh} (centred): the preset's platform shows shapes from {:.2} to {:.2} (width / height){}",
                o.aspect.map_or(0.0, |a| a.0),
                o.aspect.map_or(0.0, |a| a.1),
                if band > 0 { ", the notice band included" } else { "" }
            ));
        }
        if (cw, ch, w, h) == (sw, sh, sw, sh) {
            return Ok(pixels);
        }
        let cropped = if (cw, ch) == (sw, sh) {
            pixels
        } else {
            let c = crop(&pixels, (sw - cw) / 2, (sh - ch) / 2, cw, ch);
            crate::pixels::recycle(pixels.data);
            c
        };
        if (w, h) == (cw, ch) {
            return Ok(cropped);
        }
        let out = resize::resize_exact(&cropped, w, h)?;
        crate::pixels::recycle(cropped.data);
        Ok(out)
    }

    /// Protects one image: read, decode, orient, strip, resize, encode.
    pub fn process(&self, bytes: &[u8], ctx: &FileContext) -> Result<Processed> {
        let o = &self.options;

        // 1. Read: the format comes from the content.
        let format = crate::format::sniff(bytes)?;
        // 2. Decode under limits: the picture's size, then what protecting it would take.
        if let Some((width, height)) =
            codec::dimensions(bytes, format).filter(|&(w, h)| w as u64 * h as u64 > o.max_pixels)
        {
            return Err(Error::TooLarge {
                width,
                height,
                limit: o.max_pixels,
            });
        }
        if let Some(need) = crate::memory::estimate(bytes, format, o).filter(|&n| n > o.max_memory) {
            return Err(Error::TooMuchMemory {
                need,
                limit: o.max_memory,
            });
        }
        let decoded = codec::decode(
            bytes,
            format,
            DecodeLimits {
                max_pixels: o.max_pixels,
            },
        )?;
        let input_size = (decoded.pixels.width, decoded.pixels.height);
        let mut notes = Vec::new();
        if let Some(frames) = decoded.frames {
            notes.push(format!("animated: kept the first of {frames} frames"));
        }
        if decoded.high_bit_depth {
            notes.push("reduced to 8 bits per channel".to_string());
        }
        if decoded.icc_dropped {
            notes.push("colour profile dropped: larger than any real profile, or corrupt".to_string());
        }
        // 3. Orient: the tag goes with the metadata, so the pixels must carry it.
        let pixels = orient::apply(decoded.pixels, decoded.orientation);
        // 4. Strip: the encoder writes nothing but pixels and (optionally) the ICC profile.
        let icc = match decoded.icc.filter(|_| o.keep_icc) {
            Some(profile) => {
                let (kept, note) = crate::icc::carry(&profile);
                notes.extend(note);
                kept.map(std::borrow::Cow::into_owned)
            }
            None => None,
        };
        let removed: Vec<Found> = metadata::scan(bytes, format)
            .into_iter()
            .filter(|f| !(f.kind == Kind::Icc && icc.is_some()))
            .collect();
        // Token values for the watermark and the rights notice, read once.
        let tokens = self.tokens(decoded.exif.as_deref(), ctx);
        // 5. Resize (and crop to the platform's shapes), the notice band inside the budget.
        let mut pixels = self.fit(pixels, &tokens, &mut notes)?;
        // 6. Watermark, logo and notice.
        if let Some(renderer) = &self.watermark {
            pixels = renderer.apply_noting(pixels, &tokens, &mut notes)?;
        }
        // 7. Perturb, after the last change of size and content.
        let mut quality = o.quality;
        if let Some(p) = &o.perturb {
            perturb::apply(&mut pixels, p, perturb::file_seed(p.seed, ctx.name));
            if quality < MIN_PERTURB_QUALITY && self.output_format(format) != OutputFormat::Png {
                quality = MIN_PERTURB_QUALITY;
                notes.push(format!(
                    "quality raised to {MIN_PERTURB_QUALITY} so the encoder keeps the perturbation"
                ));
            }
        }
        // 8. Flatten: JPEG has no alpha, and the mark must see the pixels that are encoded.
        let output_format = self.output_format(format);
        if output_format == OutputFormat::Jpeg && pixels.layout == Layout::Rgba8 {
            if pixels.has_transparency() {
                notes.push("transparency flattened onto the background colour (JPEG has no alpha)".into());
            }
            pixels = pixels.flatten(o.background);
        }
        // 9. The invisible mark: the last change to the pixels.
        let mark = match &o.mark {
            Some(m) => self.embed_mark(&mut pixels, m, &mut notes)?,
            None => None,
        };
        let settings = EncodeSettings {
            format: output_format,
            quality,
        };
        // 10. Encode, then write the rights notice into the fresh container.
        let mut out = codec::encode(&pixels, settings, icc.as_deref())?;
        if let Some(rights) = &o.rights {
            out = strip::add_rights(out, &Self::expand_rights(rights, &tokens))?;
        }
        let output_size = (pixels.width, pixels.height);
        // The next image on this thread decodes into the same memory.
        crate::pixels::recycle(pixels.data);
        Ok(Processed {
            bytes: out,
            format: output_format,
            report: Report {
                input_format: format,
                output_format,
                input_size,
                output_size,
                orientation: decoded.orientation.to_exif(),
                removed,
                icc_kept: icc.is_some(),
                mark,
                notes,
            },
        })
    }
}

/// The `w` x `h` rectangle of `pixels` whose top-left corner is (`x`, `y`).
fn crop(pixels: &Pixels, x: u32, y: u32, w: u32, h: u32) -> Pixels {
    let ch = pixels.channels();
    let stride = pixels.stride();
    let row = w as usize * ch;
    let mut data = crate::pixels::image_buffer(row * h as usize);
    data.clear();
    for r in y as usize..(y + h) as usize {
        let start = r * stride + x as usize * ch;
        data.extend_from_slice(&pixels.data[start..start + row]);
    }
    Pixels::new(w, h, pixels.layout, data)
}
