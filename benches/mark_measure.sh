#!/usr/bin/env bash
# Measures the invisible mark's failure rate on real photos with examples/mark_eval.rs: every
# photo marked with random 32-bit IDs at its own size and at the sizes the presets deliver,
# through the platform attacks of docs/invisible-mark.md, plus false positives (unmarked copies,
# a wrong key). The README's robustness table comes from the full configuration.
#
# usage: benches/mark_measure.sh [quick|main|full] [WORKDIR]
#   quick: 4 IDs per photo; at full size: none, 1080 px + q75, WebP q80, 4:5 crop
#   main:  20 IDs per photo; at full size: none, 1080 px + q75, WebP q80
#   full:  20 IDs per photo, every attack of docs/invisible-mark.md
# Every configuration also marks each photo at the preset sizes (1080x1350, 1080x566, 720x1080,
# 720x900) and recompresses it (JPEG q75, WebP q80, 1080 px wide + q75).
# Photos (20): the corpus camera photos of 2 MP or more that photoshield decodes (JPEG, WebP;
# ultrahdr_gainmap_mpf.jpg is truncated), GranTurismo5_empty_gps.jpg (1.4 MP) and the eleven photographs of Debian's plasma-workspace-wallpapers (2560x1600, fetched with
# apt-get download, not installed). Runs at the lowest priority, one thread.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-quick}
work=${2:-/tmp/photoshield-mark-measure}
corpus=$here/../shared/corpus
photos=$work/photos
if [ ! -d "$photos" ]; then
  mkdir -p "$photos" "$work/deb"
  for f in Apple_iPhone6_hdr_gps.jpg Canon_EOS_450D_serial.jpg Canon_SX60HS_orient6_iptc_xmp.jpg \
    Nikon_D70s_gps_xmphistory_iptc.jpg Nikon_P7000_exif_xmp_10MP.webp Nokia_8.3_5G_gps.jpg \
    Reconyx_HC500_trailcam.jpg c2pa_cawg_training_mining.jpg GranTurismo5_empty_gps.jpg; do
    cp "$corpus/$f" "$photos/"
  done
  (cd "$work/deb" && apt-get download -q plasma-workspace-wallpapers >/dev/null && dpkg -x ./*.deb x)
  for d in BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite OneStandsOut Path summer_1am; do
    cp "$work/deb/x/usr/share/wallpapers/$d/contents/images/2560x1600.jpg" "$photos/plasma_$d.jpg"
  done
fi
echo "photos: $(ls "$photos" | wc -l)"
cargo build --release --quiet --example mark_eval --manifest-path "$here/Cargo.toml"
args=(--rows "$work/$mode.tsv")
[ "$mode" = quick ] && args+=(--quick)
[ "$mode" = main ] && args+=(--main)
nice -n 19 "$here/target/release/examples/mark_eval" "${args[@]}" "$photos"/* | tee "$work/$mode.md"
echo "one row per detection: $work/$mode.tsv"
