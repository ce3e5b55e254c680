#!/bin/bash
# gpu_check.sh: the steps of `make gpu-check`, in one place, so a device run
# from a bundle (gpu_bundle.sh) runs exactly what `make gpu-check` runs.
#
#   tests/cuda_bench/gpu_check.sh BIN [STEP[:SECONDS],...]
#
# BIN holds deediff, deediff-tests and bench_cuda_ops; run from the
# repository root (the tests read tests/fixtures, the bench results/weights).
# Steps, in the order given (default: info,tests,bench,ops-bench):
#   info       the card and `deediff ops` (which backend implements each op)
#   tests      every cuda/* test: each CUDA op, the model and a training step
#              against the CPU reference
#   bench      deediff bench --backend cuda: U-ViT-S/2 forward and training
#              step against PyTorch on the same card, Inception, early exit
#   ops-bench  bench_cuda_ops: each op's time next to its floor on this card
#   sanitize   the cuda/* tests under compute-sanitizer's memcheck (slow)
# A step with :SECONDS is stopped after that long and counts as failed. The
# exit status is 1 when any step failed; the failed steps are named last.
# First, without a step: any library BIN's programs cannot find, and the
# Python the PyTorch peer runs with: $DEEDIFF_PYTHON, else the first of
# python3 on PATH and /opt/torch's that imports a torch which sees a GPU.
set -u
bin=${1:?usage: gpu_check.sh BIN [STEP[:SECONDS],...]}
steps=${2:-info,tests,bench,ops-bench}
failed=

run() { # NAME LIMIT COMMAND...: one step, timed, its exit status noted
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    echo "== $name: $*"
    if [ -n "$limit" ]; then timeout -k 5 "$limit" "$@"; else "$@"; fi
    rc=$?
    echo "== $name: exit status $rc after $((SECONDS - t0)) s"
    [ "$rc" = 0 ] || failed="$failed $name"
}

for step in ${steps//,/ }; do  # the whole list is checked before a step runs
    case ${step%%:*} in
    info | tests | ops-bench | bench | sanitize) ;;
    *)
        echo "gpu_check.sh: unknown step '${step%%:*}' (info, tests, ops-bench, bench, sanitize)" >&2
        exit 2 ;;
    esac
done
missing=$(cd "$bin" && ldd deediff deediff-tests bench_cuda_ops 2>&1 | awk '/not found/ {print $1}' | sort -u |
    tr '\n' ' ')
[ -z "$missing" ] || echo "gpu_check.sh: libraries not found: $missing"
if [ -z "${DEEDIFF_PYTHON:-}" ]; then
    for py in python3 /opt/torch/.venv/bin/python3 /opt/torch/bin/python3 /opt/torch/bin/python; do
        if "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
            DEEDIFF_PYTHON=$(command -v "$py")
            export DEEDIFF_PYTHON
            break
        fi
    done
fi
echo "gpu_check.sh: the PyTorch peer runs with ${DEEDIFF_PYTHON:-python3 (no Python here imports a torch that sees a GPU)}"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

for step in ${steps//,/ }; do
    name=${step%%:*}
    limit=
    [ "$name" = "$step" ] || limit=${step#*:}
    case $name in
    info)
        nvidia-smi -L
        # an exclusive-process card would refuse the PyTorch peers a context
        nvidia-smi --query-gpu=compute_mode,clocks.max.sm,power.limit --format=csv
        run info "$limit" "$bin/deediff" ops ;;
    tests)
        run tests "$limit" "$bin/deediff-tests" --filter 'cuda/*' --verbose -j4 ;;
    ops-bench)
        run ops-bench "$limit" "$bin/bench_cuda_ops" ;;
    bench)
        run bench "$limit" "$bin/deediff" bench --backend cuda ;;
    sanitize)
        run sanitize "$limit" "$sanitizer" --tool memcheck --error-exitcode 3 \
            "$bin/deediff-tests" --filter 'cuda/*' -j1 ;;
    esac
done
if [ -n "$failed" ]; then
    echo "gpu-check failed:$failed"
    exit 1
fi
echo "gpu-check: every step passed"
