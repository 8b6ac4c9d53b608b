//! The stages around the kernels, each on images generated here: JPEG decode and encode (the
//! physical limit of the whole job), orientation, resize, and the whole `Pipeline::process` of a
//! 12-megapixel photo (orient, text watermark, perturbation, JPEG q90 4:2:0). One thread.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use photoshield::codec::{self, DecodeLimits, EncodeSettings};
use photoshield::format::{Format, OutputFormat};
use photoshield::perturb::Perturb;
use photoshield::watermark::Watermark;
use photoshield::{orient, resize, FileContext, Layout, Options, Pipeline, Pixels};

/// A photo-like image: gradients, edges and fine texture (compresses like a real photo).
fn photo(w: u32, h: u32) -> Pixels {
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let n = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(2246822519)) >> 24) as u8 & 15;
            let edge = if (x / 97 + y / 61) % 2 == 0 { 40 } else { 0 };
            data.extend([
                ((x * 255) / w) as u8 / 2 + n + edge,
                ((y * 255) / h) as u8 / 2 + n,
                90 + n + edge,
            ]);
        }
    }
    Pixels::new(w, h, Layout::Rgb8, data)
}

fn jpeg(p: &Pixels) -> Vec<u8> {
    codec::encode(
        p,
        EncodeSettings {
            format: OutputFormat::Jpeg,
            quality: 90,
        },
        None,
    )
    .unwrap()
}

/// The same photo as a progressive JPEG from libjpeg-turbo's `cjpeg` (q90, 4:2:0, its default
/// progression: 10 scans with successive approximation); `None` without cjpeg.
fn progressive_jpeg(p: &Pixels) -> Option<Vec<u8>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("cjpeg")
        .args(["-progressive", "-quality", "90"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut input = format!("P6\n{} {}\n255\n", p.width, p.height).into_bytes();
    input.extend_from_slice(&p.data);
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    out.status.success().then_some(out.stdout)
}

/// A JPEG with EXIF orientation 6 (as phones write portrait photos).
fn jpeg_orient6(p: &Pixels) -> Vec<u8> {
    let plain = jpeg(p);
    let mut exif = b"Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    out.append(&mut exif);
    out.extend_from_slice(&plain[2..]);
    out
}

const SIZES: [(u32, u32); 3] = [(1152, 864), (4000, 3000), (6000, 4000)];

fn bench(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let limits = DecodeLimits { max_pixels: u64::MAX };

    let mut group = c.benchmark_group("codec");
    group.sample_size(10);
    for (w, h) in SIZES {
        let img = photo(w, h);
        let bytes = jpeg(&img);
        let id = format!("{}mp", (w * h + 500_000) / 1_000_000);
        group.throughput(Throughput::Elements(w as u64 * h as u64));
        group.bench_with_input(BenchmarkId::new("decode_jpeg", &id), &bytes, |b, bytes| {
            pool.install(|| b.iter(|| codec::decode(bytes, Format::Jpeg, limits).unwrap()))
        });
        // The completeness check inside decode_jpeg (Huffman symbols walked, no pixels), alone.
        group.bench_with_input(BenchmarkId::new("entropy_check", &id), &bytes, |b, bytes| {
            b.iter(|| {
                let layout = photoshield::container::jpeg::layout(bytes);
                photoshield::entropy::check(bytes, &layout).unwrap()
            })
        });
        // The same two for a progressive file, at 12 MP only (the walk keeps a non-zero set per
        // block for the refinement scans).
        match (w == 4000).then(|| progressive_jpeg(&img)).flatten() {
            Some(bytes) => {
                group.bench_with_input(
                    BenchmarkId::new("decode_jpeg_progressive", &id),
                    &bytes,
                    |b, bytes| {
                        pool.install(|| b.iter(|| codec::decode(bytes, Format::Jpeg, limits).unwrap()))
                    },
                );
                group.bench_with_input(
                    BenchmarkId::new("entropy_check_progressive", &id),
                    &bytes,
                    |b, bytes| {
                        b.iter(|| {
                            let layout = photoshield::container::jpeg::layout(bytes);
                            photoshield::entropy::check(bytes, &layout).unwrap()
                        })
                    },
                );
            }
            None if w == 4000 => eprintln!("cjpeg not found: the progressive JPEG benches did not run"),
            None => {}
        }
        group.bench_with_input(BenchmarkId::new("encode_jpeg_q90_420", &id), &img, |b, img| {
            pool.install(|| b.iter(|| jpeg(img)))
        });
        // The strips of one image on every core (what a one-photo run gets).
        group.bench_with_input(
            BenchmarkId::new("encode_jpeg_q90_420_all_cores", &id),
            &img,
            |b, img| b.iter(|| jpeg(img)),
        );
        group.bench_with_input(BenchmarkId::new("orient_rotate90", &id), &img, |b, img| {
            // The copy of the input is made outside the timed part.
            pool.install(|| {
                b.iter_batched(
                    || img.clone(),
                    |img| orient::apply(img, image::metadata::Orientation::Rotate90),
                    BatchSize::LargeInput,
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("resize_to_1080", &id), &img, |b, img| {
            pool.install(|| b.iter(|| resize::fit_long_edge(img.clone(), 1080).unwrap()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    let (w, h) = (4000u32, 3000u32);
    let input = jpeg_orient6(&photo(w, h));
    group.throughput(Throughput::Elements(w as u64 * h as u64));
    let full = Options {
        watermark: Watermark {
            text: Some("© {year} Jane Doe".into()),
            ..Watermark::default()
        },
        perturb: Some(Perturb::new(4)),
        ..Options::default()
    };
    for (name, options) in [
        ("strip_only_12mp", Options::default()),
        ("watermark_perturb_low_12mp", full),
    ] {
        let pipeline = Pipeline::new(&options).unwrap();
        group.bench_function(name, |b| {
            pool.install(|| {
                b.iter(|| {
                    pipeline
                        .process(&input, &FileContext { name: "IMG_0001.jpg" })
                        .unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
