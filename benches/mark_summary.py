#!/usr/bin/env python3
"""Summarises one or more `mark_eval --rows` files (e.g. a run split across processes):
per scenario and attack, IDs verified, the 95% Wilson interval, photos with a miss, wrong IDs,
and the failures broken down by cause (score under the threshold, CRC failed); then the false
positives (unmarked copies, wrong key). Standard library only.

usage: benches/mark_summary.py ROWS.tsv...
"""
import csv
import math
import sys
from collections import defaultdict

THRESHOLD = 7.0


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    r = z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n) / d
    return (max(0.0, c - r), min(1.0, c + r))


rows = []
for path in sys.argv[1:]:
    with open(path, newline="") as f:
        rows += list(csv.DictReader(f, delimiter="\t"))

order, groups, fps = [], defaultdict(list), defaultdict(list)
for r in rows:
    key = (r["scenario"], r["attack"])
    if r["id"] in ("unmarked", "wrong key"):
        fps[r["id"]].append(r)
        continue
    if key not in groups:
        order.append(key)
    groups[key].append(r)

print("| where marked | attack | ID verified | rate (95% interval) | photos with a miss | misses: score < 7 / CRC failed | wrong IDs | score median (min) |")
print("|---|---|---|---|---|---|---|---|")
for key in order:
    g = groups[key]
    n, k = len(g), sum(r["verified"] == "1" for r in g)
    lo, hi = wilson(k, n)
    per = defaultdict(lambda: [0, 0])
    for r in g:
        per[r["photo"]][0] += r["verified"] == "1"
        per[r["photo"]][1] += 1
    missed = sorted(p for p, (a, b) in per.items() if a < b)
    misses = [r for r in g if r["verified"] != "1"]
    low = sum(float(r["score"]) < THRESHOLD for r in misses)
    crc = sum(float(r["score"]) >= THRESHOLD and r["crc_ok"] != "1" for r in misses)
    scores = sorted(float(r["score"]) for r in g)
    wrong = sum(r["wrong_id"] == "1" for r in g)
    print(f"| {key[0]} | {key[1]} | {k}/{n} | {100*k/n:.1f}% ({100*lo:.1f}-{100*hi:.1f}%) | "
          f"{len(missed)}/{len(per)} | {low} / {crc} | {wrong} | {scores[len(scores)//2]:.1f} ({scores[0]:.1f}) |")
    if missed:
        print("|  | misses by photo: " + ", ".join(f"{p} {per[p][1]-per[p][0]}/{per[p][1]}" for p in missed) + " | | | | | | |")

for what, g in fps.items():
    n = len(g)
    v = sum(r["verified"] == "1" for r in g)
    crc = sum(r["crc_ok"] == "1" for r in g)
    top = max(float(r["score"]) for r in g)
    lo, hi = wilson(v, n)
    print(f"\nfalse positives, {what}: {v}/{n} verified (95% interval {100*lo:.2f}-{100*hi:.2f}%), "
          f"{crc} CRC matches, highest score {top:.1f} (threshold {THRESHOLD})")
