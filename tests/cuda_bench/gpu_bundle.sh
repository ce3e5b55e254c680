#!/bin/bash
# gpu_bundle.sh: packs a CUDA build for a GPU machine that has the CUDA
# toolkit but none of our Debian libraries (oneDNN, OpenBLAS, SQLite, ...):
# the three gpu-check binaries, every library they load apart from the C
# runtime and CUDA's own, and a run path that finds them beside the binaries.
#
#   tests/cuda_bench/gpu_bundle.sh BUILD OUT.tar.xz
#
# There, from the repository root:
#   mkdir -p /tmp/g && tar xJf OUT.tar.xz -C /tmp/g
#   tests/cuda_bench/gpu_check.sh /tmp/g
# Run from the repository root. Build BUILD with a portable OPT (say
# -march=x86-64-v3): -march=native code may not run on the GPU machine's
# processor. Needs patchelf. Prints the archive's size beside the tracked
# tree's: a device call carries both, 64 MiB at most.
set -eu
build=${1:?usage: gpu_bundle.sh BUILD OUT.tar.xz}
out=${2:?usage: gpu_bundle.sh BUILD OUT.tar.xz}
command -v patchelf >/dev/null || { echo "gpu_bundle.sh: needs patchelf (apt-get install patchelf)" >&2; exit 2; }
bins="deediff deediff-tests bench_cuda_ops"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/lib"
for b in $bins; do
    [ -x "$build/$b" ] || { echo "gpu_bundle.sh: $build/$b: not built" >&2; exit 2; }
    cp "$build/$b" "$stage/"
    # DT_RPATH (not RUNPATH) so the libraries' own dependencies are found
    # there too; CUDA's folder stays for cudart, cuBLAS and CUPTI
    # shellcheck disable=SC2016 # $ORIGIN is for the loader, not the shell
    patchelf --force-rpath --set-rpath '$ORIGIN/lib:/usr/local/cuda/lib64' "$stage/$b"
done
# the C runtime and CUDA come from the GPU machine; everything else travels
# shellcheck disable=SC2086 # one word per binary
(cd "$build" && ldd $bins) | awk '/=> \//{print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libgcc_s|libstdc\+\+)\.so|/libcu[a-zA-Z]*\.so' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
tar cf - -C "$stage" . | xz -9 -T0 > "$out.tmp"
mv "$out.tmp" "$out"
# a device call carries the working tree (tracked files and untracked ones
# git does not ignore) and this archive, 64 MiB at most
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
size=$(stat -c %s "$out")
awk -v a="$size" -v t="$tree" -v o="$out" 'BEGIN { m = 1048576
    printf "%s: %.1f MiB; with the working tree (%.1f MiB) %.1f of the 64 MiB a device call carries\n",
           o, a / m, t / m, (a + t) / m }'
[ $((size + tree)) -le $((64 << 20)) ] ||
    { echo "gpu_bundle.sh: $out and the working tree are too large for one device call" >&2; exit 2; }
