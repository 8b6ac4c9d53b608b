//! The perturbation stage (pattern generation, masking, apply) on a 24-megapixel RGB image,
//! one thread. Target: 150 megapixels/s or more for the default (Perlin, masked).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use photoshield::perturb::{self, NoiseKind, Perturb};
use photoshield::{Layout, Pixels};

fn photo(w: u32, h: u32) -> Pixels {
    // Smooth gradients with fine texture, like a photo.
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let t = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 13) as u8 & 31;
            data.extend([(x / 24) as u8 / 2 + t, (y / 16) as u8 / 2 + t, 128 + t]);
        }
    }
    Pixels::new(w, h, Layout::Rgb8, data)
}

fn bench(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (w, h) = (6000u32, 4000u32);
    let base = photo(w, h);
    let mut group = c.benchmark_group("perturb_24mp");
    group.throughput(Throughput::Elements(w as u64 * h as u64));
    group.sample_size(10);
    for (name, kind, mask) in [
        ("perlin_masked", NoiseKind::Perlin, true),
        ("perlin_unmasked", NoiseKind::Perlin, false),
        ("gabor_masked", NoiseKind::Gabor, true),
        ("uniform_unmasked", NoiseKind::Uniform, false),
    ] {
        let settings = Perturb {
            epsilon: 4,
            kind,
            mask,
            seed: 1,
        };
        let mut img = base.clone();
        group.bench_function(name, |b| {
            pool.install(|| b.iter(|| perturb::apply(&mut img, &settings, 1)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
