//! Errors of the library. Each names the stage that failed; the batch layer adds the file.

use thiserror::Error;

use crate::format::Format;

/// Why one image could not be protected.
#[derive(Debug, Error)]
pub enum Error {
    /// The input has no bytes.
    #[error("empty file")]
    Empty,

    /// The content is no image format photoshield knows; the text says what it looks like.
    #[error("not an image: {0}")]
    NotAnImage(&'static str),

    /// A file photoshield recognises but does not read (BMP, PDF, video), or an operation its
    /// format does not allow (a lossless strip of HEIC, TIFF or GIF); the text says which and
    /// what to do instead.
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
    /// The header declares more pixels than [`Options::max_pixels`](crate::Options::max_pixels)
    /// allows; nothing was decoded.
    TooLarge {
        /// Declared width, in pixels.
        width: u32,
        /// Declared height, in pixels.
        height: u32,
        /// The limit, in pixels.
        limit: u64,
    },

    #[error(
        "protecting it would take about {need_mb} MB of memory, over the limit of {limit_mb} MB (raise it with --max-memory)",
        need_mb = *need >> 20,
        limit_mb = *limit >> 20
    )]
    /// Protecting the file would take more memory than
    /// [`Options::max_memory`](crate::Options::max_memory) allows, as estimated from the header.
    TooMuchMemory {
        /// The estimate, in bytes.
        need: u64,
        /// The limit, in bytes.
        limit: u64,
    },

    /// The file could not be decoded. The source is the codec's own error, or photoshield's
    /// reason for refusing the file (a truncated JPEG, a corrupt container) in words.
    #[error("cannot decode {format}: {source}")]
    Decode {
        /// The format being decoded.
        format: Format,
        /// Why.
        #[source]
        source: Source,
    },

    /// The image could not be encoded; the source is the encoder's error.
    #[error("cannot encode {format}: {source}")]
    Encode {
        /// The format being written.
        format: Format,
        /// Why.
        #[source]
        source: Source,
    },

    /// Resampling failed; the source is fast_image_resize's error.
    #[error("resize failed: {0}")]
    Resize(#[source] Source),

    /// A container cannot hold what was to be written into it: a metadata segment over JPEG's
    /// 64 KB, an ICC profile over JPEG's 255 segments.
    #[error("cannot write the {format} file: {reason}")]
    Container {
        /// The format being written.
        format: Format,
        /// What does not fit.
        reason: &'static str,
    },

    /// The invisible mark could not be embedded: the image is too small to carry it, or too flat
    /// for the full strength a required mark asks; the text says which.
    #[error("{0}")]
    Mark(String),

    /// Options out of range or unusable (a font or logo that cannot be read), or images that
    /// [`compare`](crate::compare::compare) cannot line up; the text says which.
    #[error("invalid options: {0}")]
    Options(String),
}

/// The error underneath an [`Error`](enum@Error): a codec's or a library's own, kept as the
/// source (its text is also in the error's message, which is what the command line prints).
pub type Source = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// A file of `format` that could not be decoded, and why.
    pub(crate) fn decode(format: Format, source: impl Into<Source>) -> Error {
        Error::Decode {
            format,
            source: source.into(),
        }
    }

    /// An image that could not be encoded as `format`, and why.
    pub(crate) fn encode(format: Format, source: impl Into<Source>) -> Error {
        Error::Encode {
            format,
            source: source.into(),
        }
    }
}

/// A result whose error is photoshield's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, DecodeLimits};
    use std::error::Error as _;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_pixel(width, height, image::Rgb([9, 99, 199]))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_decoding_failure_keeps_the_codecs_error_as_its_source() {
        let mut bytes = png(64, 64);
        let idat = crate::container::png::chunks(&bytes)
            .find(|c| &c.kind == b"IDAT")
            .unwrap()
            .offset;
        // One byte of the compressed data changed: the chunk's CRC no longer matches.
        bytes[idat + 10] ^= 0xFF;
        let err = codec::decode(&bytes, Format::Png, DecodeLimits { max_pixels: u64::MAX }).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    format: Format::Png,
                    ..
                }
            ),
            "{err:?}"
        );
        let source = err.source().expect("a source");
        assert!(
            source.downcast_ref::<png::DecodingError>().is_some(),
            "{source:?}"
        );
        // The message still says what went wrong, as the command line prints it.
        assert!(err.to_string().starts_with("cannot decode PNG: "), "{err}");
        assert!(err.to_string().ends_with(&source.to_string()), "{err}");
    }

    #[test]
    fn photoshields_own_reasons_are_sources_too() {
        let err = codec::decode(
            &[0xFF, 0xD8, 0xFF, 0xD9],
            Format::Jpeg,
            DecodeLimits { max_pixels: u64::MAX },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    format: Format::Jpeg,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.source().is_some());
    }

    #[test]
    fn a_rights_notice_too_large_for_a_jpeg_segment_is_a_container_error() {
        let jpeg = crate::codec::encode(
            &crate::pixels::Pixels::new(16, 16, crate::pixels::Layout::Rgb8, vec![128; 16 * 16 * 3]),
            crate::codec::EncodeSettings {
                format: crate::format::OutputFormat::Jpeg,
                quality: 90,
            },
            None,
        )
        .unwrap();
        let rights = crate::strip::Rights {
            notice: "x".repeat(70_000),
            creator: None,
            web_statement: None,
        };
        let err = crate::strip::add_rights(jpeg, &rights).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Container {
                    format: Format::Jpeg,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "cannot write the JPEG file: a metadata segment over 64 KB"
        );
    }
}
