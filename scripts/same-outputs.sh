#!/usr/bin/env bash
# Shows that two photoshield binaries behave the same: runs protect (default options, then every
# option: preset, watermark text, notice, rights notice, perturbation, invisible mark), strip and
# inspect --json with each on the same folders, and compares every output file, log and report.
# For a refactor that must not change behaviour:
#
#   git stash; cargo build --release; cp target/release/photoshield /tmp/before
#   git stash pop; cargo build --release
#   scripts/same-outputs.sh /tmp/before target/release/photoshield ../shared/corpus tests/fixtures/photos
#
# Exit 0 when everything is byte-identical (timings in the summaries aside), 1 otherwise.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY FOLDER..." >&2; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); shift 2
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
key=$out/mark.key
"$old" keygen -o "$key" >/dev/null 2>&1
for v in old new; do
  bin=${!v}
  for src in "$@"; do
    d=$out/$v/$(basename "$src"); mkdir -p "$d"
    run() { local name=$1; shift; { "$@" || echo "exit $?"; } >"$d/$name.log" 2>&1; }
    run protect "$bin" protect --no-config --quiet -j 2 -o "$d/protect" "$src"
    run protect-all "$bin" protect --no-config --quiet -j 2 --preset instagram --text "© {year} Jane" \
      --notice "Not licensed for AI training" --rights "© Jane" --perturb low --mark 0x1234 --key "$key" \
      -o "$d/protect-all" "$src"
    run strip "$bin" strip --quiet -j 2 -o "$d/strip" "$src"
    run inspect "$bin" inspect --json "$src"
  done
  # The summaries' timings and the output folder's name differ between runs.
  find "$out/$v" -name "*.log" -exec sed -i -E "s/; [0-9.]+ s\$/; T s/; s|$out/$v|OUT|g" {} +
done
files=$(find "$out/old" -type f | wc -l)
if diff -r "$out/old" "$out/new"; then
  echo "same: $files files (outputs, logs, reports) byte-identical"
else
  echo "DIFFERENT (above)"; exit 1
fi
