//! Decoding a 12-megapixel iPhone HEIC (the corpus's iPhone 13 Pro Max photo, 4032x3024 in a
//! grid of 48 tiles) against decoding a 12-megapixel JPEG of the same photo (made here from the
//! decoded pixels at quality 90, 4:2:0, as cameras write them), and the corpus JPEG XL. One
//! thread. Needs ../shared/corpus; without it the bench says so and measures nothing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use photoshield::codec::{self, DecodeLimits, EncodeSettings};
use photoshield::format::{Format, OutputFormat};

fn bench(c: &mut Criterion) {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(heic) = std::fs::read(corpus.join("Apple_iPhone13ProMax_orient6.heic")) else {
        eprintln!("SKIPPED: ../shared/corpus not found; the format benches need its HEIC");
        return;
    };
    let jxl = std::fs::read(corpus.join("mat2_dirty_xmp.jxl")).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let limits = DecodeLimits { max_pixels: u64::MAX };
    let decoded = codec::decode(&heic, Format::Heif, limits).unwrap();
    let pixels = decoded.pixels;
    let jpeg = codec::encode(
        &pixels,
        EncodeSettings {
            format: OutputFormat::Jpeg,
            quality: 90,
        },
        None,
    )
    .unwrap();

    let mut group = c.benchmark_group("decode_12mp");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pixels.width as u64 * pixels.height as u64));
    group.bench_function("heic", |b| {
        b.iter(|| pool.install(|| codec::decode(&heic, Format::Heif, limits).unwrap()))
    });
    group.bench_function("jpeg", |b| {
        b.iter(|| pool.install(|| codec::decode(&jpeg, Format::Jpeg, limits).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("decode_jxl_0.5mp");
    group.sample_size(10);
    group.bench_function("jxl", |b| {
        b.iter(|| pool.install(|| codec::decode(&jxl, Format::Jxl, limits).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
