#!/bin/bash
# emu_check.sh: the checks of `make emu-check`, run on the CPU emulation of
# the CUDA backend (tests/cuda_emu/README.md).
#
#   tests/cuda_emu/emu_check.sh BIN
#
# BIN holds deediff-emu and deediff-tests-emu (make emu-check builds them in
# $(BUILD)/emu); `--backend cpu` of deediff-emu is the plain CPU run. Steps:
#   same-bytes  early-exit sampling, 64 images in one batch of 64 that
#               compacts as images leave (DeeDiff, BERxiT, CALM, CALM with
#               its meta-classifier), on the emulated device with F32
#               activations (EMU_F32=1) gives the CPU's exits, PNGs and
#               manifest byte for byte: the host code's CUDA paths (uploads,
#               downloads, rows_copy's compactions, each exit rule's reads)
#               move the same numbers as its CPU paths
#   bf16        DeeDiff's `deediff eval` (128 images, batch 64, the
#               FD-FMNIST network on the device too) on the emulated device
#               as it is, BF16: images exit at early blocks, rows_copy ran,
#               the layers ratio is within 0.05 of the CPU's and
#               FD-FMNIST-128 within 5% of it (a NaN image is drawn black:
#               the distance would move far); then BERxiT, CALM and
#               CALM-meta sample on BF16 states and must exit images early
#   tests       the tests of suite cuda (each CUDA op, the model, a
#               training step against the CPU reference); the emulation's
#               known failures and skips (EXPECTED_* below) are allowed by
#               name, any other failure or skip fails the step
# The exit status is 1 when any step failed; the failed steps are named last.
set -u
bin=$(cd "${1:?usage: emu_check.sh BIN}" && pwd) || exit 2
cd "$(dirname "$0")/../.." || exit 2
emu=$bin/deediff-emu
tmp=$(mktemp -d /tmp/deediff-emu-check-XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
failed=

# what a CUDA=0 build cannot do, whatever the host code does
EXPECTED_FAILURES="
cuda::profile_cupti_sums_kernels_by_phase  --profile needs CUPTI or CUDA events: a CUDA=0 build refuses it
cuda::profile_cuda_events_time_phases      the same
"
EXPECTED_SKIPS="
cuda::table_fills_every_entry              reads kernels/cuda's own table, not in a CUDA=0 build
"

fail() { # STEP MESSAGE [LOG]: one failure, with the log's tail
    echo "emu-check: $1: FAILED: $2"
    [ -n "${3:-}" ] && tail -30 "$3"
    failed="$failed $1"
}

# ---- same-bytes ---------------------------------------------------------------------
step_same_bytes() {
    local spec model threshold n=0
    for spec in fmnist-deediff:0.1 fmnist-berxit:0.1 fmnist-calm:0.035 fmnist-calm-meta:0.1; do
        model=results/weights/${spec%:*}.safetensors threshold=${spec#*:}
        local args=(sample --model "$model" --threshold "$threshold" --sampler dpm --steps 10 --n 64 --batch 64)
        "$emu" "${args[@]}" --backend cpu --out "$tmp/cpu" > "$tmp/cpu.log" 2>&1 ||
            { fail same-bytes "$model on the CPU" "$tmp/cpu.log"; return; }
        EMU_F32=1 "$emu" "${args[@]}" --backend cuda --out "$tmp/emu" > "$tmp/emu.log" 2>&1 ||
            { fail same-bytes "$model on the emulated device" "$tmp/emu.log"; return; }
        grep -q '^exits.*| block ' "$tmp/cpu.log" ||
            { fail same-bytes "$model at $threshold: no image left early, nothing compacted" "$tmp/cpu.log"; return; }
        diff -r "$tmp/cpu" "$tmp/emu" > "$tmp/diff.log" ||
            { fail same-bytes "$model at $threshold: the emulated device's images differ" "$tmp/diff.log"; return; }
        diff <(grep -e '^exits' -e 'layers ratio' "$tmp/cpu.log") <(grep -e '^exits' -e 'layers ratio' "$tmp/emu.log") \
            > "$tmp/diff.log" ||
            { fail same-bytes "$model at $threshold: the emulated device's exits differ" "$tmp/diff.log"; return; }
        rm -rf "$tmp/cpu" "$tmp/emu"
        n=$((n + 1))
    done
    echo "emu-check: same-bytes: $n methods' early-exit samples identical to the CPU's (EMU_F32=1)"
}

# ---- bf16 ---------------------------------------------------------------------------
number() { sed -n "s/$1/\1/p" "$2" | head -1; }

step_bf16() {
    local args=(eval --model results/weights/fmnist-deediff.safetensors --threshold 0.1 --sampler dpm --steps 10
                --n 128 --batch 64 --ref fmnist-test --stats-dir "$tmp/stats" --db "$tmp/results.db")
    "$emu" "${args[@]}" --backend cpu > "$tmp/cpu.log" 2>&1 || { fail bf16 "eval on the CPU" "$tmp/cpu.log"; return; }
    EMU_COUNT=1 "$emu" "${args[@]}" --backend cuda > "$tmp/emu.log" 2>&1 ||
        { fail bf16 "eval on the emulated device" "$tmp/emu.log"; return; }
    local fd_cpu fd_emu lr_cpu lr_emu rows
    fd_cpu=$(number '^FD-FMNIST-128 = \([0-9.]*\) .*' "$tmp/cpu.log")
    fd_emu=$(number '^FD-FMNIST-128 = \([0-9.]*\) .*' "$tmp/emu.log")
    lr_cpu=$(number '^  layers ratio \([0-9.]*\) .*' "$tmp/cpu.log")
    lr_emu=$(number '^  layers ratio \([0-9.]*\) .*' "$tmp/emu.log")
    rows=$(number '^EMU-OP rows_copy \([0-9]*\)$' "$tmp/emu.log")
    grep -q '^exits.*| block ' "$tmp/emu.log" || { fail bf16 "no image left early" "$tmp/emu.log"; return; }
    [ "${rows:-0}" -gt 0 ] || { fail bf16 "rows_copy never ran: nothing compacted" "$tmp/emu.log"; return; }
    [[ -n $fd_cpu && -n $fd_emu && -n $lr_cpu && -n $lr_emu ]] ||
        { fail bf16 "no FD-FMNIST-128 or layers ratio printed" "$tmp/emu.log"; return; }
    awk -v a="$fd_cpu" -v b="$fd_emu" -v c="$lr_cpu" -v d="$lr_emu" \
        'BEGIN { e = (b - a) / a; f = d - c; exit !(e < 0.05 && e > -0.05 && f < 0.05 && f > -0.05) }' ||
        { fail bf16 "FD-FMNIST-128 $fd_emu vs the CPU's $fd_cpu, layers ratio $lr_emu vs $lr_cpu: too far"; return; }
    # the baselines' rules on BF16 states (CALM's cosine reads BF16 hidden states)
    local spec methods=""
    for spec in fmnist-berxit:0.1 fmnist-calm:0.035 fmnist-calm-meta:0.1; do
        "$emu" sample --model "results/weights/${spec%:*}.safetensors" --threshold "${spec#*:}" --sampler dpm \
            --steps 10 --n 64 --batch 64 --backend cuda --out "$tmp/bf16" > "$tmp/emu.log" 2>&1 ||
            { fail bf16 "${spec%:*} sampling on the emulated device" "$tmp/emu.log"; return; }
        grep -q '^exits.*| block ' "$tmp/emu.log" || { fail bf16 "${spec%:*}: no image left early" "$tmp/emu.log"; return; }
        methods="$methods ${spec%:*}"
    done
    echo "emu-check: bf16: FD-FMNIST-128 $fd_emu (CPU $fd_cpu), layers ratio $lr_emu (CPU $lr_cpu)," \
         "$rows rows_copy calls; exits on BF16 states:$methods"
}

# ---- tests --------------------------------------------------------------------------
names() { echo "$1" | awk 'NF { print $1 }' | sort; }   # the first word of each line
line() { echo "$1" | paste -sd ' '; }                      # lines as one line

step_tests() {
    "$bin/deediff-tests-emu" --filter 'cuda/*' -j2 --tap="$tmp/tests.tap" > "$tmp/tests.log" 2>&1
    local rc=$? passed not_ok skipped unexpected
    passed=$(grep '^ok - cuda::' "$tmp/tests.tap" | grep -vc '# SKIP')
    not_ok=$(sed -n 's/^not ok - \(cuda::[A-Za-z0-9_]*\).*/\1/p' "$tmp/tests.tap")
    skipped=$(sed -n 's/^ok - \(cuda::[A-Za-z0-9_]*\) *# SKIP.*/\1/p' "$tmp/tests.tap")
    unexpected=$(comm -23 <(printf '%s\n%s\n' "$not_ok" "$skipped" | sed '/^$/d' | sort) \
                          <({ names "$EXPECTED_FAILURES"; names "$EXPECTED_SKIPS"; } | sort))
    if [ -n "$unexpected" ] || [ "$passed" = 0 ] || { [ "$rc" != 0 ] && [ -z "$not_ok" ]; }; then
        fail tests "unexpected failures or skips: $(line "$unexpected") (exit status $rc, $passed passed)" \
             "$tmp/tests.log"
        return
    fi
    for t in $(names "$EXPECTED_FAILURES"); do
        echo "$not_ok" | grep -qx "$t" || echo "emu-check: tests: note: $t, an expected failure, passed"
    done
    echo "emu-check: tests: $passed cuda tests passed; failed as expected: $(line "$not_ok");" \
         "skipped as expected: $(line "$skipped")"
}

t0=$SECONDS
step_same_bytes
step_bf16
step_tests
if [ -n "$failed" ]; then
    echo "emu-check: failed:$failed ($((SECONDS - t0)) s)"
    exit 1
fi
echo "emu-check: passed ($((SECONDS - t0)) s)"
