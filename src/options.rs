//! What a run should do, as a plain struct. The command line and the config file fill it in;
//! library users build it directly. Every field's doc gives its default.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::OutputFormat;
use crate::mark::Mark;
use crate::perturb::Perturb;
use crate::strip::Rights;
use crate::watermark::Watermark;

/// Default decode limit: 250 megapixels (a 100 MP medium-format photo fits, a bomb does not).
pub const DEFAULT_MAX_PIXELS: u64 = 250_000_000;

/// Three quarters of the memory this process may use: the machine's, or its control group's
/// limit when that is lower (a container). 6 GB when neither can be read.
pub fn default_max_memory() -> u64 {
    let mut total = physical_memory().unwrap_or(8 << 30);
    if let Some(limit) = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        total = total.min(limit);
    }
    total / 4 * 3
}

fn physical_memory() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system constants.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Everything that decides how an image is protected.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Largest image accepted, width x height in pixels. Default: [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
    /// Most memory one file may take on its way through the pipeline, in bytes, as the pipeline
    /// estimates it from the header; in a batch, the files being protected at once share it. Default: [`default_max_memory`] (three quarters of the
    /// machine's memory).
    pub max_memory: u64,
    /// Output format. Default: `None`, the input's own format (TIFF and GIF become PNG).
    pub format: Option<OutputFormat>,
    /// JPEG and WebP quality, 1 to 100. Default: 90.
    pub quality: u8,
    /// Keep the ICC colour profile (it changes how colours display). Default: `true`.
    pub keep_icc: bool,
    /// Longest edge of the output in pixels, a notice band included; larger images are shrunk,
    /// smaller ones are left alone. Default: `None` (keep the size).
    pub max_size: Option<u32>,
    /// Widest output in pixels (Instagram keeps 1080); wider images are shrunk. Default: `None`.
    pub max_width: Option<u32>,
    /// The shapes a platform shows, as the narrowest and widest width / height (a notice band
    /// counts as part of the height). A photo outside is cropped, centred, to the nearest one,
    /// as the platform would crop it; otherwise it would cut the watermark or the notice.
    /// Default: `None` (any shape).
    pub aspect: Option<(f64, f64)>,
    /// Colour that transparent pixels are composited over when the output has no alpha (JPEG).
    /// Default: white.
    pub background: [u8; 3],
    /// Visible watermark, logo and notice. Default: none drawn.
    pub watermark: Watermark,
    /// The adversarial perturbation, applied after the watermark. Default: none.
    pub perturb: Option<Perturb>,
    /// The invisible ownership mark, embedded as the last pixel stage. Default: none.
    pub mark: Option<Mark>,
    /// A rights notice written into the output's metadata (the only metadata photoshield
    /// writes besides the colour profile). `{year}`/`{date}` tokens are expanded.
    /// Default: none.
    pub rights: Option<Rights>,
    /// The date `{year}` and `{date}` use for a photo without a capture date, as (year, month,
    /// day). Default: `None`, today (UTC) from the system clock.
    pub today: Option<(i32, u32, u32)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_memory: default_max_memory(),
            format: None,
            quality: 90,
            keep_icc: true,
            max_size: None,
            max_width: None,
            aspect: None,
            background: [255, 255, 255],
            watermark: Watermark::default(),
            rights: None,
            perturb: None,
            mark: None,
            today: None,
        }
    }
}

impl Options {
    /// The defaults with a platform preset applied.
    pub fn preset(preset: Preset) -> Options {
        let mut options = Options::default();
        preset.apply(&mut options);
        options
    }

    /// Checks ranges; called by [`crate::Pipeline::new`].
    pub fn validate(&self) -> Result<()> {
        if !(1..=100).contains(&self.quality) {
            return Err(Error::Options(format!(
                "quality must be 1 to 100, not {}",
                self.quality
            )));
        }
        if self.max_size == Some(0) || self.max_width == Some(0) {
            return Err(Error::Options("max size must be at least 1 pixel".into()));
        }
        if let Some((lo, hi)) = self.aspect {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return Err(Error::Options(format!(
                    "the aspect range must be 0 < narrowest <= widest, not {lo} to {hi}"
                )));
            }
        }
        if let Some(p) = &self.perturb {
            p.validate()?;
        }
        self.watermark.validate()?;
        if self.max_memory == 0 {
            return Err(Error::Options("max-memory must be more than 0".into()));
        }
        if self.max_pixels == 0 {
            return Err(Error::Options("the pixel limit must be above 0".into()));
        }
        Ok(())
    }
}

/// Sizes and formats that upload platforms keep without recompressing much. Each preset
/// delivers at most what the platform stores (so it does not shrink it again) and never less
/// (so it does not enlarge it); a notice band is counted inside the size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 1080 px wide, shapes from 4:5 (portrait) to 1.91:1 (landscape), JPEG q90: Instagram
    /// stores feed photos 1080 px wide and crops any other shape.
    Instagram,
    /// Long edge 2048 px, JPEG q90: the largest size Facebook keeps.
    Facebook,
    /// Long edge 4096 px, JPEG q90: the largest photo X (Twitter) keeps.
    X,
    /// Long edge 2048 px, WebP q85: a web page or portfolio.
    Web,
}

impl Preset {
    /// Sets the preset's size limits, shapes, format and quality.
    pub fn apply(self, options: &mut Options) {
        let (format, quality) = match self {
            Preset::Web => (OutputFormat::WebP, 85),
            _ => (OutputFormat::Jpeg, 90),
        };
        (options.max_size, options.max_width, options.aspect) = match self {
            Preset::Instagram => (None, Some(1080), Some((4.0 / 5.0, 1.91))),
            Preset::Facebook | Preset::Web => (Some(2048), None, None),
            Preset::X => (Some(4096), None, None),
        };
        options.format = Some(format);
        options.quality = quality;
    }
}
