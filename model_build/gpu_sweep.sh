#!/usr/bin/env bash
# One GPU session's sweep: several train.py runs in parallel on one GPU, each stopping within
# BUDGET seconds; checkpoints and JSON logs go to $OUT (the device tool brings them back).
# Run from the repository root with .data/pack (datapack.py) and .data/fer_init.pt carried:
#   BUDGET=380 bash model_build/gpu_sweep.sh
# Smoke test on a CPU: OUT=/tmp/sweep BUDGET=60 EXTRA="--limit 256 --epochs 1 --device cpu" bash model_build/gpu_sweep.sh
set -euo pipefail
OUT_DIR=${OUT:-/tmp/sweep}
BUDGET=${BUDGET:-380}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
# The bare GPU host has no editable install of this repository: meaa comes from the source tree.
export PYTHONPATH=$PWD/layers${PYTHONPATH:+:$PYTHONPATH}
DATA=$(mktemp -d)
mkdir -p "$OUT_DIR/runs" "$OUT_DIR/ck"
$PY -m model_build.datapack unpack .data/pack/fer2013_train "$DATA/train.npz" &
$PY -m model_build.datapack unpack .data/pack/fer2013_val "$DATA/val.npz" &
wait
nvidia-smi -L 2>/dev/null || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

RUNS=${RUNS:-}  # space-separated subset of the run names below; empty = all
run() {
  local name=$1; shift
  if [ -n "$RUNS" ] && [[ " $RUNS " != *" $name "* ]]; then return 0; fi
  $PY -m model_build.train --train "$DATA/train.npz" --val "$DATA/val.npz" --name "$name" \
    --checkpoint-dir "$OUT_DIR/ck/$name" --log-dir "$OUT_DIR/runs" --time-budget-s "$BUDGET" \
    --no-progress --epochs 150 --batch-size 128 --early-stop-patience 20 "$@" $EXTRA > "$OUT_DIR/$name.log" 2>&1 &
}
run w1_m4 --width 1 --target moods4
run w2_m4 --width 2 --target moods4
run w2_e7 --width 2 --target emotions7
run w2_m4_mix --width 2 --target moods4 --mixup-alpha 0.2 --cutout-prob 0.5
run w2_e7_mix --width 2 --target emotions7 --mixup-alpha 0.2 --cutout-prob 0.5
run ft64_e7 --width 1 --input-size 64 --target emotions7 --init-from .data/fer_init.pt --lr 3e-4
run ft64_m4 --width 1 --input-size 64 --target moods4 --init-from .data/fer_init.pt --lr 3e-4
wait
for log in "$OUT_DIR"/*.log; do echo "== $log"; grep -E "epoch|Error|error" "$log" | tail -n 3; done
find "$OUT_DIR/ck" -name last.pt -delete  # optimizer state: not needed back here, keeps the transfer small
# The device tool brings back only a few files: one archive.
tar czf "$OUT_DIR/sweep.tgz" -C "$OUT_DIR" ck runs $(cd "$OUT_DIR" && ls *.log)
rm -rf "$OUT_DIR/ck" "$OUT_DIR/runs"
