//! photoshield protects photos before they are posted online.
//!
//! The pipeline, in order (see [`Pipeline::process`]):
//! 1. read: the format is told from the content ([`format::sniff`]);
//! 2. decode under limits ([`codec::decode`]);
//! 3. orient: the EXIF orientation goes into the pixels ([`orient`]);
//! 4. strip: nothing but pixels and the colour profile reaches the encoder ([`metadata`]);
//! 5. resize to a long edge, never upscaling ([`resize`]);
//! 6. watermark, logo and notice ([`watermark`]);
//! 7. perturb, optionally ([`perturb`]);
//! 8. flatten transparency onto the background when the output is JPEG;
//! 9. the invisible ownership mark, optionally ([`mark`]);
//! 10. encode ([`codec::encode`]), then write the rights notice, if any ([`strip`]).
//!
//! [`Pipeline::process`] is a pure function of bytes and [`Options`]; the file system (walking
//! folders, naming outputs, atomic writes, progress, the summary) lives in `batch` (native
//! targets only).
//!
//! Where things live:
//! - what a file is: [`format`](mod@format) tells it from the content; [`container`] holds one
//!   walker per container (JPEG segments, PNG chunks, RIFF chunks, GIF blocks, ISOBMFF boxes,
//!   TIFF IFDs), with every bound checked there; [`entropy`] walks a JPEG's entropy-coded data;
//! - what a file carries: [`metadata`] says what each piece is and reads EXIF; [`inspect`]
//!   reports it; [`strip`] removes it without touching the pixels and writes the rights
//!   notice; [`icc`] keeps a colour profile without its identifying text;
//! - the pixels: [`codec`] and [`heif`] decode and encode ([`image_data`] finds where the
//!   compressed data really ends); [`orient`], [`resize`], [`watermark`], [`perturb`] and
//!   [`mark`] are the stages, on [`pixels`], with kernels picked by [`isa`];
//! - around them: [`options`], [`memory`] (what a file will take before it is decoded),
//!   [`compare`], [`error`].
//!
//! Features: `cli` (default) builds the `photoshield` binary and its dependencies (clap,
//! indicatif, ctrlc, toml, anyhow); `libwebp` (default) writes lossy WebP through libwebp (C).
//! With neither, the library builds for `wasm32-unknown-unknown` with no C code, as the web
//! page under `web/` uses it; WebP is then written lossless.

#[cfg(not(target_arch = "wasm32"))]
pub mod batch;
pub mod codec;
pub mod compare;
pub mod container;
pub mod entropy;
pub mod error;
pub mod format;
pub mod heif;
pub mod icc;
pub mod image_data;
pub mod isa;
pub mod mark;
pub mod memory;
pub mod metadata;
pub mod options;
pub mod orient;
pub mod perturb;
pub mod pipeline;
pub mod pixels;
pub mod resize;
pub mod watermark;

pub use error::{Error, Result};
pub use format::{Format, OutputFormat};
pub use metadata::{inspect, strip};
pub use options::{Options, Preset};
pub use pipeline::{FileContext, Pipeline, Processed, Report};
pub use pixels::{Layout, Pixels};
pub use watermark::Watermark;
