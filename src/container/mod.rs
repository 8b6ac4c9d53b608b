//! Container formats: where each file format's structure is known (walkers with strict bounds).

pub(crate) mod gif;
pub mod isobmff;
pub mod jpeg;
pub mod png;
pub mod riff;
pub mod tiff;
