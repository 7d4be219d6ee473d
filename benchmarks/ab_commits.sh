#!/usr/bin/env bash
# Same-machine A/B of the FFS training step across commits (or any source snapshots).
#
#   bash benchmarks/ab_commits.sh prepare main HEAD     # here: git archive each into .devdata/<name>
#   bash benchmarks/ab_commits.sh run main HEAD          # on the GPU (device tool: carry .whl and .devdata)
#
# A branch name's slashes become underscores in its folder (try/x -> .devdata/try_x); `run` takes either.
# `run` installs each snapshot in turn (editable, offline) and times it with its own
# benchmarks/train_throughput.py (variant $V, default bf16_cl_compile_pad_graph; each compiles for 1-3
# minutes on a fresh machine, limited to $TO seconds), writing $OUT/<name>.json (<name>_2.json ... for a
# snapshot named again); then, while fewer than
# $PHASES_BEFORE seconds have passed, benchmarks/train_phases.py of the last one ($OUT/phases_<name>.json).
set -u
mode=$1; shift
if [ "$mode" = prepare ]; then
  for rev in "$@"; do
    dir=".devdata/${rev//\//_}"        # a branch name's slashes become underscores
    rm -rf "$dir" && mkdir -p "$dir" && git archive "$rev" | tar -x -C "$dir"
  done
  exit 0
fi
[ "$mode" = run ] || { echo "usage: ab_commits.sh prepare|run NAME..." >&2; exit 2; }
source benchmarks/device_setup.sh >/dev/null 2>&1
nvidia-smi --query-gpu=name --format=csv,noheader
for snap in "$@"; do
  snap="${snap//\//_}"                  # the folder prepare made for a branch name
  out="$OUT/$snap.json"; n=2
  while [ -e "$out" ]; do out="$OUT/${snap}_$n.json"; n=$((n + 1)); done   # a snapshot timed again
  (cd ".devdata/$snap" && ln -sfn ../../.whl .whl \
   && python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null \
   && timeout "${TO:-230}" python3 benchmarks/train_throughput.py --out "$out" --warmup 3 --steps 10 \
        --variants "${V:-bf16_cl_compile_pad_graph}") 2>&1 | grep '^{\|Error\|error' | tail -4
  echo "$snap done at $SECONDS s"
done
if [ "$SECONDS" -lt "${PHASES_BEFORE:-470}" ]; then
  (cd ".devdata/$snap" && timeout 100 python3 benchmarks/train_phases.py --out "$OUT/phases_$snap.json" \
     --variant bf16_cl_compile_pad --top 40 2>&1 | tail -1)
fi
true
