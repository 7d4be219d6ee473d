#!/usr/bin/env bash
# The main job on the embedded default, as one request through `skillbank run`:
#   1. `depth_net convert` renders synthetic stereo pairs with exact disparity (no downloads, no user data);
#   2. one request trains a small FastFoundationStereo on them for 1 epoch (no HPO), then evaluates it and
#      exports it to ONNX: three jobs linked by parent ids, run one after the other by the workspace's
#      executor; --wait follows them and prints where each artefact and metric is.
# Usage: bash examples/quickstart/run.sh [output folder]   (default: ./quickstart_run, ignored by git)
# Written (about 110 MB): data/ (16 pairs, ~3 MB); jobs/<id>/ per job with spec.yaml, job.log and the
# action's folder: train/ one weights-only checkpoint (~53 MB; dn_model_latest.pth is a hard link to it),
# evaluate/status.json (kpi), export/FastFoundationStereo.onnx (~53 MB); jobs.db (the job store).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-quickstart_run}" && cd "${1:-quickstart_run}" && pwd)"

echo "== depth_net convert (synthetic pairs -> $out/data/convert)"
depth_net convert -e "$here/data.yaml" "results_dir=$out/data"

data="$out/data/convert"
echo "== skillbank run"
skillbank run "train fast stereo on $data/train.txt, validate on $data/val.txt, 1 epoch, no HPO, then evaluate it and export it" \
  --overrides "$here/overrides.yaml" --workspace "$out" --wait
