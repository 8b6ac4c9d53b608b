//! Writes N photo-like JPEGs (q92, 4:2:0; every fourth stored with orientation 6), 4000x3000
//! unless told otherwise: `cargo run --release --example make_workload -- DIR N [WIDTH HEIGHT]`.

#[path = "../tests/common/mod.rs"]
mod common;

use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: make_workload DIR N"));
    let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    std::fs::create_dir_all(&dir).unwrap();
    let w: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4000);
    let h: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3000);
    (0..n).into_par_iter().for_each(|i| {
        let upright = common::landscape(w, h, 100 + i);
        let orientation = if i % 4 == 3 { 6 } else { 1 };
        let (stored, sw, sh) = common::store_for_orientation(&upright, w, h, orientation);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 92);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        enc.encode(&stored, sw as u16, sh as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let spec = common::ExifSpec {
            orientation: Some(orientation as u16),
            make_model: Some(("TestCam", "Model X")),
            gps: Some((48.85837, 2.29448)),
            serial: Some("SN-0042-7777"),
            ..Default::default()
        };
        let file = common::with_segments(&jpeg, &[common::exif_segment(&spec)]);
        std::fs::write(dir.join(format!("photo_{i:03}.jpg")), file).unwrap();
    });
}
