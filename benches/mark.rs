//! The invisible mark: embedding into a 24-megapixel RGB image, and detecting it in a copy
//! resized to 1080 px wide, re-encoded and cropped (the zoom search runs), one thread.
//! Targets: embed <= 150 ms, detect <= 500 ms.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::photo;

use photoshield::codec::{self, EncodeSettings};
use photoshield::mark::{self, Detector, Key, MarkId};
use photoshield::{Layout, OutputFormat, Pixels};

fn bench(c: &mut Criterion) {
    let key = Key::from_bytes([42; 32]);
    let id = MarkId::parse("0xC0FFEE42", 32).unwrap();
    let (w, h) = (6000u32, 4000u32);
    let base = photo(w, h);

    let mut group = c.benchmark_group("mark");
    group.sample_size(10);
    group.throughput(Throughput::Elements(w as u64 * h as u64));
    let mut img = base.clone();
    group.bench_function("embed_24mp", |b| {
        b.iter(|| mark::embed(&mut img, &key, id).unwrap())
    });

    // The platform copy: 1080 px wide, JPEG q80, then an off-centre crop keeping 85% of the
    // width, so that the detector has to search the zoom.
    let small = photoshield::resize::resize_exact(&img, 1080, 720).unwrap();
    let bytes = codec::encode(
        &small,
        EncodeSettings {
            format: OutputFormat::Jpeg,
            quality: 80,
        },
        None,
    )
    .unwrap();
    let small = photoshield::compare::load(&bytes).unwrap();
    let (cw, ch) = (918usize, 650usize);
    let mut data = Vec::with_capacity(cw * ch * 3);
    for y in 40..40 + ch {
        data.extend_from_slice(&small.data[(y * 1080 + 120) * 3..(y * 1080 + 120 + cw) * 3]);
    }
    let cropped = Pixels::new(cw as u32, ch as u32, Layout::Rgb8, data);
    let detector = Detector::new(&key);
    assert_eq!(
        detector.detect(&cropped).id,
        Some(id),
        "the bench image must carry the mark"
    );
    group.throughput(Throughput::Elements((cw * ch) as u64));
    group.bench_function("detect_1080_cropped", |b| b.iter(|| detector.detect(&cropped)));
    group.bench_function("detect_1080_uncropped", |b| b.iter(|| detector.detect(&small)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
