//! photoshield protects photos before they are posted online.
//!
//! The pipeline, in order (see [`Pipeline::process`]):
//! 1. read: the format is told from the content ([`format::sniff`]);
//! 2. decode under limits ([`codec::decode`]);
//! 3. orient: the EXIF orientation goes into the pixels (`orient`);
//! 4. strip: nothing but pixels and the colour profile reaches the encoder (`metadata`);
//! 5. resize to a long edge, never upscaling (`resize`);
//! 6. watermark, logo and notice ([`watermark`]);
//! 7. perturb, optionally ([`perturb`]);
//! 8. flatten transparency onto the background when the output is JPEG;
//! 9. the invisible ownership mark, optionally ([`mark`]);
//! 10. encode ([`codec::encode`]), then write the rights notice, if any ([`strip`]).
//!
//! [`Pipeline::process`] is a pure function of bytes and [`Options`]; the file system (walking
//! folders, naming outputs, atomic writes, progress, the summary) lives in `batch` (native
//! targets only). [`inspect`] and [`strip`] work on a file's bytes without the pipeline;
//! [`mark::Detector`] finds the invisible mark again; [`compare`] measures what protection
//! changed.
//!
//! Where things live (modules in plain type are internal: `pub` only for the tests, benches and
//! fuzz targets that drive them on their own, and hidden from these pages):
//! - what a file is: [`format`](mod@format) tells it from the content; `container` holds one
//!   walker per container (JPEG segments, PNG chunks, RIFF chunks, GIF blocks, ISOBMFF boxes,
//!   TIFF IFDs), with every bound checked there; `entropy` walks a JPEG's entropy-coded data;
//! - what a file carries: `metadata/` says what each piece is (`scan`) and reads EXIF;
//!   [`inspect`] reports it; [`strip`] removes it without touching the pixels; `rights` writes
//!   the rights notice; `icc` keeps a colour profile without its identifying text;
//! - the pixels: [`codec`] and `heif` decode and encode (`av1` wraps the AV1 decoder for
//!   AVIF; `image_data` finds where the compressed data really ends); `orient`, `resize`,
//!   [`watermark`], [`perturb`] and [`mark`] are the stages, on [`pixels`], with kernels
//!   picked by `isa`;
//! - around them: `options` ([`Options`]), `pipeline` ([`Pipeline`]), `memory` (what a file
//!   will take before it is decoded), [`compare`], `error` ([`Error`]), and `batch` (the
//!   command line's folder engine).
//!
//! Features: `cli` (default) builds the `photoshield` binary and its dependencies (clap,
//! indicatif, ctrlc, toml, anyhow); `libwebp` (default) writes lossy WebP through libwebp (C);
//! `avif` (default) decodes AVIF with rav1d (pure Rust, native targets only).
//! With none of them, the library builds for `wasm32-unknown-unknown` with no C code, as the web
//! page under `web/` uses it; WebP is then written lossless.

#![warn(missing_docs)]

#[cfg(feature = "avif")]
mod av1;
#[cfg(not(target_arch = "wasm32"))]
pub mod batch;
pub mod codec;
pub mod compare;
pub mod format;
pub mod mark;
pub mod perturb;
pub mod pixels;
pub mod watermark;

mod error;
mod image_data;
mod options;
mod pipeline;

// Test and bench hooks: public so that tests/, benches/, fuzz/ and examples/ can reach the
// stages and walkers on their own, hidden from the documentation because they are not the API.
// Container walkers: tests/formats.rs, probe.rs, codec.rs, memory.rs, reliability.rs,
// fuzz_regressions.rs, the formats fuzz target and benches/pipeline.rs.
#[doc(hidden)]
pub mod container;
// The JPEG entropy-data check: tests/probe.rs and benches/pipeline.rs.
#[doc(hidden)]
pub mod entropy;
// HEIC and JPEG XL decoders on their own: tests/fuzz_regressions.rs and the formats fuzz target.
#[doc(hidden)]
pub mod heif;
// The ICC profile's text fields: tests/probe.rs.
#[doc(hidden)]
pub mod icc;
// The kernel picker: tests/perturb.rs, tests/web.rs and benches/perturb.rs.
#[doc(hidden)]
pub mod isa;
// The memory estimate from a header: tests/memory.rs.
#[doc(hidden)]
pub mod memory;
// scan, Kind, orientation and the EXIF bounds: tests/formats.rs, corpus.rs, cli.rs, probe.rs.
// Its `inspect` and `strip` are the API, re-exported below.
#[doc(hidden)]
pub mod metadata;
// The orientation stage on its own: benches/pipeline.rs.
#[doc(hidden)]
pub mod orient;
// The resize stage on its own: tests/mark.rs, tests/properties.rs, benches/mark.rs,
// benches/pipeline.rs and examples/mark_eval.rs.
#[doc(hidden)]
pub mod resize;

pub use error::{Error, Result};
pub use format::{Format, OutputFormat};
pub use metadata::{inspect, strip};
pub use options::{default_max_memory, Options, Preset, DEFAULT_MAX_PIXELS};
pub use pipeline::{FileContext, MarkReport, Pipeline, Processed, Report};
pub use pixels::{Layout, Pixels};
pub use watermark::Watermark;
