#!/usr/bin/env bash
# One GPU session trains everything for the distilled mood model, in stages, inside a fixed time budget,
# and always leaves its archives in $OUT (the device tool brings back at most 8 files of 16 MiB):
#   0. unpack the data
#   1. teachers in parallel on the GPU (train.py, cosine schedule, FER2013 fit split only) while the CPUs
#      find meaa's own crop of every fit face (geometry.py); the bank of augmented views is drawn with
#      those crops (bank.py views), and each teacher scores it (bank.py logits), the converted fer
#      network untrained
#   2. students in parallel (distill.py): 5 leave-one-JAFFE-subject-out folds, the final model (all 5
#      subjects) and ablations (no fer teacher, no distillation, no JAFFE)
#   3. ONNX export of the students (export.py, temperature fitted on the FER2013 holdout, with and
#      without in-graph flip), INT8 variants of the final model (quantize.py: u8/s8, 7-bit, u8/u8), and
#      every model's outputs on the FER2013 holdout on this host's CPU (cpu_numerics.py), with its CPU features
# Layout (made by model_build/gpu_pack.py): model_build/, layers/meaa/, data/{fer2013_fit,fer2013_holdout}
# (datapack), data/jaffe_views.npz, data/fer_init.pt. Run from that folder:
#   OUT=/tmp/out bash run.sh        (what ran: one H200 via the device tool, timeout 560 s)
# CPU smoke test (same code path, tiny; on 2 busy cores it takes about 15 minutes):
#   OUT=/tmp/out TOTAL=700 STAGE1=40 BANK_BUDGET=25 POST=200 DEVICE=cpu LIMIT=512 VIEWS=2 GEOMETRY_PROCESSES=2 bash run.sh
set -u
START=$(date +%s)
now() { echo $(( $(date +%s) - START )); }
OUT_DIR=${OUT:-/tmp/gpu_out}
TOTAL=${TOTAL:-520}          # seconds from start until the archives must be written
STAGE1=${STAGE1:-185}        # teacher training budget
BANK_BUDGET=${BANK_BUDGET:-35}
POST=${POST:-90}             # export + quantize + archives + CPU numerics
DEVICE=${DEVICE:-auto}
LIMIT=${LIMIT:-0}
VIEWS=${VIEWS:-12}
GEOMETRY_PROCESSES=${GEOMETRY_PROCESSES:-8}
GEOMETRY_TIMEOUT=${GEOMETRY_TIMEOUT:-160}  # past it, the views use the standard augmentation only
PY=${PY:-python3}
export PYTHONPATH=$PWD:$PWD/layers${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
WORK=$(mktemp -d)
LOGS=$OUT_DIR/logs
mkdir -p "$LOGS" "$WORK/ck" "$WORK/teachers" "$WORK/onnx"
say() { echo "[$(now)s] $*" | tee -a "$LOGS/run.log"; }

say "host: $(nproc --all) cores; $(nvidia-smi -L 2>/dev/null | head -1)"
$PY -c "import torch, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'onnxruntime', onnxruntime.__version__)" 2>&1 | tee -a "$LOGS/run.log"
(lscpu; grep -m1 flags /proc/cpuinfo) > "$LOGS/lscpu.txt" 2>&1
$PY -m model_build.cpu_numerics features > "$LOGS/cpu_features.json" 2>&1

$PY -m model_build.datapack unpack data/fer2013_fit "$WORK/fit.npz" &
$PY -m model_build.datapack unpack data/fer2013_holdout "$WORK/holdout.npz" &
wait
if [ "$LIMIT" -gt 0 ]; then  # smoke runs: a small holdout too (it is scored after every epoch; the file is sorted by label)
  $PY -c "import numpy as np; d = dict(np.load('$WORK/holdout.npz')); np.savez('$WORK/holdout.npz', **{k: v[::11] for k, v in d.items()})"
fi
# ---- stage 1: teachers train (standard augmentation) while this host's CPUs find meaa's crop on every
# fit face (geometry.py); then the bank of views is drawn with those crops, and each teacher scores it.
teacher() {
  local name=$1; shift
  (
    timeout $((STAGE1 + 60)) $PY -m model_build.train --train "$WORK/fit.npz" --val "$WORK/holdout.npz" --name "$name" --target emotions7 \
      --checkpoint-dir "$WORK/ck/$name" --log-dir "$LOGS" --schedule cosine --epochs 300 --time-budget-s "$STAGE1" \
      --batch-size 256 --lr 1.5e-3 --no-progress --device "$DEVICE" --limit "$LIMIT" "$@" \
      > "$LOGS/$name.log" 2>&1 || echo "train FAILED" >> "$LOGS/$name.log"
    for _ in $(seq 1 150); do [ -f "$WORK/views.ready" ] && break; sleep 2; done
    if [ -f "$WORK/ck/$name/best.pt" ] && [ -f "$WORK/views.npy" ]; then
      timeout $((BANK_BUDGET + 60)) $PY -m model_build.bank logits --checkpoint "$WORK/ck/$name/best.pt" --views "$WORK/views.npy" \
        --jaffe data/jaffe_views.npz --val "$WORK/holdout.npz" --out "$WORK/teachers/$name" --budget-s "$BANK_BUDGET" \
        --device "$DEVICE" >> "$LOGS/$name.log" 2>&1 || echo "bank FAILED" >> "$LOGS/$name.log"
    fi
  ) &
}
teacher t_w3_s1 --width 3 --seed 1 --amp
teacher t_w3_s2 --width 3 --seed 2 --amp
teacher t_w4_s5 --width 4 --seed 5 --amp
teacher t_w2_s3 --width 2 --seed 3
teacher t_ft64 --width 1 --input-size 64 --init-from data/fer_init.pt --lr 3e-4 --seed 4

timeout "$GEOMETRY_TIMEOUT" $PY -m model_build.geometry "$WORK/fit.npz" --attach --out "$WORK/fit_geometry.npz" --processes "$GEOMETRY_PROCESSES" --limit "$LIMIT" \
  > "$LOGS/geometry.log" 2>&1 || { say "geometry FAILED: views without the service-like crops"; cp "$WORK/fit.npz" "$WORK/fit_geometry.npz"; }
say "geometry done"
timeout 120 $PY -m model_build.bank views --train "$WORK/fit_geometry.npz" --out "$WORK/views.npy" --views "$VIEWS" --device "$DEVICE" \
  --limit "$LIMIT" >> "$LOGS/run.log" 2>&1 || say "views FAILED"
touch "$WORK/views.ready"
say "views drawn"
timeout $((BANK_BUDGET + 60)) $PY -m model_build.bank logits --checkpoint data/fer_init.pt --views "$WORK/views.npy" --jaffe data/jaffe_views.npz \
  --val "$WORK/holdout.npz" --out "$WORK/teachers/fer" --budget-s "$BANK_BUDGET" --device "$DEVICE" \
  > "$LOGS/fer_teacher.log" 2>&1 &
wait
say "teachers done"
for json in "$WORK"/teachers/*.json; do [ -e "$json" ] && cp "$json" "$LOGS/$(basename "$json" .json).bank.json"; done
cp "$WORK"/teachers/*.val.npy "$LOGS/" 2>/dev/null

# Teachers that scored at least one view (a crashed one is left out, and said so).
usable() {
  local names=""
  for json in "$WORK"/teachers/*.json; do
    [ -e "$json" ] || continue
    local name; name=$(basename "$json" .json)
    if $PY -c "import json,sys; sys.exit(0 if json.load(open('$json'))['views_scored'] > 0 else 1)"; then
      if [ -z "${1:-}" ] || [ "$name" != "$1" ]; then names="$names,$WORK/teachers/$name"; fi
    fi
  done
  echo "${names#,}"
}
ALL_TEACHERS=$(usable)
NO_FER=$(usable fer)
say "teachers: $ALL_TEACHERS"

# ---- stage 2: students ------------------------------------------------------------------------------
STAGE2=$(( TOTAL - POST - $(now) ))
[ "$STAGE2" -lt 30 ] && STAGE2=30  # late teachers: the students still get a short run
say "student budget ${STAGE2}s"
student() {
  local name=$1; shift
  timeout $((STAGE2 + 60)) $PY -m model_build.distill --name "$name" --views "$WORK/views.npy" --fit "$WORK/fit.npz" --val "$WORK/holdout.npz" \
    --jaffe data/jaffe_views.npz --out-dir "$WORK/ck/$name" --log-dir "$LOGS" --time-budget-s "$STAGE2" --epochs 400 \
    --device "$DEVICE" --limit "$LIMIT" "$@" > "$LOGS/$name.log" 2>&1 || echo "distill FAILED" >> "$LOGS/$name.log" &
}
if [ -n "$ALL_TEACHERS" ]; then
  for subject in KA KL KM KR MK; do student "fold_$subject" --teachers "$ALL_TEACHERS" --jaffe-exclude "$subject"; done
  student final --teachers "$ALL_TEACHERS"
  student final_nojaffe --teachers "$ALL_TEACHERS" --jaffe-fraction 0
  [ -n "$NO_FER" ] && student final_nofer --teachers "$NO_FER"
fi
student final_nokd --kd-alpha 0
wait
say "students done"

# ---- stage 3: ONNX, INT8 variants, this CPU's numbers -----------------------------------------------
export_one() {
  local name=$1 flip=$2 suffix=""
  [ "$flip" = 1 ] && suffix="_flip"
  [ -f "$WORK/ck/$name/best.pt" ] || return 0
  timeout 90 $PY -m model_build.export "$WORK/ck/$name/best.pt" --val "$WORK/holdout.npz" --out "$WORK/onnx/$name$suffix.onnx" \
    $([ "$flip" = 1 ] && echo --tta-flip) > "$LOGS/export_$name$suffix.json" 2> "$LOGS/export_$name$suffix.err" \
    || echo "export FAILED" >> "$LOGS/export_$name$suffix.err"
}
for name in final fold_KA fold_KL fold_KM fold_KR fold_MK; do
  export_one "$name" 0 &
  export_one "$name" 1 &
done
for name in final_nofer final_nokd final_nojaffe; do export_one "$name" 0 & done
wait
say "exported"
if [ -f "$WORK/onnx/final.onnx" ]; then
  quantize_one() {
    timeout 90 $PY -c "
import sys
from pathlib import Path
from model_build.quantize import quantize
quantize(Path('$WORK/onnx/final.onnx'), '$WORK/fit.npz', Path('$WORK/onnx/$1.onnx'), reduce_range=$2, weight_type='$3')
" > "$LOGS/quantize_$1.log" 2>&1 || echo "quantize FAILED" >> "$LOGS/quantize_$1.log"
  }
  quantize_one final_int8_u8s8 False int8 &
  quantize_one final_int8_u8s8_7bit True int8 &
  quantize_one final_int8_u8u8 False uint8 &
  wait
fi
say "quantized"
# Checkpoints and ONNX files first: whatever happens next, they come back.
tar czf "$OUT_DIR/students.tgz" -C "$WORK" $(cd "$WORK" && ls -d ck/final* ck/fold_* 2>/dev/null) 2>>"$LOGS/run.log"
tar czf "$OUT_DIR/teachers.tgz" -C "$WORK" $(cd "$WORK" && ls -d ck/t_* 2>/dev/null) 2>>"$LOGS/run.log"
tar czf "$OUT_DIR/onnx.tgz" -C "$WORK" onnx 2>>"$LOGS/run.log"
say "archives written"
tar czf "$OUT_DIR/logs.tgz" -C "$OUT_DIR" logs  # again after the CPU numerics, if time allows
MODELS=(layers/meaa/models/emotion.onnx)
[ -f layers/meaa/models/mini_xception_w2_int8.onnx ] && MODELS+=(layers/meaa/models/mini_xception_w2_int8.onnx)
# The shipped candidates first (the run may be cut), then the rest; LC_ALL=C keeps final.onnx before final_*.
for f in $(LC_ALL=C ls "$WORK"/onnx/final.onnx "$WORK"/onnx/final_flip.onnx "$WORK"/onnx/final_int8*.onnx \
  "$WORK"/onnx/fold_*.onnx 2>/dev/null); do MODELS+=("$f"); done
ARGS=()
for m in "${MODELS[@]}"; do ARGS+=(--model "$m"); done
LEFT=$(( TOTAL + 20 - $(now) ))
[ "$LEFT" -lt 20 ] && LEFT=20
timeout "$LEFT" $PY -m model_build.cpu_numerics run "$WORK/holdout.npz" "${ARGS[@]}" --out "$OUT_DIR/numerics_gpu_host" \
  > "$LOGS/numerics.log" 2>&1 || say "numerics FAILED or cut"
say "numerics done; total $(now)s"
tar czf "$OUT_DIR/logs.tgz" -C "$OUT_DIR" logs && rm -rf "$LOGS"
ls -la "$OUT_DIR"
