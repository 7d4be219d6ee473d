#!/usr/bin/env bash
# The main job on the embedded default: render synthetic stereo pairs with exact disparity, train a
# small FastFoundationStereo on them (CPU), evaluate it, write disparity PNGs and export ONNX.
# Usage: bash examples/quickstart/run.sh [output folder]   (default: ./quickstart_run)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-quickstart_run}" && cd "${1:-quickstart_run}" && pwd)"
cp "$here/spec.yaml" "$out/spec.yaml"   # relative paths in the spec resolve against its folder

for action in convert train evaluate inference export; do
  echo "== depth_net $action"
  depth_net "$action" -e "$out/spec.yaml"
done

echo
echo "Results under $out/results:"
python - "$out/results" <<'PY'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
for action in ("convert", "train", "evaluate", "inference", "export"):
    lines = [json.loads(l) for l in (root / action / "status.json").read_text().splitlines() if l.strip()]
    last = lines[-1]
    kpi = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in (last.get("kpi") or {}).items())
    print(f"  {action:10s} {last['status']:8s} {kpi}")
PY
