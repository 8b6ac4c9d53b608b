//! Container formats: where each file format's structure is known (walkers with strict bounds).

pub mod isobmff;
pub mod tiff;
