//! The watermark's hot paths on a 24-megapixel RGB image, beside a plain memory copy of the
//! same buffer (the floor any per-pixel pass is measured against). One thread.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use photoshield::watermark::{blend_all, Position, Renderer, Tokens, Watermark};
use photoshield::{Layout, Pixels};

fn photo(w: u32, h: u32) -> Pixels {
    let data = (0..w as usize * h as usize * 3)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    Pixels::new(w, h, Layout::Rgb8, data)
}

fn watermark(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (w, h) = (6000u32, 4000u32);
    let mut img = photo(w, h);
    let tokens = Tokens {
        date: (2024, 6, 1),
        filename: "IMG_0001.jpg",
    };
    let tiled = Renderer::new(&Watermark {
        text: Some("© {year} Jane Doe".into()),
        position: Position::Tile,
        ..Watermark::default()
    })
    .unwrap();
    let corner = Renderer::new(&Watermark {
        text: Some("© {year} Jane Doe".into()),
        ..Watermark::default()
    })
    .unwrap();
    let placements = tiled.placements(&img, &tokens).unwrap();
    let covered: usize = placements.iter().map(|(s, _, _)| s.width * s.height).sum();
    let visited: usize = placements
        .iter()
        .map(|(s, _, _)| s.runs.iter().map(|r| (r.1 - r.0) as usize).sum::<usize>())
        .sum();
    let opaque: usize = placements
        .iter()
        .map(|(s, _, _)| s.inv.iter().step_by(3).filter(|&&i| i < 255).count())
        .sum();
    eprintln!(
        "runs visit {:.0}% of the image, non-zero alpha {:.0}%",
        100.0 * visited as f64 / (w * h) as f64,
        100.0 * opaque as f64 / (w * h) as f64
    );
    eprintln!(
        "tile: {} stamps covering {:.0}% of the image",
        placements.len(),
        100.0 * covered as f64 / (w * h) as f64
    );

    let mut group = c.benchmark_group("watermark_24mp");
    group.throughput(Throughput::Elements(w as u64 * h as u64));
    group.sample_size(20);
    let src = img.data.clone();
    let mut dst = vec![0u8; src.len()];
    group.bench_function("memcpy_rgb", |b| {
        b.iter(|| dst.copy_from_slice(std::hint::black_box(&src)))
    });
    group.bench_function("blend_tiled_rgb", |b| {
        pool.install(|| b.iter(|| blend_all(&mut img, &placements)))
    });
    group.bench_function("layout_tiled_cached", |b| {
        b.iter(|| tiled.placements(&img, &tokens).unwrap())
    });
    group.bench_function("layout_corner_cached", |b| {
        b.iter(|| corner.placements(&img, &tokens).unwrap())
    });
    group.finish();
}

criterion_group!(benches, watermark);
criterion_main!(benches);
