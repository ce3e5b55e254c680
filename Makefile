# deediff: build, test, benchmark and reproduce.
#
#   make            the deediff binary (CPU always; CUDA too when nvcc is found)
#   make test       installs missing Debian packages, then runs the unit and
#                   golden tests, make emu-check, the same tests under
#                   ASan+UBSan, a bounded fuzz run of the file parsers, and
#                   make regress (the smoke experiments against
#                   results/baseline.json)
#   make table1     the paper's Table 1 (also table3, table5, figures, paper)
#   make bench      performance ratios (ours vs OpenBLAS sgemm and vs PyTorch)
#   make fixtures   regenerates tests/fixtures with tests/reference/ (PyTorch)
#   make gpu-check  on a CUDA machine: op coverage, CUDA kernels vs the CPU
#                   reference, each op's time against its floor
#   make emu-check  without a GPU: the CUDA backend's host side on a CPU
#                   emulation of it (tests/cuda_emu/README.md)
#
# Variables: BUILD (output folder, default build), CUDA=0 (skip CUDA even
# when nvcc exists), SAN=1 (sanitizer build), CC, NVCC.

BUILD ?= build
CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif
OPT ?= -O3 -march=native
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
              -fopenmp -MMD -MP -I. -I/usr/include/x86_64-linux-gnu
OPENBLAS_DIR = /usr/lib/x86_64-linux-gnu/openblas-openmp
# GEMMs through oneDNN (kernels/cpu/cpu_gemm.h); OpenBLAS for LAPACK, the
# double-precision BLAS of the statistics, and the fallback GEMM
LDLIBS = -ldnnl -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas \
         -lsqlite3 -lcjson -lpng -ljpeg -lzip -lz -lm -fopenmp

ifeq ($(SAN),1)
# -march=native as in the main build, so the sanitizers check the same code
# paths (the short attention is compiled for AVX-512 only)
OPT = -O1 -g -fno-omit-frame-pointer -march=native
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
CFLAGS = $(CFLAGS_BASE) $(OPT) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(SANFLAGS)

# ---- CUDA: found or skipped -------------------------------------------------
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA ?= 1
ifeq ($(CUDA),1)
ifneq ($(NVCC),)
ifneq ($(SAN),1)
HAVE_CUDA = 1
endif
endif
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80
ifeq ($(HAVE_CUDA),1)
CFLAGS += -DDEEDIFF_CUDA
NVCCFLAGS = -O3 -std=c++17 $(CUDA_ARCH) -DDEEDIFF_CUDA -I. -Xcompiler -fPIC,-Wall -MMD -MP
CUDA_SRC = $(wildcard kernels/cuda/*.cu)
CUDA_OBJ = $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
# cuBLAS/cuBLASLt are dlopen()ed by the first CUDA context (kernels/cuda/cuda_blas.h)
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -ldl -lstdc++
endif

# the profiler includes CUPTI's and the runtime's headers; libcupti itself is
# dlopen()ed, so a CUDA build runs where it is missing (harness/profile/profile.h)
ifeq ($(HAVE_CUDA),1)
$(BUILD)/obj/harness/profile/%.o: EXTRA_CFLAGS += -I$(CUDA_HOME)/include -DDEEDIFF_CUDA_HOME='"$(CUDA_HOME)"'
endif

# ---- sources ----------------------------------------------------------------
LIB_SRC = $(wildcard kernels/*.c kernels/cpu/*.c model/*.c baselines/*.c) \
          $(filter-out harness/cli/main.c,$(wildcard harness/*/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CUDA_OBJ) $(BUILD)/obj/gen/schema_sql.o \
          $(BUILD)/obj/gen/code_version.o $(BUILD)/obj/gen/op_entries.o
TEST_SRC = $(wildcard tests/test_*.c tests/support/*.c)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

# files whose loops need -ffast-math style vectorisation of libm calls; keep
# the list short: fast-math assumes no NaN, so no NaN check may live there
FAST_MATH_SRC = $(wildcard kernels/cpu/*_vecmath.c)
$(FAST_MATH_SRC:%.c=$(BUILD)/obj/%.o): EXTRA_CFLAGS += -ffast-math
# the short attention's GNU C vectors: acc += a * b as one fused multiply-add;
# without AVX-512 gcc notes that 64-byte vectors pass differently (static
# functions only, so no ABI is crossed)
$(BUILD)/obj/kernels/cpu/attention_short.o: EXTRA_CFLAGS += -ffp-contract=fast -Wno-psabi
# AdamW's sqrtf vectorises only without errno (NaN/Inf semantics unchanged)
$(BUILD)/obj/kernels/cpu/optim.o: EXTRA_CFLAGS += -fno-math-errno

all: $(BUILD)/deediff

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

# harness/store/schema.sql embedded as the C string store_schema_sql
$(BUILD)/gen/schema_sql.c: harness/store/schema.sql
	@mkdir -p $(dir $@)
	{ echo '/* generated from harness/store/schema.sql by the Makefile */'; \
	  echo 'const char store_schema_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@.tmp && mv $@.tmp $@

# the op table's entries by name and offset, and the backward ops of
# kernels/ops.h (kernels/op_coverage.h, for `deediff ops`): generated from the
# struct itself, so a new table entry needs no list edited by hand
$(BUILD)/gen/op_entries.c: kernels/op_table.h kernels/ops.h
	@mkdir -p $(dir $@)
	{ echo '/* generated from kernels/op_table.h and kernels/ops.h by the Makefile */'; \
	  echo '#include <stddef.h>'; \
	  echo '#include "kernels/op_coverage.h"'; \
	  echo '#include "kernels/op_table.h"'; \
	  echo 'const OpEntry op_entries[] = {'; \
	  sed -n '/\/\* ops \*\//,/^};/p' kernels/op_table.h | \
	    sed -n -e 's/.*(\*\([a-z0-9_]*\))(.*\/\* optional \*\/.*/    {"\1", offsetof(OpTable, \1), 1},/p' \
	      -e 's/.*(\*\([a-z0-9_]*\))(.*/    {"\1", offsetof(OpTable, \1), 0},/p'; \
	  echo '    {NULL, 0, 0}};'; \
	  echo 'const char *const op_backward_names[] = {'; \
	  grep -o 'op_[a-z0-9_]*_backward(' kernels/ops.h | sed 's/op_\(.*\)_backward(/    "\1",/'; \
	  echo '    NULL};'; } > $@.tmp && mv $@.tmp $@

# the code version (harness/store/code_version.h): sha256 of every source
# that computes a number, in path order (the rooms that only report, run,
# benchmark or store, and the command line's plumbing, do not count);
# rewritten only when it changes
NOT_MEASURING = harness/report/% harness/runner/% harness/bench/% harness/store/% harness/cli/main.c \
  harness/cli/commands.c harness/cli/cli.% harness/cli/progress.% harness/cli/text_file.% harness/cli/cmd_methods.c \
  harness/cli/cmd_info.c harness/cli/cmd_ops.c kernels/op_coverage.%
CODE_SRC = $(sort $(filter-out $(NOT_MEASURING), \
             $(wildcard kernels/*.[ch] kernels/cpu/*.[ch] kernels/cuda/*.cu kernels/cuda/*.h \
             model/*.[ch] baselines/*.[ch] harness/*/*.[ch])))
# and of the compiler flags, which change numbers too (-march, fast-math)
$(BUILD)/gen/code_version.c: $(CODE_SRC) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated by the Makefile: sha256 of the sources (harness/store/code_version.h) */'; \
	  echo "const char deediff_code_version[] = \"$$({ cat $(CODE_SRC); echo '$(CC) $(CFLAGS)'; } \
	    | sha256sum | cut -c1-64)\";"; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdeediff.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/deediff: $(BUILD)/obj/harness/cli/main.o $(BUILD)/libdeediff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/deediff-tests: $(TEST_OBJ) $(BUILD)/libdeediff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

# ---- Debian packages ----------------------------------------------------------
DEBIAN_PACKAGES = gcc make libdnnl-dev libopenblas-openmp-dev libsqlite3-dev \
  libcjson-dev libpng-dev libjpeg-dev libzip-dev zlib1g-dev gnuplot-nox \
  libcriterion-dev dataset-fashion-mnist clang libclang-rt-14-dev pkg-config
PYTORCH_PACKAGES = python3-torch python3-torchvision python3-numpy
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEBIAN_PACKAGES))

deps-pytorch:
	$(call apt_install,$(PYTORCH_PACKAGES))

# ---- tests ----------------------------------------------------------------------
# seconds per fuzz target, JOBS targets at once: 10 targets x 15 s on 2 cores
# stay within CI's ~2 minutes; `make fuzz FUZZ_TIME=600` runs them long
# (tests/fuzz/README.md)
FUZZ_TIME ?= 15
# `make test` is CI's one command and is run without -j: its builds and fuzz
# runs use every core themselves (2 on CI), halving CI's build time
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/deediff $(BUILD)/deediff-tests
	DEEDIFF=$(BUILD)/deediff $(BUILD)/deediff-tests -j2
	$(MAKE) --no-print-directory emu-check
	$(MAKE) --no-print-directory -j$(JOBS) test-asan
	$(MAKE) --no-print-directory -j$(JOBS) fuzz
	$(MAKE) --no-print-directory regress

test-asan:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 $(BUILD)/asan/deediff $(BUILD)/asan/deediff-tests
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  DEEDIFF=$(BUILD)/asan/deediff $(BUILD)/asan/deediff-tests -j2

# the fuzz targets link against the whole library built by clang with the
# sanitizers and libFuzzer's coverage (no CUDA): every reader is reachable
FUZZ_LIB = $(BUILD)/fuzz/lib/libdeediff.a
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -Wno-pass-failed
$(FUZZ_LIB): $(LIB_SRC) harness/store/schema.sql $(wildcard kernels/*.h model/*.h baselines/*.h harness/*/*.h)
	$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz/lib CC=clang SAN=1 CUDA=0 \
	  SANFLAGS='$(FUZZ_SAN)' $@

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -I/usr/include/x86_64-linux-gnu \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o $@ $< $(FUZZ_LIB) $(LDLIBS)

# one fuzz-run-<target> per target, so `make -jN fuzz` runs N at once (each
# libFuzzer process uses one core); a crash prints its log's tail
FUZZERS = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZERS:%=fuzz-run-%)
fuzz-run-%: $(BUILD)/fuzz/% FORCE
	@mkdir -p $(BUILD)/fuzz/corpus-$*
	@$(BUILD)/fuzz/$* -max_total_time=$(FUZZ_TIME) -rss_limit_mb=2048 -artifact_prefix=$(BUILD)/fuzz/ \
	    $(BUILD)/fuzz/corpus-$* tests/fuzz/seeds/$* 2>$(BUILD)/fuzz/$*.log \
	  || { echo "fuzz: $* failed:"; tail -40 $(BUILD)/fuzz/$*.log; exit 1; }
	@echo "fuzz: $* for $(FUZZ_TIME) s: $$(tail -1 $(BUILD)/fuzz/$*.log)"
FORCE:
# the fuzzers are reached through the pattern above: keep them
.PRECIOUS: $(BUILD)/fuzz/%

# every committed fixture, from the scripts that write them (PyTorch, NumPy)
fixtures: deps-pytorch
	/usr/bin/python3 tests/reference/make_fixtures.py tests/fixtures
	/usr/bin/python3 tests/reference/make_inception_fixture.py tests/fixtures
	/usr/bin/python3 tests/reference/make_adamw_fixture.py
	/usr/bin/python3 tests/reference/make_npz_fixtures.py tests/fixtures/npz
	/usr/bin/python3 tests/reference/make_deediff_fixture.py tests/fixtures
	/usr/bin/python3 tests/reference/make_autoencoder_fixture.py tests/fixtures

# ---- the main job: the paper's tables and figures ----------------------------------
# Each target runs one experiment file (experiments/README.md) through
# `deediff run`: its runs are expanded, every run the database already holds
# (same command line, same input files, same code) is skipped, the rest run
# one by one, and the report is drawn from the database into paper/tables/
# or paper/figures/. A killed target resumes where it stopped.
#   SCALE=smoke|tiny|paper  (default tiny: Fashion-MNIST on a CPU, from the
#                            committed weights; paper needs data and weights
#                            given as NAME=VALUE in RUN_VARS or the environment)
#   ONLY=A,B                only the runs whose label contains A or B
#   SHARD=K/N               this machine's share; each shard writes its own
#                           database (results/results-shard-K-of-N.db), and
#                           make merge-shards combines them into $(DB)
#   DB=PATH                 the results database (default results/results.db)
#   THREADS=N               CPU threads of each run (default: all cores)
SCALE ?= tiny
DB ?= results/results.db
SHARD_DB = $(if $(SHARD),results/results-shard-$(subst /,-of-,$(SHARD)).db,$(DB))
RUN_VARS ?=
RUN = $(BUILD)/deediff run --scale $(SCALE) --db $(SHARD_DB) $(if $(ONLY),--only '$(ONLY)') \
      $(if $(SHARD),--shard $(SHARD) --no-report) $(if $(THREADS),--threads $(THREADS))
EXPERIMENTS = table1 table2 table3 table5
FIGURES = fig1 fig3 fig4 fig5 fig6 fig7

$(EXPERIMENTS) $(FIGURES): %: deps $(BUILD)/deediff
	$(RUN) experiments/$*.json $(RUN_VARS)

figures: $(FIGURES)

# everything the paper has that can run today (table2 waits for the latent
# space), then the claims page drawn from the same database
paper: table1 table3 table5 figures
	$(BUILD)/deediff claims --db $(DB) --output paper/CLAIMS.md

merge-shards: $(BUILD)/deediff
	$(BUILD)/deediff merge $(wildcard results/results-shard-*.db) -o $(DB)

# ---- regression tracking ---------------------------------------------------------------
# regress: the smoke scale of every table (minutes), each metric compared
# with results/baseline.json within its stated tolerance; every comparison
# is kept in $(DB) (table regress_checks). rebaseline: on purpose, writes the
# current smoke numbers as the new baseline. regress-history: the history of
# every regressed metric, as data and a plot (paper/figures/regress-history).
REGRESS_EXPERIMENTS = experiments/table1.json experiments/table3.json experiments/table5.json
regress: deps $(BUILD)/deediff
	$(BUILD)/deediff regress --baseline results/baseline.json --db $(DB) $(REGRESS_EXPERIMENTS)

rebaseline: deps $(BUILD)/deediff
	$(BUILD)/deediff regress --baseline results/baseline.json --db $(DB) --rebaseline $(REGRESS_EXPERIMENTS)

regress-history: $(BUILD)/deediff
	$(BUILD)/deediff regress --db $(DB) --history paper/figures/regress-history

# ---- the models of the embedded default and their sweeps ---------------------------
# (the experiments above use the committed weights; these retrain them)
UVIT_MODEL = results/weights/fmnist-uvit.safetensors
DEEDIFF_MODEL = results/weights/fmnist-deediff.safetensors
SWEEP_EVAL = $(BUILD)/deediff eval --n 1000 --sampler dpm --steps 50 \
  --seed 0 --features fmnist --ref fmnist-train --db $(DB) --skip-done

# ---- DeeDiff on the embedded default ------------------------------------------------
# train-deediff: heads and UEMs trained jointly with the pretrained backbone
# (experiments/deediff/fmnist-deediff.json) into $(DEEDIFF_MODEL), whose
# metadata keeps this exact command (results/weights/fmnist-deediff.md).
# deediff-sweep: the threshold sweeps of experiments/deediff-fmnist.md, of the
# joint and the frozen-backbone model (evaluations stored in results.db, the
# tables drawn from it into experiments/deediff-fmnist-sweep*.md); run it on
# an otherwise idle machine: its times are compared with each other.
DEEDIFF_THRESHOLDS = 0 0.02 0.05 0.08 0.1 0.15 0.2 0.25 0.3
DEEDIFF_FROZEN = results/weights/fmnist-deediff-frozen.safetensors
train-deediff: deps $(BUILD)/deediff
	$(BUILD)/deediff train --config experiments/deediff/fmnist-deediff.json --method deediff \
	  --backbone $(UVIT_MODEL)

# the ablation with the backbone frozen (only heads and UEMs train)
train-deediff-frozen: deps $(BUILD)/deediff
	$(BUILD)/deediff train --config experiments/deediff/fmnist-deediff.json --method deediff \
	  --backbone $(UVIT_MODEL) train.freeze_backbone=true output.dir=results/runs/fmnist-deediff-frozen \
	  output.export=results/weights/fmnist-deediff-frozen.safetensors

# ---- the baselines on the embedded default (experiments/baselines-fmnist.md) ---------
# Each trains from the same backbone as DeeDiff with DeeDiff's budget
# (experiments/baselines/*.json: 5,000 steps of batch 64, the same optimizer);
# calm-meta trains CALM's meta-classifier on the calm model, backbone frozen.
# BASELINE_TRAIN_FLAGS may add e.g. --threads 1 to run two at once.
BASELINE_TRAIN_FLAGS =
train-berxit train-calm: train-%: deps $(BUILD)/deediff
	$(BUILD)/deediff train --config experiments/baselines/fmnist-$*.json $(BASELINE_TRAIN_FLAGS)

train-calm-meta: deps $(BUILD)/deediff
	$(BUILD)/deediff train --config experiments/baselines/fmnist-calm-meta.json $(BASELINE_TRAIN_FLAGS)

# S-Pruning (Diff-Pruning): prune-spruning prunes the backbone's heads and MLP
# units to 0.56 of its multiply-adds (the paper's -44%) into
# $(SPRUNING_PRUNED); train-spruning fine-tunes that with the same budget
# (results/weights/fmnist-spruning.md), pruning first when it is missing.
SPRUNING_RATIO = 0.56
SPRUNING_PRUNED = results/weights/fmnist-spruning-pruned.safetensors
prune-spruning: deps $(BUILD)/deediff
	$(BUILD)/deediff prune --model $(UVIT_MODEL) --ratio $(SPRUNING_RATIO) --output $(SPRUNING_PRUNED)

train-spruning: deps $(BUILD)/deediff
	test -f $(SPRUNING_PRUNED) || $(MAKE) --no-print-directory prune-spruning
	$(BUILD)/deediff train --config experiments/baselines/fmnist-spruning.json --method spruning \
	  --backbone $(SPRUNING_PRUNED) $(BASELINE_TRAIN_FLAGS)

# baselines-sweep: every baseline's sweep of experiments/baselines-fmnist.md with
# Table 1's protocol (evaluations in results.db, the tables drawn from it into
# experiments/baselines-fmnist-*.md); the static exit runs on DeeDiff's heads.
# S-Pruning sweeps its compute ratio: pruned only at each SPRUNING_RATIOS,
# and the fine-tuned model. Run it on an otherwise idle machine.
BERXIT_THRESHOLDS = 0 0.02 0.05 0.08 0.1 0.15 0.2 0.3
CALM_THRESHOLDS = 0 0.02 0.025 0.03 0.035 0.04 0.05 0.1
CALM_META_THRESHOLDS = 0 0.01 0.02 0.05 0.1 0.3 0.5
STATIC_THRESHOLDS = 0 0.1 0.2 0.3 0.4 0.5
SPRUNING_RATIOS = 0.75 0.56 0.4
baselines-sweep: deps $(BUILD)/deediff
	for t in $(BERXIT_THRESHOLDS); do $(SWEEP_EVAL) --model results/weights/fmnist-berxit.safetensors --threshold $$t || exit 1; done
	for t in $(CALM_THRESHOLDS); do $(SWEEP_EVAL) --model results/weights/fmnist-calm.safetensors --threshold $$t || exit 1; done
	for t in $(CALM_META_THRESHOLDS); do $(SWEEP_EVAL) --model results/weights/fmnist-calm-meta.safetensors --threshold $$t || exit 1; done
	for t in $(STATIC_THRESHOLDS); do $(SWEEP_EVAL) --model $(DEEDIFF_MODEL) --method static --threshold $$t || exit 1; done
	for r in $(SPRUNING_RATIOS); do test -f results/runs/fmnist-pruned-$$r.safetensors || \
	  $(BUILD)/deediff prune --model $(UVIT_MODEL) --ratio $$r --output results/runs/fmnist-pruned-$$r.safetensors || exit 1; \
	  $(SWEEP_EVAL) --model results/runs/fmnist-pruned-$$r.safetensors || exit 1; done
	$(SWEEP_EVAL) --model results/weights/fmnist-spruning.safetensors
	for m in berxit calm calm-meta; do $(BUILD)/deediff table sweep --model results/weights/fmnist-$$m.safetensors \
	  --baseline $(UVIT_MODEL) --db $(DB) --output experiments/baselines-fmnist-$$m-sweep.md || exit 1; done
	$(BUILD)/deediff table sweep --model $(DEEDIFF_MODEL) --method static --baseline $(UVIT_MODEL) --db $(DB) \
	  --output experiments/baselines-fmnist-static-sweep.md

# spruning-ratios (after baselines-sweep, which prunes): fine-tunes the other
# pruned ratios with the same budget (into results/runs/, not committed) and
# evaluates them, completing S-Pruning's sweep over its compute ratio.
SPRUNING_EXTRA_RATIOS = 0.75 0.4
spruning-ratios: deps $(BUILD)/deediff
	for r in $(SPRUNING_EXTRA_RATIOS); do test -f results/runs/fmnist-spruning-$$r.safetensors || \
	  $(BUILD)/deediff train --config experiments/baselines/fmnist-spruning.json \
	  output.init=results/runs/fmnist-pruned-$$r.safetensors output.dir=results/runs/fmnist-spruning-$$r \
	  output.export=results/runs/fmnist-spruning-$$r.safetensors $(BASELINE_TRAIN_FLAGS) || exit 1; \
	  $(SWEEP_EVAL) --model results/runs/fmnist-spruning-$$r.safetensors || exit 1; done

deediff-sweep: deps $(BUILD)/deediff
	$(SWEEP_EVAL) --model $(UVIT_MODEL)
	for m in $(DEEDIFF_MODEL) $(DEEDIFF_FROZEN); do for t in $(DEEDIFF_THRESHOLDS); do \
	  $(SWEEP_EVAL) --model $$m --threshold $$t || exit 1; done; done
	$(BUILD)/deediff table sweep --model $(DEEDIFF_MODEL) --baseline $(UVIT_MODEL) --db $(DB) \
	  --output experiments/deediff-fmnist-sweep.md
	$(BUILD)/deediff table sweep --model $(DEEDIFF_FROZEN) --baseline $(UVIT_MODEL) --db $(DB) \
	  --output experiments/deediff-fmnist-frozen-sweep.md

# ---- the pretrained backbone of the embedded default ------------------------------
# Trains the Fashion-MNIST U-ViT (experiments/pretrain/fmnist-uvit.json) into
# results/weights/fmnist-uvit.safetensors (EMA weights; the exact command is
# in its metadata), then draws the sample grid and the loss curve.
PRETRAIN = experiments/pretrain/fmnist-uvit.json
PRETRAIN_RUN = results/runs/fmnist-uvit
pretrain: deps $(BUILD)/deediff
	$(BUILD)/deediff train --config $(PRETRAIN)
	$(MAKE) --no-print-directory pretrain-figures

pretrain-figures: $(BUILD)/deediff
	$(BUILD)/deediff sample --model results/weights/fmnist-uvit.safetensors --n 64 --seed 0 \
	  --sampler em --steps 1000 --out $(PRETRAIN_RUN)/samples-em1000
	cp $(PRETRAIN_RUN)/samples-em1000/grid.png paper/figures/fmnist-uvit-samples.png
	$(BUILD)/deediff log --run $(PRETRAIN_RUN) --output paper/figures/fmnist-uvit-loss.dat
	gnuplot -e "data='paper/figures/fmnist-uvit-loss.dat'; out='paper/figures/fmnist-uvit-loss.png'; \
	  title='U-ViT on Fashion-MNIST (D 64, 13 blocks): training loss'" paper/loss_curve.gp

# ---- benchmarks -------------------------------------------------------------------
# each side measured BENCH_ROUNDS times in turn, its best kept (a shared
# machine's load moves one round's ratios by 2x)
BENCH_ROUNDS ?= 2
bench: deps deps-pytorch $(BUILD)/deediff
	$(BUILD)/deediff bench --rounds $(BENCH_ROUNDS)

# ---- GPU check (run on a CUDA machine) ------------------------------------------
# One command for a GPU session, `make -j$(nproc) gpu-check` (a few minutes
# on 16 cores): builds, prints `deediff ops` (which backend implements what),
# runs every CUDA op against the CPU reference (tests/test_cuda_*.c, errors
# logged), then `deediff bench --backend cuda` (ours against PyTorch on the
# same card: U-ViT-S/2 forward and training step, eager and torch.compile,
# MFU over the card's BF16 GEMM rate, the Inception, early exit; the peer's
# Python is $DEEDIFF_PYTHON, else the first whose torch sees the GPU), then
# the op benchmark: each op's
# time next to its floor on this card (tests/cuda_bench/bench_cuda_ops.c,
# kernels/cuda/NOTES.md). A failed step does not stop the ones after it;
# the target fails at the end, naming it.
# CUDA_ARCH='-gencode arch=compute_90,code=sm_90' builds for Hopper only.
ifneq ($(filter gpu-check gpu-bundle,$(MAKECMDGOALS)),)
ifneq ($(HAVE_CUDA),1)
$(error gpu-check: this build has no CUDA (nvcc not found, CUDA=0 or SAN=1))
endif
endif
$(BUILD)/obj/tests/cuda_bench/%.o: EXTRA_CFLAGS += -I$(CUDA_HOME)/include

$(BUILD)/bench_cuda_ops: $(BUILD)/obj/tests/cuda_bench/bench_cuda_ops.o $(BUILD)/libdeediff.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcublas

gpu-check: $(BUILD)/deediff $(BUILD)/deediff-tests $(BUILD)/bench_cuda_ops
	tests/cuda_bench/gpu_check.sh $(BUILD)

# a GPU machine without our Debian libraries: the gpu-check binaries and the
# libraries they load in one archive (tests/cuda_bench/gpu_bundle.sh says how
# to run it there)
gpu-bundle: $(BUILD)/deediff $(BUILD)/deediff-tests $(BUILD)/bench_cuda_ops
	tests/cuda_bench/gpu_bundle.sh $(BUILD) $(BUILD)/gpu-bundle.tar.xz

# ---- the CUDA backend emulated on the CPU (tests/cuda_emu/README.md) ------------
# emu-check: a CUDA=0 build in $(BUILD)/emu whose "cuda" context is the CPU
# kernels behind device pointers the host cannot read, BF16 activations and
# the CUDA backend's dtype rules (ctx_init_cuda wrapped at link time); on it
# an early-exit sampling against the CPU's and the cuda/* tests
# (tests/cuda_emu/emu_check.sh). Needs no GPU and no nvcc; the CUDA kernels
# themselves never run.
EMU_OBJ = $(BUILD)/obj/tests/cuda_emu/emu.o $(BUILD)/obj/tests/cuda_emu/emu_rules.o $(BUILD)/obj/gen/emu_ops.o
# (-rdynamic: the emulator's fault backtraces name our functions)
EMU_WRAP = -Wl,--wrap=ctx_init_cuda -Wl,--wrap=ctx_cuda_available -rdynamic

# the emulator's wrapper of every op, from the table itself
$(BUILD)/gen/emu_ops.c: kernels/op_table.h tests/cuda_emu/gen_ops.awk
	@mkdir -p $(dir $@)
	awk -f tests/cuda_emu/gen_ops.awk kernels/op_table.h > $@.tmp && mv $@.tmp $@

$(BUILD)/deediff-emu: $(BUILD)/obj/harness/cli/main.o $(EMU_OBJ) $(BUILD)/libdeediff.a
	$(CC) $(LDFLAGS) $(EMU_WRAP) -o $@ $^ $(LDLIBS)

$(BUILD)/deediff-tests-emu: $(TEST_OBJ) $(EMU_OBJ) $(BUILD)/libdeediff.a
	$(CC) $(LDFLAGS) $(EMU_WRAP) -o $@ $^ $(LDLIBS) -lcriterion

emu-check: deps
	$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/emu CUDA=0 $(BUILD)/emu/deediff-emu $(BUILD)/emu/deediff-tests-emu
	tests/cuda_emu/emu_check.sh $(BUILD)/emu

.PHONY: emu-check

clean:
	rm -rf $(BUILD)

.PHONY: all $(EXPERIMENTS) $(FIGURES) figures paper merge-shards regress rebaseline regress-history train-deediff train-deediff-frozen train-berxit train-calm train-calm-meta prune-spruning train-spruning baselines-sweep spruning-ratios deediff-sweep pretrain pretrain-figures deps deps-pytorch test test-asan fuzz fixtures bench gpu-check gpu-bundle clean

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
