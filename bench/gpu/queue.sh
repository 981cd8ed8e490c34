#!/usr/bin/env bash
# One device call, many jobs: runs the named lots on the GPU machine in the order given, each under its own
# time limit, skipping a lot whose folders were not carried or whose limit no longer fits in QUEUE_SECONDS
# (default 540, under the device tool's 600 per call); one summary line per lot as it ends, then the lots'
# short results, then pack-out.sh. Logs under $OUT/<lot>/. From the repository root:
#   bash bench/gpu/queue.sh vdoc ceiling calibrate
# Lots (what each needs carried, built here beforehand; bench/gpu/README.md, "Building here"):
#   vdoc       .gpu-suite (make-suite.sh documents 1 + prebuild.sh): every v-doc-* verify program
#   ceiling    .gpu-suite/m-linear-1b-w1: the 1B model's bench step and its GEMM ceiling (the rate calibrate's
#              GEMMs should meet on the same GPU)
#   calibrate  .device (Node, nm.tar.xz: `npm ci --omit=dev` modules), dist: lasp calibrate, then its compare
#   gathered   .gpu-gathered: LASP-2H's gathered calls, the full bench (16K and 64K tokens, W 2 4 8)
#   docbench   .gpu-docbench (the s-* programs of make-suite.sh documents 1 + kernels.o): the 64K hybrid's step
#              with and without packed documents
#   vallscan   .gpu-docbench's v-*allscan*-w1 programs (`lasp compile` of those specs into it): All-Scan's program
#              builds and verifies on 1 GPU (issue 21)
#   docab      .gpu-docbench (its s-* programs; smaller than .gpu-suite): doc-layer-ab.sh, the 64K hybrid's
#              linear layers with and without packed documents, alternating for 3 rounds (issue 19's 5% goal);
#              DOCAB_SUITE=dir reads the pair from another prebuilt folder
#   scatterab  .gpu-suite (make-suite.sh softmax 4 + prebuild.sh), 2+ GPUs: scatter-ab.sh, LASP-2H's dK/dV
#              ReduceScatter on NCCL's kernel against the copy engines (verify, then the bench alternating)
#   softmax    .gpu-softmax/softmax_kernels (the harness built here with run_softmax.sh's nvcc line, output in
#              that folder): lasp's softmax kernels, every check (SOFTMAX_SUITE: --suite's pairs, default the
#              harness's), timings beside SDPA's cuDNN and flash (issue 18)
#   gcheck     .gpu-gathered/gathered_check (as gathered): its checks alone, every case and both backends
#   clocks     .gpu-clocks (step-clocks.sh prepare) and .device/wheels (fla): step-clocks.sh run, lasp's and
#              PyTorch's 1B steps with clocks and power sampled, both traced kernel by kernel
#   opscheck   .gpu-ops/model_ops (as ops): its checks alone (`--checks-only`), the grouped kv heads' copy and sum
#              among them
#   ops        .gpu-ops/model_ops (model_ops_test.cu built here: bench/gpu/README.md's nvcc line with
#              -I/tmp/nvroot/include -L/tmp/nvroot/lib from nvlibs.sh): the model ops' timings (classifier chunks)
#   train1b    .gpu-suite (make-suite.sh all 1 + make-train-data.sh + prebuild.sh) and .device/wheels (fla):
#              run-train.sh 1b, Linear-Llama3-1B's train step beside PyTorch's with fused AdamW (issue 17's goal)
#   trainck    .gpu-suite/t-tiny-train-w1, t-linear-1b-ck-w1 and data (make-suite.sh all 1 + make-train-data.sh,
#              the programs built here): run-train.sh resume, reshard, signal (SIGTERM at step 203, while step
#              200's checkpoint may still be written) and ckpt1b: checkpoints written in the background stay exact,
#              and a checkpoint of 2 ranks' layouts resumes on 1 GPU
#   inplace    .gpu-suite/t-tiny-train-w1 and data: run-train.sh inplace, checkpoints written in place
#              (LASP_CHECKPOINT_COPY=none) against the background writer's: the same losses and files, a resume
#   mlpship    .gpu-ship (`build-specs-here.sh .gpu-ship t-linear-1b-w1 t-linear-8bshape-w1 t-tiny-train-w1 t-linear-1b-keep-w1`),
#              .gpu-suite/data, .device/wheels, bench/gpu/mlp_gemm/mlp_gemm_check: the shipped MLP GEMM's harness,
#              the tiny model trained and evaluated by PyTorch, the 1B step with LASP_MLP_GEMM auto against cublas
#              (env-ab.sh), then the same A/B with four layers of
#              Llama-3-8B's shape (t-linear-8bshape-w1: is `auto` right at the 8B shape too?)
#   shardload  .gpu-ship/t-tiny-train-w1 (with mlpship's): its initial weights saved, split into three shards with
#              an index (shard_weights.py), and trained from each: `--load-weights FOLDER` the same losses as the file;
#              the same widened to F32 (its values kept whole as the masters: the same losses again); narrowed to
#              F16 against those F16 values written as BF16 (the same losses)
#   torch1b    .gpu-ship/t-linear-1b-w1 and t-linear-1b-keep-w1, .gpu-suite/data, .device/wheels (fla): issue 17's
#              figure: both 1B programs for 60 steps (`recompute norms`, then `none`: what `recompute auto` picks on
#              an 80 GB GPU), PyTorch's 1B training step with fused AdamW (first run compiles: minutes), both again;
#              TORCH1B_SECONDS (default 500) is the lot's limit, PyTorch's the same less 180; TORCH1B_A and
#              TORCH1B_B name other programs (an A/B of two builds beside PyTorch; one program twice needs an
#              environment for env-ab.sh's B, e.g. B=LASP_ADAMW=plain, or it refuses and only PyTorch runs);
#              TORCH1B_PRESET=hybrid times PyTorch's 1B hybrid instead (then A and B: .gpu-*/t-hybrid-1b-keep-w1)
#   shipref    .gpu-ship/v-hyb-rope-w1 and v-hyb-gqa-w1 (`build-specs-here.sh .gpu-ship v-hyb-rope-w1 v-hyb-gqa-w1`):
#              the hybrid with Llama 3's RoPE scaling, and with grouped kv heads in its linear layers, each in verify
#              mode against its own oracle, then its weights and gradients against PyTorch's (torch_reference.py
#              computes the scaled frequencies and the grouped heads in its own Python from config.json)
#   master     .gpu-ops/adamw_check (bench/gpu/adamw_check.cu's nvcc line, output there), .gpu-ship/t-tiny-train-w1 (the
#              folder: the ZeRO-1 reshard reads its main.cu)
#              and .gpu-suite/data: the fp32 masters held as bf16 weights and low halves (master_weights.cuh) on
#              the GPU: AdamW against torch.optim.AdamW (1e-6) and the same bytes with LASP_ADAMW=plain (the Hopper
#              bulk-copy path against the vectorised kernel), then run-train.sh resume and reshard on the tiny
#              model (the masters joined into a checkpoint and split back: the same losses to the bit)
#   keepab     .gpu-ship/t-linear-1b-w1 and t-linear-1b-keep-w1 (built with mlpship's, `recompute none`): the 1B
#              step with the block norms' outputs kept against made again (env-ab.sh PROG_B=), the same losses
#   gemmsus    .gpu-ops/gemm_algos (bench/gpu/gemm_algos.cu's nvcc line, -I/tmp/nvroot/include -L/tmp/nvroot/lib,
#              output there): the 1B step's GEMM shapes, cuBLAS's default against cuBLASLt's candidates and lasp's
#              Hopper GEMM (where it takes the shape), each back to back for 250 ms at the power limit on random
#              operands (which spends the fewest joules), with the SM clock and power sampled; GEMMSUS_ARGS=--configs
#              adds every cuBLASLt candidate's configuration (tile, stages, cluster shape) with its time
#   energy     .gpu-ops/model_ops (as ops): each model op back to back for 2 s on the board's energy counter
#              (--energy 2: joules a call and watts), beside an idle board, a copy and the gate|up GEMM; AdamW at the
#              1B size with the shipped grid and six others
#   stream     .gpu-ops/stream_energy (bench/gpu/experiments/stream_energy.cu's nvcc line): joules a GB through
#              TMA's bulk copies against the threads' own loads: copies, the sum of squares, AdamW (bit for bit first)
#   linenergy  .gpu-ops/linear_kernels (bench/gpu/linear_kernels.cu's nvcc line, output there): the linear-attention
#              core's call sets timed, then at 16K tokens each back to back on the energy counter (--energy 2), with
#              the per-head decay and with none (Linear-Llama3-1B's): the attention's joules in the 1B step
#   lhead      .gpu-ship/t-linear-1b-keep-w1 and .gpu-suite/data: the LM head's logits on lasp's Hopper GEMM (the
#              default) against cuBLAS (LASP_HEAD_GEMM=cublas), the 1B step A/B, 3 rounds
#   energyread .gpu-old/t-tiny-train-w1 (built here from an older commit's tree, a git worktree of it)
#              and .gpu-ship/t-tiny-train-w1 (HEAD), .gpu-suite/data: the tiny model's train step, old build against
#              new (env-ab.sh PROG_B, 3 rounds of 300 steps): what train mode's energy read costs a step
#   hfck       ${HFCK_SUITE:-.gpu-h32}/t-tiny-train-w1/prog (built here at HEAD: build-specs-here.sh's nvcc line)
#              and .gpu-suite/data: the tiny model trained for its 600 steps, then its last checkpoint's
#              model.safetensors (left beside out.tgz: over pack-out's 4 MiB), config.json, modeling_lasp.py and
#              tokenizer files brought back, for `bench/gpu/hf_modeling_check.py --checkpoint` here (transformers
#              loading it against the program's eval loss); where the machine has transformers, that check there too
#   hffla      ${HFFLA_CONFIGS:-.gpu-h33/hf-configs} (`node bench/gpu/hf-configs.mjs DIR` here) and .device/wheels (fla):
#              bench/gpu/hf_fla_check.py, modeling_lasp.py's kernels "fla" (linear layers on fla, softmax on bf16)
#              against "exact" (losses, logits, gradients, cache, padding), both timed on Linear-Llama3-1B's layer
#              shape; with the machine's transformers (5.17 on the H100s seen); its pass lets "fast" be the default
#   diag       .gpu-diag (`lasp compile` of variant specs + kernels.o, as vallscan): verify programs that tell
#              one question apart, their specs beside them (the closing note says which)
# The carried folders and the tracked tree together must stay under the device tool's 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/lasp-queue}
budget=${QUEUE_SECONDS:-540}
start=$(date +%s)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"

# torch1b's two lasp programs (TORCH1B_A, TORCH1B_B: folders of built train programs, data beside them)
torch1b_a=${TORCH1B_A:-.gpu-ship/t-linear-1b-w1}
torch1b_b=${TORCH1B_B:-.gpu-ship/t-linear-1b-keep-w1}
limit_of() {
  case "$1" in
    vdoc) echo 170 ;; ceiling) echo 50 ;; calibrate) echo 180 ;; gathered) echo 200 ;;
    docbench) echo 150 ;; vallscan) echo 80 ;; diag) echo 90 ;; docab) echo 200 ;; scatterab) echo 420 ;; softmax) echo 220 ;;
    gcheck) echo 120 ;; trainck) echo 290 ;; inplace) echo 100 ;; mlpship) echo 590 ;; torch1b) echo "${TORCH1B_SECONDS:-500}" ;; shipref) echo 240 ;; master) echo 120 ;; keepab) echo 150 ;; shardload) echo 80 ;; clocks) echo 300 ;; ops) echo 100 ;; opscheck) echo 90 ;; train1b) echo 330 ;; gemmsus) echo 150 ;; energy) echo 200 ;; lhead) echo 160 ;; stream) echo 150 ;; linenergy) echo 120 ;; energyread) echo 100 ;; hfck) echo 120 ;; hffla) echo 420 ;; *) echo 0 ;;
  esac
}
needs_of() {
  case "$1" in
    vdoc) echo .gpu-suite/kernels.o ;; ceiling) echo .gpu-suite/m-linear-1b-w1 ;; calibrate) echo ".device/nm.tar.xz dist" ;;
    gathered) echo .gpu-gathered/gathered_check ;; docbench) echo .gpu-docbench/kernels.o ;;
    vallscan) echo .gpu-docbench/v-allscan-zz-d64-w1 ;;
    diag) echo .gpu-diag/kernels.o ;;
    docab) echo "${DOCAB_SUITE:-.gpu-docbench}/s-doc-hyb-ag-zz-w1" ;;
    scatterab) echo .gpu-suite/b-hyb-ag-zz-w2 ;;
    softmax) echo .gpu-softmax/softmax_kernels ;;
    gcheck) echo .gpu-gathered/gathered_check ;; clocks) echo ".gpu-clocks/m-linear-1b-w1 .device/wheels" ;;
    ops) echo .gpu-ops/model_ops ;; opscheck) echo .gpu-ops/model_ops ;; energy) echo .gpu-ops/model_ops ;;
    lhead) echo ".gpu-ship/t-linear-1b-keep-w1/prog .gpu-suite/data" ;;
    stream) echo .gpu-ops/stream_energy ;;
    linenergy) echo .gpu-ops/linear_kernels ;;
    energyread) echo ".gpu-old/t-tiny-train-w1/prog .gpu-ship/t-tiny-train-w1/prog .gpu-suite/data" ;;
    train1b) echo ".gpu-suite/t-linear-1b-w1 .gpu-suite/data .device/wheels" ;;
    trainck) echo ".gpu-suite/t-tiny-train-w1 .gpu-suite/t-linear-1b-ck-w1 .gpu-suite/data" ;;
    inplace) echo ".gpu-suite/t-tiny-train-w1 .gpu-suite/data" ;;
    mlpship) echo ".gpu-ship/t-linear-1b-w1/prog .gpu-ship/t-linear-8bshape-w1/prog .gpu-ship/t-tiny-train-w1/prog .gpu-suite/data .device/wheels" ;;
    torch1b) echo "$torch1b_a/prog $torch1b_b/prog .gpu-suite/data .device/wheels" ;;
    shipref) echo ".gpu-ship/v-hyb-rope-w1/prog" ;;
    keepab) echo ".gpu-ship/t-linear-1b-w1/prog .gpu-ship/t-linear-1b-keep-w1/prog .gpu-suite/data" ;;
    shardload) echo ".gpu-ship/t-tiny-train-w1/prog .gpu-suite/data" ;;
    master) echo ".gpu-ops/adamw_check .gpu-ship/t-tiny-train-w1/prog .gpu-ship/t-tiny-train-w1/main.cu .gpu-suite/data" ;;
    gemmsus) echo .gpu-ops/gemm_algos ;;
    hfck) echo "${HFCK_SUITE:-.gpu-h32}/t-tiny-train-w1/prog .gpu-suite/data" ;;
    hffla) echo "${HFFLA_CONFIGS:-.gpu-h33/hf-configs} .device/wheels" ;;
  esac
}
run_lot() { # lot limit dir
  local lot=$1 limit=$2 dir=$3
  case "$lot" in
    vdoc) (cd .gpu-suite && SUITE_FILTER='v-doc-*' OUT=$dir RANK_TIMEOUT=50 timeout "$limit" bash run-prebuilt.sh) ;;
    ceiling) (cd .gpu-suite && SUITE_FILTER='m-linear-1b-w1' OUT=$dir RANK_TIMEOUT=45 timeout "$limit" bash run-prebuilt.sh) ;;
    calibrate)
      # shellcheck disable=SC1091  # on the GPU machine only
      source .device/env.sh
      [ -e node_modules ] || { tar xJf .device/nm.tar.xz -C /tmp && ln -s /tmp/node_modules node_modules; }
      OUT=$dir timeout "$limit" bash bench/gpu/run-calibrate.sh calibrate ;;
    gathered) PREBUILT=.gpu-gathered/gathered_check OUT=$dir SKIP_CHECKS=1 timeout "$limit" bash bench/gpu/run-gathered.sh ;;
    docbench) (cd .gpu-docbench && SUITE_FILTER='s-*' OUT=$dir RANK_TIMEOUT=60 timeout "$limit" bash run-prebuilt.sh) ;;
    vallscan) (cd .gpu-docbench && SUITE_FILTER='v-*allscan*' OUT=$dir RANK_TIMEOUT=30 timeout "$limit" bash run-prebuilt.sh) ;;
    diag) (cd .gpu-diag && OUT=$dir RANK_TIMEOUT=30 timeout "$limit" bash run-prebuilt.sh) ;;
    docab) SUITE=${DOCAB_SUITE:-.gpu-docbench} OUT=$dir timeout "$limit" bash bench/gpu/doc-layer-ab.sh > "$dir/ab.txt" 2>&1 ;;
    scatterab) OUT=$dir timeout "$limit" bash bench/gpu/scatter-ab.sh > "$dir/ab.txt" 2>&1 ;;
    softmax)
      PREBUILT=.gpu-softmax/softmax_kernels SKIP_FIND=1 OUT=$dir timeout "$limit" \
        bash bench/gpu/run_softmax.sh --runs 10 ${SOFTMAX_SUITE:+--suite "$SOFTMAX_SUITE"} ;;
    gcheck) PREBUILT=.gpu-gathered/gathered_check OUT=$dir SKIP_BENCH=1 timeout "$limit" bash bench/gpu/run-gathered.sh ;;
    clocks) OUT=$dir timeout "$limit" bash bench/gpu/step-clocks.sh run ;;
    ops) timeout "$limit" .gpu-ops/model_ops --bench-only --runs 20 > "$dir/model_ops.log" 2>&1 ;;
    opscheck) timeout "$limit" .gpu-ops/model_ops --checks-only > "$dir/model_ops.log" 2>&1 ;;
    stream) timeout "$limit" .gpu-ops/stream_energy --seconds 2 > "$dir/stream.log" 2>&1 ;;
    linenergy) timeout "$limit" .gpu-ops/linear_kernels --bench-only --runs 20 --energy 2 > "$dir/linear.log" 2>&1 ;;
    energyread)
      ln -sfn ../.gpu-suite/data .gpu-old/data
      ln -sfn ../.gpu-suite/data .gpu-ship/data
      PROG=.gpu-old/t-tiny-train-w1 PROG_B=.gpu-ship/t-tiny-train-w1 ROUNDS=3 STEPS=300 OUT=$dir/ab \
        timeout $((limit - 5)) bash bench/gpu/env-ab.sh > "$dir/ab.txt" 2>&1 ;;
    energy) timeout "$limit" .gpu-ops/model_ops --bench-only --runs 10 --energy 2 > "$dir/model_ops.log" 2>&1 ;;
    lhead)
      ln -sfn ../.gpu-suite/data .gpu-ship/data
      PROG=.gpu-ship/t-linear-1b-keep-w1 A="" B="LASP_HEAD_GEMM=cublas" ROUNDS=3 \
        STEPS=40 OUT=$dir/ab timeout $((limit - 5)) bash bench/gpu/env-ab.sh > "$dir/ab.txt" 2>&1 ;;
    gemmsus)
      nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader -lms 500 > "$dir/clocks.txt" &
      sampler=$!
      timeout $((limit - 5)) .gpu-ops/gemm_algos --sustained 250 --json "$dir/gemm-sustained.json" ${GEMMSUS_ARGS:-} \
        > "$dir/gemm.txt" 2>&1
      kill "$sampler" 2> /dev/null ;;
    train1b)
      python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl
      PYTHONPATH=/tmp/fla OUT=$dir RUNS=/tmp/lasp-train-runs timeout "$limit" bash bench/gpu/run-train.sh 1b > "$dir/train.txt" 2>&1 ;;
    shardload)
      ln -sfn ../.gpu-suite/data .gpu-ship/data
      w=$(mktemp -d /tmp/lasp-shardload.XXXXXX)
      mkdir -p "$w/file"  # --save-weights writes into a folder that is there
      for how in seeded file sharded f32 f16 f16ref; do
        case $how in
          seeded) flags=(--save-weights "$w/file/model.safetensors") ;;
          file) flags=(--load-weights "$w/file/model.safetensors") ;;
          sharded) python3 bench/gpu/shard_weights.py "$w/file/model.safetensors" "$w/sharded" --shards 3 >> "$dir/load.txt"
            flags=(--load-weights "$w/sharded") ;;
          f32) python3 bench/gpu/shard_weights.py "$w/file/model.safetensors" "$w/f32" --shards 2 --f32 >> "$dir/load.txt"
            flags=(--load-weights "$w/f32") ;;
          f16) python3 bench/gpu/shard_weights.py "$w/file/model.safetensors" "$w/f16" --shards 2 --f16 >> "$dir/load.txt"
            flags=(--load-weights "$w/f16") ;;
          f16ref) python3 bench/gpu/shard_weights.py "$w/file/model.safetensors" "$w/f16ref" --shards 2 --f16-as-bf16 \
              >> "$dir/load.txt"
            flags=(--load-weights "$w/f16ref") ;;
        esac
        (cd .gpu-ship && timeout 50 t-tiny-train-w1/prog --rank 0 --world 1 --device 0 --mode train --steps 30 \
          --run-dir "$w/run-$how" --no-checkpoints "${flags[@]}" > "$dir/$how.jsonl" 2> "$dir/$how.err")
        echo "$how exit $?" >> "$dir/load.txt"
      done
      rm -rf "$w"
      python3 - "$dir" >> "$dir/load.txt" <<'PY'
import json, sys
loss = {h: [repr(e["loss"]) for e in map(json.loads, (l for l in open(f"{sys.argv[1]}/{h}.jsonl") if l.startswith("{")))
            if e["event"] == "step"] for h in ("seeded", "file", "sharded", "f32", "f16", "f16ref")}
for base, other in (("file", "sharded"), ("file", "f32"), ("f16ref", "f16")):
    same = sum(a == b for a, b in zip(loss[base], loss[other]))
    print(f"{other} vs {base}: {same} of {min(len(loss[base]), len(loss[other]))} losses the same bits")
print(f"file vs seeded, step 1: {'same' if loss['file'][:1] == loss['seeded'][:1] and loss['file'] else 'DIFFERS or missing'}")
PY
      grep -h "loaded" "$dir/sharded.err" "$dir/f32.err" "$dir/f16.err" >> "$dir/load.txt" ;;
    torch1b)
      for p in "$torch1b_a" "$torch1b_b"; do ln -sfn ../.gpu-suite/data "$(dirname "$p")/data"; done
      python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl > /dev/null 2>&1
      lasp_ab() { PROG=$torch1b_a PROG_B=$torch1b_b ROUNDS=1 STEPS=60 OUT=$dir/$1 \
        timeout 90 bash bench/gpu/env-ab.sh > "$dir/$1.txt" 2>&1; }
      lasp_ab before
      PYTHONPATH=/tmp/fla timeout $((limit - 180)) python3 bench/gpu/torch_model.py --preset "${TORCH1B_PRESET:-linear-llama3-1b}" --tokens 16384 --steps 10 \
        --warmup 3 --clip-grad-norm 1.0 --json "$dir/torch-1b.json" > "$dir/torch-1b.log" 2>&1
      echo "torch exit $?" > "$dir/torch.txt"
      lasp_ab after
      python3 - "$dir" "$torch1b_a" "$torch1b_b" > "$dir/vs.txt" <<'PY'
import json, statistics, sys
d = sys.argv[1]
def med(path):
    ms = [e["ms"] for e in map(json.loads, (l for l in open(path) if l.startswith("{"))) if e["event"] == "step" and e["step"] >= 5]
    return statistics.median(ms) if ms else float("nan")
def joules(path):  # the trained event's joules a step (every step of the run: the first's start-up included)
    t = [e for e in map(json.loads, (l for l in open(path) if l.startswith("{"))) if e["event"] == "trained"]
    return t[-1]["joules"] / t[-1]["steps"] if t and t[-1].get("joules") is not None and t[-1]["steps"] else float("nan")
torch_run = json.load(open(f"{d}/torch-1b.json"))
torch_ms, torch_j = torch_run["step_ms"], torch_run.get("joules_per_step") or float("nan")
for arm, name in (("A", sys.argv[2]), ("B", sys.argv[3])):
    runs = [med(f"{d}/{r}/{arm}.1.jsonl") for r in ("before", "after")]
    m = statistics.median(runs)
    print(f"lasp {name}: {' '.join(f'{v:.2f}' for v in runs)} ms, median {m:.2f}; PyTorch {torch_ms:.2f} ms: {torch_ms / m:.3f}x")
    j = statistics.median([joules(f"{d}/{r}/{arm}.1.jsonl") for r in ("before", "after")])
    print(f"  energy: lasp {j:.1f} J a step, PyTorch {torch_j:.1f} J a timed step: {torch_j / j:.3f}x")
PY
      ;;
    shipref)
      for p in v-hyb-rope-w1 v-hyb-gqa-w1; do
        [ -x ".gpu-ship/$p/prog" ] || { echo "$p: not carried" >> "$dir/shipref.txt"; continue; }
        w=$(mktemp -d /tmp/lasp-shipref.XXXXXX)
        mkdir -p "$dir/$p"
        timeout 60 ".gpu-ship/$p/prog" --rank 0 --world 1 --device 0 --mode verify \
          --save-weights "$w/model.safetensors" --save-grads "$w/grads.safetensors" > "$dir/$p/program.out" 2> "$dir/$p/program.err"
        echo "$p program exit $?" >> "$dir/shipref.txt"
        grep -h "verify\|LM head" "$dir/$p/program.out" "$dir/$p/program.err" | tail -4 >> "$dir/shipref.txt"
        cp "$w/config.json" "$dir/$p/" 2> /dev/null
        timeout 80 python3 bench/gpu/torch_reference.py "$w/model.safetensors" "$w/grads.safetensors" --device cuda \
          --json "$dir/$p/reference.json" > "$dir/$p/reference.txt" 2>&1
        echo "$p reference exit $?" >> "$dir/shipref.txt"
        head -8 "$dir/$p/reference.txt" >> "$dir/shipref.txt"
        rm -rf "$w"
      done ;;
    master)
      (.gpu-ops/adamw_check /tmp/lasp-adamw.bin && python3 bench/gpu/adamw_torch.py /tmp/lasp-adamw.bin
        echo "adamw exit $?"
        LASP_ADAMW=plain .gpu-ops/adamw_check /tmp/lasp-adamw-plain.bin && cmp /tmp/lasp-adamw.bin /tmp/lasp-adamw-plain.bin
        echo "adamw: default path against LASP_ADAMW=plain, the same bytes: exit $?"
        ln -sfn ../.gpu-suite/data .gpu-ship/data
        TORCH_EVAL=0 SUITE=.gpu-ship OUT=$dir/resume RUNS=/tmp/lasp-master-resume timeout 70 bash bench/gpu/run-train.sh resume
        SUITE=.gpu-ship OUT=$dir/resume RUNS=/tmp/lasp-master-resume timeout 40 bash bench/gpu/run-train.sh reshard
      ) > "$dir/master.txt" 2>&1 ;;
    keepab)
      ln -sfn ../.gpu-suite/data .gpu-ship/data
      PROG=.gpu-ship/t-linear-1b-w1 PROG_B=.gpu-ship/t-linear-1b-keep-w1 ROUNDS=3 STEPS=20 OUT=$dir/ab \
        timeout "$limit" bash bench/gpu/env-ab.sh > "$dir/ab.txt" 2>&1 ;;
    mlpship)
      (ln -sfn ../.gpu-suite/data .gpu-ship/data
        PROG=.gpu-ship/t-linear-1b-w1 A="LASP_MLP_GEMM=auto" B="LASP_MLP_GEMM=cublas" ROUNDS=3 STEPS=20 OUT=$dir/ab \
          timeout 150 bash bench/gpu/env-ab.sh > "$dir/ab.txt" 2>&1
        echo "ab exit $?"
        python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl > /dev/null 2>&1
        PROG=.gpu-ship/t-linear-8bshape-w1 A="LASP_MLP_GEMM=auto" B="LASP_MLP_GEMM=cublas" ROUNDS=2 STEPS=15 OUT=$dir/ab8b \
          timeout 170 bash bench/gpu/env-ab.sh > "$dir/ab8b.txt" 2>&1
        echo "ab 8B shape exit $?"
        if [ -x bench/gpu/mlp_gemm/mlp_gemm_check ]; then
          OUT=$dir/harness timeout 50 bash bench/gpu/mlp_gemm/run.sh > "$dir/harness.log" 2>&1
          echo "harness exit $?"
        fi
        SUITE=.gpu-ship OUT=$dir/tiny RUNS=/tmp/lasp-ship-tiny timeout 100 bash bench/gpu/run-train.sh tiny > "$dir/tiny.txt" 2>&1
        echo "tiny exit $?") > "$dir/mlpgemm.txt" 2>&1 ;;
    inplace) OUT=$dir RUNS=/tmp/lasp-ck-inplace timeout "$limit" bash bench/gpu/run-train.sh inplace > "$dir/train.txt" 2>&1 ;;
    hfck)
      (suite=${HFCK_SUITE:-.gpu-h32}
        ln -sfn "$PWD/.gpu-suite/data" "$suite/data"
        (cd "$suite" && timeout 100 t-tiny-train-w1/prog --rank 0 --world 1 --device 0 --nccl-id-file /tmp/hfck.id \
          --mode train --run-dir /tmp/lasp-hfck > "$dir/tiny.jsonl" 2> "$dir/tiny.err")
        echo "tiny exit $?"
        ck=/tmp/lasp-hfck/checkpoints/step-000600
        ls "$ck"
        for f in model.safetensors config.json modeling_lasp.py tokenizer.json tokenizer_config.json; do cp "$ck/$f" "$dir/"; done
        grep -h "eval at step 600" "$dir/tiny.err"
        if python3 -c "import transformers" 2> /dev/null; then
          loss=$(python3 -c 'import json,sys; print([e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "eval"][-1]["loss"])' "$dir/tiny.jsonl")
          timeout 60 python3 bench/gpu/hf_modeling_check.py --checkpoint "$ck" --eval-tokens .gpu-suite/data/eval.bin \
            --seq-len 1024 --expect-loss "$loss" --device cuda
        else echo "no transformers on this machine: check here with hf_modeling_check.py --checkpoint"; fi) > "$dir/hfck.txt" 2>&1 ;;
    hffla)
      (python3 -m pip install -q --no-deps --no-index --target /tmp/fla .device/wheels/*.whl > /dev/null 2>&1
        PYTHONPATH=/tmp/fla timeout $((limit - 20)) python3 bench/gpu/hf_fla_check.py --configs "${HFFLA_CONFIGS:-.gpu-h33/hf-configs}" \
          --tokens 8192 --runs 5
        echo "hf_fla_check exit $?") > "$dir/fla.txt" 2>&1 ;;
    trainck)
      (OUT=$dir/resume RUNS=/tmp/lasp-ck-resume timeout 70 bash bench/gpu/run-train.sh resume
        OUT=$dir/resume RUNS=/tmp/lasp-ck-resume timeout 40 bash bench/gpu/run-train.sh reshard
        OUT=$dir/signal RUNS=/tmp/lasp-ck-signal SIGNAL_AT=203 timeout 40 bash bench/gpu/run-train.sh signal
        OUT=$dir/ckpt1b RUNS=/tmp/lasp-ck-1b timeout 140 bash bench/gpu/run-train.sh ckpt1b) > "$dir/train.txt" 2>&1 ;;
  esac
}
# The lines worth reading first, per lot.
short_of() { # lot dir
  case "$1" in
    vdoc | ceiling | docbench | vallscan | diag) cut -c1-170 "$2/table.txt" 2>/dev/null ;;
    calibrate) grep -hE '^\[|gemmFlops|attentionFlops|exit' "$2/calibrate.log" 2>/dev/null; cat "$2/compare.txt" 2>/dev/null ;;
    gathered | gcheck) tail -30 "$2/summary.txt" 2>/dev/null ;;
    clocks) cat "$2/clocks.txt" 2>/dev/null ;;
    ops) grep -E "x128256|swiglu|norm" "$2/model_ops.log" 2>/dev/null ;;
    opscheck) grep -E "FAIL|kv groups|checks|INFO classifier" "$2/model_ops.log" 2>/dev/null | head -20 ;;
    energy) grep -E "^\| |energy" "$2/model_ops.log" 2>/dev/null | cut -d'|' -f2,3,4,11,12,13 ;;
    lhead) cut -c1-200 "$2/ab.txt" 2>/dev/null ;;
    energyread) cut -c1-200 "$2/ab.txt" 2>/dev/null ;;
    stream) grep -E "^CHECK|^INFO|^\||failed" "$2/stream.log" 2>/dev/null ;;
    linenergy) grep -E "^tokens|^ENERGY" "$2/linear.log" 2>/dev/null | cut -c1-160 ;;
    gemmsus) cat "$2/gemm.txt" 2>/dev/null; sort "$2/clocks.txt" 2>/dev/null | uniq -c | sort -rn | head -3 ;;
    docab) tail -8 "$2/ab.txt" 2>/dev/null ;;
    train1b) tail -14 "$2/train.txt" 2>/dev/null ;;
    torch1b) cat "$2/torch.txt" "$2/vs.txt" 2>/dev/null; tail -n 4 "$2/torch-1b.log" 2>/dev/null | cut -c1-200 ;;
    hfck) cut -c1-200 "$2/hfck.txt" 2>/dev/null ;;
    hffla) grep -vE "Loading weights" "$2/fla.txt" 2>/dev/null | grep -E "^(FAIL|all|[0-9]+ failed|\||4 layers|hf_)|faster|less memory" | cut -c1-200 ;;
    shipref) cat "$2/shipref.txt" 2>/dev/null | cut -c1-200 ;;
    keepab) cat "$2/ab.txt" 2>/dev/null | cut -c1-200 ;;
    shardload) cat "$2/load.txt" 2>/dev/null | cut -c1-200 ;;
    mlpship) cat "$2/mlpgemm.txt"; grep -hE "^== CHECKS|FAILED|WATCHDOG|identical|backend" "$2/harness.log" 2>/dev/null | head
      sed -n '/^== RESULTS/,$p' "$2/harness.log" 2>/dev/null | cut -c1-160
      grep -hE "exit|eval at step 600|loss .* over|expect|rel|mlp|MLP" "$2/tiny.txt" | cut -c1-180; cat "$2/ab.txt" "$2/ab8b.txt" 2>/dev/null | cut -c1-200
      grep -h "MLP" "$2/ab/A.1.err" "$2/ab/B.1.err" 2>/dev/null; tail -6 "$2/torch-1b.log" ;;
    inplace) grep -hE 'exit|differ|bytes|DIFFERS|place|LASP_CHECKPOINT_COPY' "$2/train.txt" 2>/dev/null | cut -c1-200 ;;
    trainck) grep -hE 'exit|differ|checkpoint|steps|loss' "$2/train.txt" 2>/dev/null | cut -c1-200 ;;
    master) grep -hE 'exit|differ|relative|max|step' "$2/master.txt" 2>/dev/null | cut -c1-200 | tail -20 ;;
    scatterab) grep -hE 'exit|/ auto' "$2/ab.txt" 2>/dev/null ;;
    softmax) grep -hE '^CHECKS|^\||^ours bwd' "$2/summary.md" 2>/dev/null ;;
  esac
}

[ $# -gt 0 ] || { echo "usage: queue.sh LOT... (vdoc ceiling calibrate gathered gcheck clocks ops train1b trainck inplace mlpship torch1b shipref opscheck master keepab shardload gemmsus energy lhead stream linenergy energyread hfck hffla docbench vallscan diag docab scatterab softmax)" >&2; exit 2; }
: > "$OUT/summary.txt"
for lot in "$@"; do
  limit=$(limit_of "$lot")
  if [ "$limit" = 0 ]; then echo "$lot: no such lot" | tee -a "$OUT/summary.txt"; continue; fi
  missing=""
  for need in $(needs_of "$lot"); do [ -e "$need" ] || missing="$missing $need"; done
  if [ -n "$missing" ]; then echo "$lot: skipped, not carried:$missing" | tee -a "$OUT/summary.txt"; continue; fi
  left=$((budget - ($(date +%s) - start)))
  if [ "$left" -lt "$limit" ]; then
    echo "$lot: skipped, ${left} s left of ${budget} and it may take ${limit}" | tee -a "$OUT/summary.txt"
    continue
  fi
  mkdir -p "$OUT/$lot"
  t0=$(date +%s)
  run_lot "$lot" "$limit" "$OUT/$lot" > "$OUT/$lot/run.log" 2>&1
  echo "$lot: exit $? in $(($(date +%s) - t0)) s" | tee -a "$OUT/summary.txt"
done
for lot in "$@"; do
  [ -d "$OUT/$lot" ] || continue
  echo "== $lot"
  short_of "$lot" "$OUT/$lot"
done | tee "$OUT/short.txt"
bash bench/gpu/pack-out.sh
