//! What a file is: the formats photoshield reads and writes, told from the content (never
//! from the name). Every other module asks here; this one asks only the containers.

use std::fmt;

use crate::error::{Error, Result};

/// An input format photoshield can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP, lossy or lossless.
    WebP,
    /// TIFF, written back as PNG (camera RAW files, TIFF inside, are refused).
    Tiff,
    /// GIF, written back as PNG.
    Gif,
    /// HEIC/HEIF: HEVC images in a HEIF container.
    Heif,
    /// AVIF: AV1 images in a HEIF container (decoded with the `avif` feature).
    Avif,
    /// JPEG XL, bare codestream or in its container.
    Jxl,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::WebP => "WebP",
            Format::Tiff => "TIFF",
            Format::Gif => "GIF",
            Format::Heif => "HEIC",
            Format::Avif => "AVIF",
            Format::Jxl => "JPEG XL",
        })
    }
}

/// A format photoshield can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// JPEG, at the chosen quality.
    Jpeg,
    /// PNG, lossless.
    Png,
    /// WebP: lossy at the chosen quality with the `libwebp` feature, lossless without it.
    #[serde(rename = "webp")]
    WebP,
}

impl OutputFormat {
    /// The output format chosen for an input when the user did not ask for one:
    /// the same format, except that TIFF and GIF become PNG (lossless, widely accepted), and
    /// HEIC, AVIF and JPEG XL become JPEG (what every platform takes).
    pub fn for_input(input: Format) -> OutputFormat {
        match input {
            Format::Jpeg | Format::Heif | Format::Avif | Format::Jxl => OutputFormat::Jpeg,
            Format::WebP => OutputFormat::WebP,
            Format::Png | Format::Tiff | Format::Gif => OutputFormat::Png,
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::WebP => "webp",
        }
    }

    /// Whether `ext` (any case, no dot) is an extension of this format.
    pub fn accepts_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            OutputFormat::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
            OutputFormat::Png => ext == "png",
            OutputFormat::WebP => ext == "webp",
        }
    }

    /// The format an extension names, if any.
    pub fn from_extension(ext: &str) -> Option<OutputFormat> {
        [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::WebP]
            .into_iter()
            .find(|f| f.accepts_extension(ext))
    }

    /// The same format as an input [`Format`].
    pub fn as_format(self) -> Format {
        match self {
            OutputFormat::Jpeg => Format::Jpeg,
            OutputFormat::Png => Format::Png,
            OutputFormat::WebP => Format::WebP,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_format().fmt(f)
    }
}

/// Tells the format from the first bytes. Known image formats that photoshield does not read
/// (camera RAW, PDF, BMP, ...) are refused by name so the user knows what to do instead.
pub fn sniff(bytes: &[u8]) -> Result<Format> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Ok(Format::WebP);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if starts(b"II*\0") || starts(b"MM\0*") || starts(b"IIRO") || starts(b"IIU\0") {
        // Most camera raws are TIFF files whose first image is a small preview: tell them by
        // their tags, never by the file name.
        if let Some(raw) = crate::container::tiff::camera_raw(bytes) {
            return Err(Error::Raw(raw));
        }
        if starts(b"II*\0") || starts(b"MM\0*") {
            return Ok(Format::Tiff);
        }
    }
    if starts(b"IIRS") || starts(b"FUJIFILMCCD-RAW") {
        return Err(Error::Raw(if starts(b"IIRS") {
            "Olympus ORF"
        } else {
            "Fujifilm RAF"
        }));
    }
    if bytes.get(4..8) == Some(b"ftyp") {
        let brand = |b: &[u8]| crate::container::isobmff::has_brand(bytes, b);
        if brand(b"crx ") {
            return Err(Error::Raw("Canon CR3"));
        }
        if brand(b"avif") || brand(b"avis") {
            if cfg!(feature = "avif") {
                return Ok(Format::Avif);
            }
            return Err(Error::Unsupported(
                "AVIF (this build has no AV1 decoder); convert to JPEG or PNG first",
            ));
        }
        if [
            &b"heic"[..],
            b"heix",
            b"hevc",
            b"hevx",
            b"heim",
            b"heis",
            b"hevm",
            b"hevs",
            b"mif1",
            b"msf1",
            b"miaf",
        ]
        .iter()
        .any(|b| brand(b))
        {
            return Ok(Format::Heif);
        }
        return Err(Error::Unsupported("video or other ISO media file"));
    }
    if starts(&[0xFF, 0x0A]) || crate::container::isobmff::is_jxl_container(bytes) {
        return Ok(Format::Jxl);
    }
    if starts(b"%PDF") {
        return Err(Error::Unsupported("PDF document"));
    }
    if starts(b"BM") {
        return Err(Error::Unsupported("BMP; convert to PNG first"));
    }
    if starts(b"8BPS") {
        return Err(Error::Unsupported("Photoshop PSD; export a JPEG or PNG first"));
    }
    if starts(&[0, 0, 1, 0]) {
        return Err(Error::Unsupported("ICO icon"));
    }
    Err(Error::NotAnImage("content is not a recognised image format"))
}
