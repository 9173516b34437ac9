#!/bin/bash
# The shipped model's generalist report (docs/generalist): the shipped weights with their default output on a study's
# own grid (since bundle 0.3.2: the sub-2 mm detail gain read from each study, raised voxel by voxel where the band
# holds more than noise) and with the previous release's output (0.3.1: one read gain per study), beside the Gaussian
# and the bilateral filter, every DRF 2-200 on every test set on and off the training grid; then the paired table of
# the two outputs and issue 31's lesion targets. About 35 min on 2 CPU cores. Run from the bundle root.
set -euo pipefail
out=${1:-docs/generalist}
python scripts/evaluate_generalist.py --run shipped=models/model.pt --output-variants image-gain --baselines gaussian bilateral \
    --tuning-datalist data/cohorts/generalist_train_lesions/datalist.json --tuning-subjects 8 --baseline-tuning-subjects 4 \
    --new-scanners-datalist '' --out "$out" --no-progress
python scripts/paired_runs_table.py "$out/results.json" --reference "shipped, image-gain output" --runs shipped > "$out/paired.md.tmp"
mv "$out/paired.md.tmp" "$out/paired.md"
python scripts/lesion_targets_table.py "$out/results.json" --shipped "shipped, image-gain output" --runs shipped \
    --noise-floor docs/generalist/lesion_noise_floor/results.json > "$out/lesion_targets.md.tmp"
mv "$out/lesion_targets.md.tmp" "$out/lesion_targets.md"
