//! Run-time choice of the instruction set for the per-pixel kernels.
//!
//! The build targets the baseline of its architecture (x86-64 means SSE2), so it runs on any
//! machine. The hot kernels are written once, as plain loops the compiler vectorises, and
//! compiled twice on x86-64: for the baseline and with AVX2 enabled; [`Isa::detect`] picks one
//! when the program runs. Both versions compute the same integers and floats in the same order
//! (Rust never fuses a multiply and an add on its own), so their outputs are identical, and the
//! tests check that they are.

/// An instruction set the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The target's baseline (SSE2 on x86-64): runs everywhere.
    Baseline,
    /// x86-64 with AVX2 (Intel since 2013, AMD since 2015).
    Avx2,
}

impl Isa {
    /// The best instruction set this CPU supports (checked once, then cached by std).
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
        Isa::Baseline
    }

    /// Every instruction set this CPU can run, the baseline first (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        match Isa::detect() {
            Isa::Avx2 => vec![Isa::Baseline, Isa::Avx2],
            Isa::Baseline => vec![Isa::Baseline],
        }
    }
}
