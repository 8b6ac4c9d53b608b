//! Errors of the library. Each names the stage that failed; the batch layer adds the file.

use thiserror::Error;

use crate::format::Format;

/// Why one image could not be protected.
#[derive(Debug, Error)]
pub enum Error {
    #[error("empty file")]
    Empty,

    #[error("not an image: {0}")]
    NotAnImage(&'static str),

    #[error("unsupported format: {0}")]
    Unsupported(&'static str),

    /// A camera RAW file, told by its content: it needs a raw developer, not photoshield.
    #[error("camera RAW ({0}) is not read: export a JPEG or TIFF from your raw developer (Lightroom, darktable, RawTherapee, the camera maker's app) and protect that")]
    Raw(&'static str),

    #[error(
        "image is {width}x{height} ({mp:.1} megapixels), over the limit of {limit_mp:.1} megapixels (raise it with --max-megapixels)",
        mp = *width as f64 * *height as f64 / 1e6,
        limit_mp = *limit as f64 / 1e6
    )]
    TooLarge { width: u32, height: u32, limit: u64 },

    #[error(
        "protecting it would take about {need_mb} MB of memory, over the limit of {limit_mb} MB (raise it with --max-memory)",
        need_mb = *need >> 20,
        limit_mb = *limit >> 20
    )]
    TooMuchMemory { need: u64, limit: u64 },

    #[error("cannot decode {format}: {reason}")]
    Decode { format: Format, reason: String },

    #[error("cannot encode {format}: {reason}")]
    Encode { format: Format, reason: String },

    #[error("{0}")]
    Mark(String),

    #[error("invalid options: {0}")]
    Options(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
