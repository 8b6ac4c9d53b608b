//! The pure-Rust limit of the job: decode every JPEG of a folder with zune-jpeg and encode it
//! again with jpeg-encoder (q90, 4:2:0), nothing else, on THREADS threads (default 2).
//! `cargo run --release --example codec_limit -- DIR [THREADS]`; prints megapixels and seconds.

use rayon::prelude::*;

use photoshield::codec::{self, DecodeLimits, EncodeSettings};
use photoshield::format::{Format, OutputFormat};

fn main() {
    // The same allocator setting as the photoshield binary (freed buffers are kept for the next
    // photo), so that the limit measures the codecs, not page faults.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: only allocator thresholds, set before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: codec_limit DIR [THREADS]"));
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    let pixels: u64 = pool.install(|| {
        files
            .par_iter()
            .with_max_len(1)
            .map(|f| {
                let bytes = std::fs::read(f).unwrap();
                let decoded =
                    codec::decode(&bytes, Format::Jpeg, DecodeLimits { max_pixels: u64::MAX }).unwrap();
                let out = codec::encode(
                    &decoded.pixels,
                    EncodeSettings {
                        format: OutputFormat::Jpeg,
                        quality: 90,
                    },
                    None,
                )
                .unwrap();
                std::hint::black_box(out);
                decoded.pixels.pixel_count()
            })
            .sum()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.1} MP in {secs:.3} s: {:.1} MP/s",
        pixels as f64 / 1e6,
        pixels as f64 / 1e6 / secs
    );
}
