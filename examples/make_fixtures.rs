//! Regenerates the sample photos in tests/fixtures/photos (the README's first command runs on
//! them): `cargo run --example make_fixtures`. Deterministic; a test checks the committed files
//! match.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photos");
    for (rel, bytes) in common::sample_photos() {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, bytes)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
