#!/usr/bin/env bash
# Measures the invisible mark on real photos with ../shared/tools/wm-eval/wm_peer_eval.py
# (embed with `protect --mark`, detect with `detect --json`, through the platform attacks),
# then counts false detections on unmarked copies of the same photos.
#
# usage: benches/mark_eval.sh [WORKDIR]      (PEER=1 also runs invisible-watermark's dwtDct)
# Photos: the corpus photos of at least 1000 px and the eleven photographs among Debian's
# plasma-workspace-wallpapers (fetched with apt-get download, not installed). The eval
# upscales anything narrower than 3600 px, so every photo is at least 8 MP.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/photoshield-mark-eval}
corpus=$here/../shared/corpus
evaltool=$here/../shared/tools/wm-eval/wm_peer_eval.py
mkdir -p "$work"
[ -x "$work/venv/bin/python" ] || { python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q numpy pillow; }
py=$work/venv/bin/python
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
ps=$work/photoshield
cp "$here/target/release/photoshield" "$ps"

# The photos.
photos=$work/photos
if [ ! -d "$photos" ]; then
  mkdir -p "$photos" "$work/deb"
  for f in Apple_iPhone6_hdr_gps.jpg Canon_EOS_450D_serial.jpg Canon_SX60HS_orient6_iptc_xmp.jpg \
    GranTurismo5_empty_gps.jpg Nikon_D70s_gps_xmphistory_iptc.jpg Nokia_8.3_5G_gps.jpg \
    Reconyx_HC500_trailcam.jpg c2pa_cawg_training_mining.jpg mat2_dirty_progressive_comment.jpg \
    Nikon_P7000_exif_xmp_10MP.webp; do
    cp "$corpus/$f" "$photos/"
  done
  (cd "$work/deb" && apt-get download -q plasma-workspace-wallpapers >/dev/null 2>&1 && dpkg -x ./*.deb x) || true
  for d in BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am; do
    f=$(ls -S "$work/deb/x/usr/share/wallpapers/$d/contents/images/"* 2>/dev/null | head -1) || true
    [ -n "$f" ] && cp "$f" "$photos/plasma_$d.${f##*.}"
  done
fi
echo "photos: $(ls "$photos" | wc -l)"

# The attack table.
rm -f "$work/key" && "$ps" keygen -o "$work/key" 2>/dev/null
rm -rf "$work/wm"
"$py" "$evaltool" --label photoshield --images "$photos" --min-width 3600 --workdir "$work/wm" \
  --embed-cmd "$ps protect {input} -o {output} --mark 0x{payload_hex} --key $work/key --no-config --if-exists overwrite -q" \
  --detect-cmd "$ps detect {input} --key $work/key --json" \
  --out-json "$work/wm.json" --out-md "$work/wm.md" 2>"$work/wm.log"

# False positives: unmarked copies of every photo through the same attacks.
rm -rf "$work/unmarked" && mkdir -p "$work/unmarked"
"$py" - "$work/wm" "$work/unmarked" <<'PY'
import glob, io, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from PIL import Image, ImageEnhance
src, dst = sys.argv[1], sys.argv[2]
def w(img, name, fmt="PNG", **kw):
    img.save(os.path.join(dst, name), fmt, **kw)
def to_w(img, width):
    return img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
for f in sorted(glob.glob(os.path.join(src, "*_src.png"))):
    im = Image.open(f).convert("RGB")
    n = os.path.basename(f)[:-8]
    W, H = im.size
    w(im, n + "_orig.png")
    w(to_w(im, 1080), n + "_1080.png")
    w(to_w(im, 1080), n + "_1080q75.jpg", "JPEG", quality=75)
    w(im, n + "_q50.jpg", "JPEG", quality=50)
    w(im.crop((W // 20, H // 20, W - W // 20, H - H // 20)), n + "_crop90.png")
    w(to_w(im.crop((W - round(W * .92), 0, W, round(H * .95))), 1080), n + "_crop1080q80.jpg", "JPEG", quality=80)
    cw = min(W, round(H * 4 / 5)); x0 = (W - cw) // 3
    w(to_w(im.crop((x0, 0, x0 + cw, H)), 1080), n + "_ig45.jpg", "JPEG", quality=80)
    w(im, n + "_webp80.webp", "WEBP", quality=80)
    w(ImageEnhance.Brightness(im).enhance(1.1), n + "_bright.png")
    w(to_w(im, 1600), n + "_1600q85.jpg", "JPEG", quality=85)
PY
"$ps" detect "$work/unmarked" --key "$work/key" --json > "$work/unmarked.jsonl" || true

cat "$work/wm.md"
"$py" - "$work/unmarked.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in rows if "score" in r]
top = max(ok, key=lambda r: r["score"])
print("Unmarked copies: %d detections, %d verified IDs, %d CRC matches, highest score %.2f (%s); threshold 7"
      % (len(ok), sum(r["detected"] for r in ok), sum(r["crc_ok"] for r in ok), top["score"], top["path"].split("/")[-1]))
PY

if [ "${PEER:-0}" = 1 ]; then
  "$work/venv/bin/pip" install -q --no-deps invisible-watermark
  "$work/venv/bin/pip" install -q opencv-python-headless PyWavelets
  rm -rf "$work/peer"
  "$py" "$evaltool" --peer imwatermark:dwtDct --images "$photos" --min-width 3600 --workdir "$work/peer" \
    --out-md "$work/peer.md" 2>"$work/peer.log"
  cat "$work/peer.md"
fi
