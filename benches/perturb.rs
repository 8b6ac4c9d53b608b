//! The perturbation stage (pattern generation, masking, apply) on a 24-megapixel RGB image,
//! one thread. Target: 150 megapixels/s or more for the default (Perlin, masked). The default is
//! also measured with its kernels compiled for each instruction set the CPU has.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::photo;

use photoshield::isa::Isa;
use photoshield::perturb::{self, NoiseKind, Perturb};

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
    // The default with the kernels compiled for each instruction set this CPU has.
    for isa in Isa::available() {
        let settings = Perturb::new(4);
        let mut img = base.clone();
        group.bench_function(format!("perlin_masked_{isa:?}").to_lowercase(), |b| {
            pool.install(|| b.iter(|| perturb::apply_with(&mut img, &settings, 1, isa)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
