#!/usr/bin/env bash
# Builds the web page into web/dist/, a static folder any static host can serve:
#   index.html style.css app.js zip.js worker.js photoshield_web_bg.wasm
# The wasm module is web/wasm (photoshield without its command line and without C), built for
# wasm32-unknown-unknown, then bound with wasm-bindgen (--target no-modules: the page makes its
# workers from a Blob URL, see app.js).
#
# Toolchain: a rustup toolchain with the wasm32-unknown-unknown target when there is one;
# otherwise Debian's Rust with its standard library's source, which builds std for wasm itself:
#   apt-get install -y rustc-web cargo-web rust-web-src lld-22
# wasm-bindgen-cli is installed once, at exactly the wasm-bindgen version of Cargo.lock, into
# $PHOTOSHIELD_TOOLS (default ~/.cache/photoshield): about 7 minutes the first time, kept across
# clones (CI builds in a fresh clone each run).
#
# Environment: WEB_TARGET_DIR (default target/web), a cargo target folder of its own so that the
# build does not wait on a native build's lock when `cargo test` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${WEB_TARGET_DIR:-$root/target/web}
dist=$root/web/dist
# Whatever cargo, rustc or flags the caller's environment names (`cargo test` runs this script)
# must not leak into the wasm build.
unset RUSTC RUSTDOC RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { echo "build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }

say() { echo "web/build.sh: $*" >&2; }

# 1. The wasm module, with wasm's 128-bit SIMD (every current browser has it: Chrome 91,
# Firefox 89, Safari 16.4). It computes the same numbers: wasm has no fused multiply-add and
# its SIMD float arithmetic is IEEE like the scalar one (the browser test checks the bytes).
wasm_target=wasm32-unknown-unknown
export RUSTFLAGS="-C target-feature=+simd128"
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$wasm_target"; then
  say "building with rustup's $wasm_target target"
  cargo build --release --locked -p photoshield-web --target "$wasm_target" --target-dir "$target_dir"
elif [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  say "building with Debian's Rust ($(/usr/bin/rustc --version)), std built for $wasm_target from source"
  PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 RUSTUP_TOOLCHAIN= /usr/bin/cargo build --release --locked -p photoshield-web \
    -Zbuild-std=std,panic_abort --target "$wasm_target" --target-dir "$target_dir"
else
  say "no Rust toolchain for $wasm_target: either 'rustup target add $wasm_target', or (Debian) 'apt-get install -y rustc-web cargo-web rust-web-src lld-22'"
  exit 3
fi
wasm=$target_dir/$wasm_target/release/photoshield_web.wasm

# 2. wasm-bindgen-cli, exactly the library's version (the two must match).
tools=${PHOTOSHIELD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/photoshield}
bindgen_root=$tools/wasm-bindgen-$version
bindgen=$bindgen_root/bin/wasm-bindgen
if [ ! -x "$bindgen" ]; then
  say "installing wasm-bindgen-cli $version into $bindgen_root (once)"
  # The native toolchain (rustup's when there is one) builds the tool for this machine. Not
  # --locked: its lock file names a yanked webpki-roots. The wasm flags are not for it.
  env -u RUSTFLAGS cargo install --quiet wasm-bindgen-cli --version "=$version" --root "$bindgen_root" \
    --target-dir "$tools/wasm-bindgen-build"
  rm -rf "$tools/wasm-bindgen-build"
fi

# 3. Bind and assemble the page.
out=$target_dir/bindgen
rm -rf "$out"
"$bindgen" --target no-modules --no-typescript --out-dir "$out" "$wasm"
rm -rf "$dist"
mkdir -p "$dist"
cp web/index.html web/style.css web/app.js web/zip.js "$dist/"
cp "$out/photoshield_web_bg.wasm" "$dist/"
# The worker: wasm-bindgen's glue (defines `wasm_bindgen`) followed by the worker's code.
cat "$out/photoshield_web.js" web/worker.js > "$dist/worker.js"
bytes=$(stat -c %s "$dist/photoshield_web_bg.wasm")
gz=$(gzip -9 -c "$dist/photoshield_web_bg.wasm" | wc -c)
say "wrote $dist (wasm $bytes bytes, $gz gzipped)"
