//! The web page's bindings: the same [`photoshield::Pipeline`] the CLI runs, called from a Web
//! Worker with the bytes of one photo at a time. Nothing here touches the network or a file
//! system; settings arrive as JSON from the page and are applied exactly as the CLI applies
//! its flags (a preset first, then the explicit values), so that the page's output is
//! byte-identical to `photoshield protect` with the same options.

use photoshield::perturb::Perturb;
use photoshield::strip::Rights;
use photoshield::watermark::{NoticeStyle, Position};
use photoshield::{FileContext, Options, OutputFormat, Pipeline, Preset};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// The settings the page offers, as the page stores them (localStorage) and sends them.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// instagram, facebook, x or web; none keeps size and format.
    pub preset: Option<Preset>,
    /// jpeg, png or webp (lossless here); none: the preset's, else the input's.
    pub format: Option<String>,
    /// Watermark text (tokens as in the CLI); empty draws none.
    pub text: Option<String>,
    pub position: Option<Position>,
    /// The visible notice line; empty draws none.
    pub notice: Option<String>,
    pub notice_style: Option<NoticeStyle>,
    /// The rights notice written into the metadata; empty writes none.
    pub rights: Option<String>,
    pub creator: Option<String>,
    /// Perturbation: "low", "medium", "high" or a number of levels; empty or "off": none.
    pub perturb: Option<String>,
    /// Today's date (UTC) for `{year}`/`{date}` in a photo without a capture date: the browser
    /// tells it, wasm has no clock.
    pub today: Option<(i32, u32, u32)>,
}

fn given(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.trim().is_empty())
}

impl Settings {
    /// The pipeline options, built as `photoshield protect` builds them from the same flags.
    pub fn options(&self) -> Result<Options, String> {
        let mut o = Options::default();
        // The memory a wasm instance can address is 4 GB; one photo at a time per worker.
        o.max_memory = 2 << 30;
        if let Some(p) = self.preset {
            p.apply(&mut o);
        }
        if let Some(f) = given(&self.format) {
            o.format = Some(match f.as_str() {
                "jpeg" | "jpg" => OutputFormat::Jpeg,
                "png" => OutputFormat::Png,
                "webp" => OutputFormat::WebP,
                other => return Err(format!("unknown format '{other}'")),
            });
        }
        o.watermark.text = given(&self.text);
        if let Some(p) = self.position {
            o.watermark.position = p;
        }
        o.watermark.notice = given(&self.notice);
        if let Some(s) = self.notice_style {
            o.watermark.notice_style = s;
        }
        if let Some(level) = given(&self.perturb).filter(|l| l != "off") {
            o.perturb = Some(Perturb::new(photoshield::perturb::parse_level(&level)?));
        }
        o.rights = given(&self.rights).map(|notice| Rights {
            notice,
            creator: given(&self.creator),
            web_statement: None,
        });
        o.today = self.today;
        Ok(o)
    }
}

/// A library error for a person using the page: the hints that name CLI flags ("raise it with
/// --max-megapixels") do not apply there.
fn page_error(e: photoshield::Error) -> JsError {
    let text = e.to_string();
    JsError::new(text.split(" (raise it with --").next().unwrap_or(&text))
}

fn settings(json: &str) -> Result<Settings, JsError> {
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("settings: {e}")))
}

/// What `photoshield inspect` finds in a file, as JSON (`{"leaks":…,"inspection":…}`); the
/// page renders it in words.
#[wasm_bindgen]
pub fn inspect(bytes: &[u8]) -> Result<String, JsError> {
    let ins = photoshield::inspect::inspect(bytes).map_err(page_error)?;
    Ok(serde_json::json!({ "leaks": ins.leaks(), "inspection": ins }).to_string())
}

/// One protected photo.
#[wasm_bindgen]
pub struct Protected {
    bytes: Vec<u8>,
    name: String,
    crc32: u32,
    report: String,
}

#[wasm_bindgen]
impl Protected {
    /// The output file (moved out: call once).
    pub fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
    /// The output's name, as the CLI names it (see [`output_name`]).
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }
    /// CRC-32 of the output, for the ZIP the page assembles (computed here, off the main
    /// thread).
    #[wasm_bindgen(getter)]
    pub fn crc32(&self) -> u32 {
        self.crc32
    }
    /// The pipeline's report, JSON.
    #[wasm_bindgen(getter)]
    pub fn report(&self) -> String {
        self.report.clone()
    }
}

/// Protects one photo. `name` is its path relative to the folder dropped ("day2/a.jpg"), or
/// its file name: the pipeline mixes it into the perturbation seed and `{filename}`, as the
/// CLI does with the path relative to its input folder.
/// `in_folder`: the photo came in a dropped folder (its output keeps its path and name), else
/// it was picked alone (`NAME.protected.EXT`).
#[wasm_bindgen]
pub fn protect(bytes: &[u8], name: &str, in_folder: bool, settings_json: &str) -> Result<Protected, JsError> {
    let options = settings(settings_json)?.options().map_err(|e| JsError::new(&e))?;
    let mut out = run(bytes, name, in_folder, &options)?;
    out.crc32 = crc32fast::hash(&out.bytes);
    Ok(out)
}

/// The output name `photoshield protect` gives: inside a folder the same relative path, its
/// extension changed only when the output format needs another (`day2/a.PNG` as JPEG is
/// `day2/a.jpg`); a file on its own becomes `STEM.protected.EXT`, keeping the input's extension
/// when it fits the format.
pub fn output_name(name: &str, in_folder: bool, format: OutputFormat) -> String {
    let (dir, file) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], Some(&file[i + 1..])),
        _ => (file, None),
    };
    let ext = match ext {
        Some(e) if format.accepts_extension(e) => e,
        _ => format.extension(),
    };
    match in_folder {
        true => format!("{dir}{stem}.{ext}"),
        false => format!("{dir}{stem}.protected.{ext}"),
    }
}

/// Frees the pipeline's spare image buffers (after each photo: a worker may sit idle).
#[wasm_bindgen]
pub fn release_buffers() {
    photoshield::pixels::release_spares();
}

/// A preview of the original: oriented, at most `max_edge` pixels on its long side, as PNG
/// (the browser cannot show every format photoshield reads, HEIC for one).
#[wasm_bindgen]
pub fn original_preview(bytes: &[u8], max_edge: u32) -> Result<Vec<u8>, JsError> {
    let options = Options {
        format: Some(OutputFormat::Png),
        max_size: Some(max_edge.max(1)),
        max_memory: 2 << 30,
        keep_icc: false,
        today: Some((2000, 1, 1)),
        ..Options::default()
    };
    Ok(run(bytes, "", false, &options)?.bytes)
}

/// Whether this build writes lossy WebP (false: the page offers lossless WebP only).
#[wasm_bindgen]
pub fn webp_lossy() -> bool {
    photoshield::codec::WEBP_LOSSY
}

fn run(bytes: &[u8], name: &str, in_folder: bool, options: &Options) -> Result<Protected, JsError> {
    let pipeline = Pipeline::new(options).map_err(page_error)?;
    let out = pipeline
        .process(bytes, &FileContext { name })
        .map_err(page_error)?;
    Ok(Protected {
        name: output_name(name, in_folder, out.format),
        crc32: 0,
        report: serde_json::to_string(&out.report).unwrap_or_default(),
        bytes: out.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_as_the_cli_names_them() {
        let jpeg = OutputFormat::Jpeg;
        assert_eq!(output_name("day2/a.PNG", true, jpeg), "day2/a.jpg");
        assert_eq!(output_name("day2/a.JPEG", true, jpeg), "day2/a.JPEG");
        assert_eq!(output_name("IMG_1.JPG", false, jpeg), "IMG_1.protected.JPG");
        assert_eq!(
            output_name("IMG_1.heic", false, OutputFormat::WebP),
            "IMG_1.protected.webp"
        );
        assert_eq!(output_name("noext", true, OutputFormat::Png), "noext.png");
    }
}
