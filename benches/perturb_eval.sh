#!/usr/bin/env bash
# Measures what the perturbation does to real pretrained models, before and after a platform
# round trip (resize to 1080 px + JPEG q75 of both copies), for each kind, level and mask
# setting, with PSNR and SSIM from `photoshield compare`.
#
# usage: benches/perturb_eval.sh [WORKDIR]
# Needs ../shared/tools/model-eval (installs its models into WORKDIR/venv on first use).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/photoshield-perturb-eval}
tools=$here/../shared/tools/model-eval
corpus=$here/../shared/corpus
mkdir -p "$work"
[ -x "$work/venv/bin/python" ] || bash "$tools/setup.sh" "$work/venv" "$work/samples" >/dev/null
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
ps=$here/target/release/photoshield
py=$work/venv/bin/python

# Originals: the sample photos and the corpus photos of at least 0.3 MP, upright, as PNG,
# long edge 2048 at most.
rm -rf "$work/orig" "$work/in" && mkdir -p "$work/in"
cp "$work"/samples/*.png "$work/in/" 2>/dev/null || true
for f in "$corpus"/*.jpg "$corpus"/*.webp; do
  px=$(exiftool -s3 -n -Composite:Megapixels "$f" 2>/dev/null || echo 0)
  awk -v p="${px:-0}" 'BEGIN { exit !(p >= 0.3) }' && cp "$f" "$work/in/" || true
done
"$ps" protect -q --no-config --format png --max-size 2048 "$work/in" -o "$work/orig" || true
n=$(ls "$work/orig" | wc -l)
echo "photos: $n"

platform() { # DIR -> DIR-platform: 1080 px long edge, JPEG q75
  "$ps" protect -q --no-config --format jpeg --quality 75 --max-size 1080 "$1" -o "$1-platform" --if-exists overwrite
}
platform "$work/orig"

score() { # ORIG PROT -> "top1 top5 face_match"
  "$py" "$tools/eval_model.py" "$1" "$2" 2>/dev/null | awk '
    /^OVERALL classifier/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    /^OVERALL face/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    END { printf "%s %s %s %s", v["top1_agreement"], v["orig_class_still_in_top5"], f["mean_dist_samebox"], f["still_matching(<0.6)"] }'
}
quality() { # ORIG PROT -> "psnr ssim" (means)
  for f in "$1"/*; do
    b=$(basename "$f"); "$ps" compare --json "$f" "$2/$b"
  done | "$py" -c '
import json, sys
r = [json.loads(l) for l in sys.stdin]
psnr = sum(x["psnr_db"] for x in r) / len(r)
ssim = sum(x["ssim"] for x in r) / len(r)
print("%.1f %.4f" % (psnr, ssim))'
}

printf "%-22s %6s %7s | %6s %6s %6s %6s | %6s %6s %6s %6s\n" setting PSNR SSIM top1 top5 facedist facematch "p.top1" "p.top5" "p.fdist" "p.fmatch"
for level in low medium; do
  for kind in perlin gabor uniform; do
    for mask in on off; do
      name="$kind-$level-mask$mask"
      out="$work/$name"
      extra=(); [ "$mask" = off ] && extra=(--no-mask)
      "$ps" protect -q --no-config --format png --perturb "$level" --perturb-kind "$kind" "${extra[@]}" \
        "$work/orig" -o "$out" --if-exists overwrite
      platform "$out"
      read -r psnr ssim <<<"$(quality "$work/orig" "$out")"
      read -r t1 t5 fd fm <<<"$(score "$work/orig" "$out")"
      read -r pt1 pt5 pfd pfm <<<"$(score "$work/orig-platform" "$out-platform")"
      printf "%-22s %6s %7s | %6s %6s %6s %6s | %6s %6s %6s %6s\n" "$name" "$psnr" "$ssim" "$t1" "$t5" "$fd" "$fm" "$pt1" "$pt5" "$pfd" "$pfm"
    done
  done
done
