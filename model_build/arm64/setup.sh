#!/usr/bin/env bash
# One-time setup of an emulated arm64 Python with meaa's runtime (numpy, onnxruntime, opencv from the
# pinned aarch64 wheels on PyPI), outside the repository, on a Debian 12 x86-64 machine, as root:
#   bash model_build/arm64/setup.sh            (about 300 MB under /opt; a few minutes)
# Then: bash model_build/arm64/run_numerics.sh (see model_build/arm64/README.md).
set -euo pipefail
ROOTFS=${ARM64_ROOTFS:-/opt/arm64root}
SITE=${ARM64_SITE:-/opt/arm64site}
FAKE=${ARM64_CPUINFO_DIR:-/opt/arm64fake}
WHEELS=${ARM64_WHEELS:-/opt/arm64wheels}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

apt-get install -y -qq qemu-user-static debootstrap
if [ ! -x "$ROOTFS/usr/bin/python3.11" ]; then
  # --foreign: unpack only (no arm64 code runs); python's packages are unpacked by hand below.
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3-minimal,libpython3.11-stdlib,python3.11 \
    bookworm "$ROOTFS" http://deb.debian.org/debian
  cd "$ROOTFS/var/cache/apt/archives"
  for deb in *python*.deb lib{expat,ffi,ssl,bz2,lzma,sqlite,mpdec,ncursesw,tinfo,readline,uuid,nsl,tirpc,crypt,db5}*.deb; do
    [ -e "$deb" ] && dpkg-deb -x "$deb" "$ROOTFS"
  done
  # The first stage leaves /lib a real folder; the merged-/usr link is what the loader path expects.
  if [ ! -L "$ROOTFS/lib" ]; then cp -a "$ROOTFS/lib/." "$ROOTFS/usr/lib/" && rm -rf "$ROOTFS/lib" && ln -s usr/lib "$ROOTFS/lib"; fi
fi
mkdir -p "$WHEELS" "$SITE" "$FAKE"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 \
  --platform manylinux2014_aarch64 -d "$WHEELS" $(grep -v '^#' "$REPO/layers/requirements.txt")
for wheel in "$WHEELS"/*.whl; do python3 -m zipfile -e "$wheel" "$SITE"; done
# /proc/cpuinfo as each emulated CPU would show it (qemu-user passes the host's through).
python3 - "$FAKE" <<'PY'
import sys
cpus = {  # Features line, CPU variant, CPU part (Arm's ids: A72 0xd08, Neoverse N1 0xd0c, Neoverse V1 0xd40)
    "cortex-a72": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid", "0x0", "0xd08"),
    "neoverse-n1": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                    "asimddp ssbs", "0x3", "0xd0c"),
    "max": ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop "
            "sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp sve2 sveaes "
            "svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh rng bti", "0x1", "0xd40"),
}
for name, (features, variant, part) in cpus.items():
    block = (f"BogoMIPS\t: 243.75\nFeatures\t: {features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
             f"CPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: 1\n")
    with open(f"{sys.argv[1]}/cpuinfo_{name}", "w") as handle:
        handle.write("\n".join(f"processor\t: {i}\n{block}" for i in range(2)) + "\n")
PY
echo "arm64 python ready: $ROOTFS/usr/bin/python3.11 with $SITE"
