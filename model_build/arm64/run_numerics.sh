#!/usr/bin/env bash
# model_build/cpu_numerics.py run, on an emulated arm64 CPU (qemu-user), for each of three CPU models:
#   cortex-a72   : NEON only, no dot product (the plain arm64 kernels)
#   neoverse-n1  : + dot product (sdot/udot), as AWS Graviton2
#   max          : + i8mm, SVE, bf16, as AWS Graviton3 (Neoverse V1) and later
# Emulation gives the arithmetic of those instructions, not their speed. Setup: model_build/arm64/README.md.
# Usage (repository root): [ARM64_CPUS="neoverse-n1"] bash model_build/arm64/run_numerics.sh INPUTS.npz OUT_DIR MODEL.onnx...
set -euo pipefail
INPUTS=$1; OUT_DIR=$2; shift 2
ROOTFS=${ARM64_ROOTFS:-/opt/arm64root}
SITE=${ARM64_SITE:-/opt/arm64site}
FAKE=${ARM64_CPUINFO_DIR:-/opt/arm64fake}
mkdir -p "$OUT_DIR"
MODELS=()
for m in "$@"; do MODELS+=(--model "$m"); done
for cpu in ${ARM64_CPUS:-cortex-a72 neoverse-n1 max}; do
  # onnxruntime's cpuinfo parses /proc/cpuinfo, which qemu-user leaves as the host's (x86) file and
  # onnxruntime then crashes: bind-mount an arm64 one in a private mount namespace.
  unshare -m bash -c "mount --bind '$FAKE/cpuinfo_$cpu' /proc/cpuinfo && \
    QEMU_CPU=$cpu qemu-aarch64-static -L '$ROOTFS' -E PYTHONPATH='$SITE:$PWD:$PWD/layers' -E QEMU_CPU=$cpu \
    '$ROOTFS/usr/bin/python3.11' -m model_build.cpu_numerics run '$INPUTS' ${MODELS[*]} --out '$OUT_DIR/numerics_arm64_$cpu'" \
    > "$OUT_DIR/numerics_arm64_$cpu.log" 2>&1
  echo "$cpu: $(tail -c 300 "$OUT_DIR/numerics_arm64_$cpu.log" | tr '\n' ' ')"
done
