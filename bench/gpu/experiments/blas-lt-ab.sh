#!/usr/bin/env bash
# blas-lt-autotune.patch, A/B on ONE GPU, from the repository root, carrying .gpu-blaslt as the README's recipe
# left it here (base/main.o, lt/main.o, kernels.o: Linear-Llama3-1B in bench mode, without and with the patch).
# Links both against the machine's libraries, then runs base, lt (cuBLASLt, LASP_BLAS_LOG=1: one line per plan
# on stderr) and lt-gemmex (the patched binary with LASP_BLAS=gemmex: today's path) alternately, ROUNDS times
# (default 2), each `--mode bench` with the program's warm-up and steps; then per arm the median step (the
# steps of every round together, warm-up left out), the ratios, and the loss of each step against base's (the
# same seed and data: a layout error in the new path shows there). With `verify` as $1, runs the patched
# program's --mode verify instead (each layer kind against its dense oracle, the whole model's step).
# Results: $OUT/<arm>-<round>.out (JSON events) and .err, $OUT/summary.txt.
set -uo pipefail
B=${B:-.gpu-blaslt}
OUT=${OUT:-/tmp/blaslt}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
cudnn=()
if nm "$B/kernels.o" 2>/dev/null | grep "U cudnnBackendCreateDescriptor" >/dev/null; then
  cudnn=(-L/usr/lib/x86_64-linux-gnu -lcudnn)
fi
for v in base lt; do
  [ -x "$B/$v/prog" ] && continue
  lt=()
  [ "$v" = lt ] && lt=(-lcublasLt)
  nvcc "-gencode=arch=compute_${ARCH:-90a},code=sm_${ARCH:-90a}" "$B/$v/main.o" "$B/kernels.o" -lnccl -lcublas \
    "${lt[@]}" "${cudnn[@]}" -o "$B/$v/prog" >"$OUT/link-$v.log" 2>&1 || { cat "$OUT/link-$v.log"; exit 4; }
done
run() {  # arm round mode [env...]
  local arm=$1 round=$2 mode=$3 bin
  shift 3
  bin=$B/${arm%-gemmex}/prog
  env "$@" timeout "${RANK_TIMEOUT:-300}" "$bin" --rank 0 --world 1 --device 0 --nccl-id-file "$OUT/nccl.id" \
    --mode "$mode" >"$OUT/$arm-$round.out" 2>"$OUT/$arm-$round.err"
  echo "$arm $mode round $round: exit $?"
}
if [ "${1:-}" = verify ]; then
  run lt 1 verify LASP_BLAS_LOG=1
  tail -n 15 "$OUT/lt-1.err"
  exit 0
fi
for ((r = 1; r <= ROUNDS; r++)); do
  run base "$r" bench
  run lt "$r" bench LASP_BLAS_LOG=1
  run lt-gemmex "$r" bench LASP_BLAS=gemmex
done
python3 - "$OUT" "$ROUNDS" <<'EOF' | tee "$OUT/summary.txt"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def events(arm, r):
    ev = []
    try:
        for line in open(f"{out}/{arm}-{r}.out"):
            if line.startswith("{"):
                ev.append(json.loads(line))
    except (OSError, ValueError) as e:
        print(f"{arm}-{r}: {e}")
    return ev
arms = ["base", "lt", "lt-gemmex"]
med, loss = {}, {}
for arm in arms:
    steps = []
    for r in range(1, rounds + 1):
        ev = events(arm, r)
        st = [e for e in ev if e["event"] == "step"]
        timed = [e["ms"] for e in st if not e["warmup"]]
        warm = [round(e["ms"], 1) for e in st if e["warmup"]]
        summ = [e for e in ev if e["event"] == "summary"]
        extra = f", summary median {summ[0]['median_ms']:.3f} ms, GEMM ceiling {summ[0]['gemm_tflops']:.0f} TFLOP/s" if summ else ""
        if timed:
            print(f"{arm} round {r}: median step {statistics.median(timed):.3f} ms over {len(timed)}, warm-up {warm}{extra}")
        steps += timed
        loss.setdefault(arm, {}).update({(r, e["step"]): e["loss"] for e in st})
    med[arm] = statistics.median(steps) if steps else float("nan")
print(" | ".join(f"{a}: {med[a]:.3f} ms" for a in arms))
print(f"base / lt = {med['base'] / med['lt']:.4f} (above 1: the patch is faster); "
      f"lt-gemmex / lt = {med['lt-gemmex'] / med['lt']:.4f}; lt-gemmex / base = {med['lt-gemmex'] / med['base']:.4f}")
for arm in ["lt", "lt-gemmex"]:
    d = [abs(v - loss["base"][k]) / max(abs(loss["base"][k]), 1e-6) for k, v in loss.get(arm, {}).items() if k in loss.get("base", {})]
    if d:
        print(f"loss of {arm} against base, the same steps: largest relative difference {max(d):.2e} over {len(d)} steps")
EOF
echo "plans (lt round 1):"
grep -E '^blas' "$OUT/lt-1.err" | head -n 60
