#!/usr/bin/env bash
# wgrad-stream.patch (the backward's weight-gradient GEMMs on a second stream with their own cuBLAS handle,
# LASP_WGRAD_SMS its SM target), A/B on ONE GPU, issue 17. Two halves:
#
#   bash bench/gpu/experiments/wgrad-ab.sh build   # here (nvcc, Node, no GPU): the programs into .gpu-wgrad/
#   bash bench/gpu/experiments/wgrad-ab.sh         # there, from the repository root, carrying .gpu-wgrad
#
# build: compiles bench/gpu/specs/m-linear-1b-w1.lasp (Linear-Llama3-1B, 16K tokens, bench mode) and the verify
# specs VERIFY_SPECS with today's templates (base) and with the patch applied to a copy of them (wgrad), links
# each for sm_90a against bench/gpu/nvlibs.sh's NCCL and cuBLAS (no cuDNN: none of these specs needs it), strips
# them and packs them into one solid .gpu-wgrad/progs.tar.xz (base/<spec>, wgrad/<spec>: base and patched share
# almost every byte, so the pair costs little more than one; 12 MB would not hold them unpacked). kernels.cu
# includes none of the patched headers (checked): one kernels.o serves both programs of a spec.
#
# run (the default): unpacks the programs into $X (default /tmp/wgrad-progs; python3's tarfile), then
# 1. once, unless VERIFY=0: each verify spec's `--mode verify`, base (twice) and wgrad (every layer kind and the
#    whole model's step against the dense fp32 oracle), each saving its weight gradients (--save-grads):
#    verify's verdict per program, and whether wgrad's gradients are base's bit for bit (the same GEMMs on
#    another stream: they are, where base's are the same run to run; a softmax kind's backward adds with
#    atomics, so below it base's own rerun differs too, and wgrad is held to base's spread);
# 2. the bench of m-linear-1b-w1, ROUNDS rounds (default 2) of the arms base, wgrad (every SM), wgrad-124 and
#    wgrad-116 (LASP_WGRAD_SMS=124 / 116), in turn, every other round in reverse order; each `--mode bench`
#    with the spec's 3 warm-up and 10 timed steps. Per round each arm's median step; last the table: arm,
#    median step over every timed step of every round, median backward phase, ratio to base, and whether the
#    arm's step losses are base's to the printed digit (bench never updates the weights: the losses check the
#    forward only; the gradients are verify's).
# Logs: $OUT (default /tmp/wgrad-ab): <arm>-<round>.out (JSON events) and .err, verify-<spec>-<arm>.out/.err,
# summary.txt. On H100 the whole run takes about 3 minutes (ROUNDS=2).
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 2
ROOT=$PWD
B=${B:-.gpu-wgrad}
SPEC=m-linear-1b-w1
VERIFY_SPECS=${VERIFY_SPECS:-v-lasp2-causal-d128-w1 v-lasp2-recompute-d64-w1 v-tied-d64-w1 v-hyb-1b-w1}
ARCH=${ARCH:-90a}

build() {
  command -v nvcc >/dev/null || { echo "wgrad-ab build: no nvcc"; exit 3; }
  eval "$(bash bench/gpu/nvlibs.sh --env)" || exit 3
  [ -f dist/cli.js ] || npm run build >/dev/null || exit 3
  local W P s v F
  W=$(mktemp -d /tmp/wgrad-build.XXXXXX)
  # The patched compiler: a copy of what `lasp compile` reads, its templates patched; the specs at the same
  # relative path, so both programs name the same spec file.
  P=$W/patched
  mkdir -p "$P/bench/gpu"
  cp -r package.json bin dist templates "$P/" && cp -r bench/gpu/specs "$P/bench/gpu/" || exit 4
  ln -s "$ROOT/node_modules" "$P/node_modules"
  (cd "$P" && git apply "$ROOT/bench/gpu/experiments/wgrad-stream.patch") || { echo "the patch does not apply"; exit 4; }
  F=(-O3 -std=c++17 --use_fast_math -lineinfo "-gencode=arch=compute_$ARCH,code=sm_$ARCH")
  mkdir -p "$W/progs/base" "$W/progs/wgrad"
  for s in $SPEC $VERIFY_SPECS; do
    node bin/lasp.js compile "bench/gpu/specs/$s.lasp" -o "$W/$s/base" >/dev/null || exit 4
    (cd "$P" && node bin/lasp.js compile "bench/gpu/specs/$s.lasp" -o "$W/$s/wgrad") >/dev/null || exit 4
    # kernels.cu and every header it includes are the same in both: one kernels.o
    for f in $(cd "$W/$s/base" && nvcc -std=c++17 -I. -Ilasp -M kernels.cu | tr -d '\\' | tr ' ' '\n' |
      grep -E '^[^/].*\.(cu|cuh|h)$' | sort -u); do
      cmp -s "$W/$s/base/$f" "$W/$s/wgrad/$f" || { echo "$s: kernels.cu's $f differs: the patch touches the kernels"; exit 4; }
    done
    echo "$s: compiling kernels.cu and both main.cu"
    (cd "$W/$s/base" && nvcc "${F[@]}" -I. -Ilasp -c kernels.cu -o ../kernels.o) &
    for v in base wgrad; do (cd "$W/$s/$v" && nvcc "${F[@]}" -I. -Ilasp -c main.cu -o "../$v.o") & done
    wait
    for v in base wgrad; do
      [ -f "$W/$s/$v.o" ] && [ -f "$W/$s/kernels.o" ] || { echo "$s $v: compile failed"; exit 4; }
      nvcc "-gencode=arch=compute_$ARCH,code=sm_$ARCH" "$W/$s/$v.o" "$W/$s/kernels.o" -lnccl -lcublas \
        -o "$W/progs/$v/$s" || { echo "$s $v: link failed"; exit 4; }
      strip "$W/progs/$v/$s"
    done
  done
  rm -rf "$B" && mkdir -p "$B"
  tar -C "$W/progs" -cf - base wgrad | xz -9e -T1 > "$B/progs.tar.xz" || exit 4
  (cd "$W/progs" && ls -l base wgrad) > "$B/contents.txt"
  cp bench/gpu/experiments/wgrad-stream.patch "$B/"
  rm -rf "$W"
  echo "built into $B ($(du -sk "$B" | cut -f1) KiB):"
  cat "$B/contents.txt"
}

if [ "${1:-}" = build ]; then
  build
  exit $?
fi

# ---- on the GPU machine -----------------------------------------------------------------------------------
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/wgrad-ab}
ROUNDS=${ROUNDS:-2}
X=${X:-/tmp/wgrad-progs}
mkdir -p "$OUT" "$X"
[ -f "$B/progs.tar.xz" ] || { echo "no $B/progs.tar.xz: build it here first (wgrad-ab.sh build) and carry $B"; exit 2; }
python3 - "$B/progs.tar.xz" "$X" <<'EOF' || exit 2
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    try:
        t.extractall(sys.argv[2], filter="data")
    except TypeError:  # a Python without extraction filters
        t.extractall(sys.argv[2])
EOF
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
# NCCL and cuBLAS of the machine; where the loader does not find them, the Python wheels' copies.
if ldd "$X/base/$SPEC" | grep -q "not found"; then
  libs=$(python3 -c "import glob, os, site; print(':'.join(sorted({os.path.dirname(p) for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/*/lib/lib*.so*')})))")
  export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
ldd "$X/base/$SPEC" | grep -E "nccl|cublas" | tee "$OUT/libs.txt"

run() {  # arm round mode program [env...]
  local arm=$1 round=$2 mode=$3 bin=$4
  shift 4
  rm -f "$OUT/nccl.id"
  env "$@" timeout "${RANK_TIMEOUT:-180}" "$bin" --rank 0 --world 1 --device 0 --nccl-id-file "$OUT/nccl.id" \
    --mode "$mode" ${EXTRA:-} >"$OUT/$arm-$round.out" 2>"$OUT/$arm-$round.err"
  local code=$?
  echo "$arm $mode round $round: exit $code"
  return $code
}

if [ "${VERIFY:-1}" != 0 ]; then
  for s in $VERIFY_SPECS; do
    # base twice: where base's own gradients differ between runs (the softmax kernels' backward adds with
    # atomics), wgrad's can only be held to that
    for v in base base2 wgrad; do
      EXTRA="--save-grads /tmp/wgrad-grads-$s-$v.safetensors" run "verify-$s-$v" 1 verify "$X/${v%2}/$s" >/dev/null
      code=$?
      echo "verify $s $v: exit $code, $(grep -h 'verify: \(ok\|FAILED\)' "$OUT/verify-$s-$v-1.err" | tail -1)" |
        tee -a "$OUT/verify.txt"
    done
    python3 - "$s" /tmp/wgrad-grads-"$s"-{base,base2,wgrad}.safetensors <<'EOF' | tee -a "$OUT/verify.txt"
import sys
spec, a, a2, b = sys.argv[1:]
try:
    from safetensors.numpy import load_file
    import numpy as np
    ga, ga2, gb = load_file(a), load_file(a2), load_file(b)
except Exception as e:  # a run failed, or no safetensors: say so
    print(f"gradients {spec}: not compared ({e})")
    sys.exit(0)
def differ(g):
    out = []
    for k in sorted(ga):
        x, y = ga[k], g.get(k)
        if y is None or x.shape != y.shape:
            out.append((float("inf"), k))
        elif not np.array_equal(x.view(np.uint8), y.view(np.uint8)):
            d = np.abs(x.astype(np.float64) - y.astype(np.float64)).max() / max(np.abs(x).max(), 1e-30)
            out.append((float(d), k))
    return sorted(out, reverse=True)
dw, d2 = differ(gb), differ(ga2)
if not dw:
    print(f"gradients {spec}: wgrad's are base's bit for bit ({len(ga)} tensors)")
else:
    worst = lambda d: ", ".join(f"{k} {r:.2e}" for r, k in d[:4])
    same = {k for _, k in dw} <= {k for _, k in d2}
    print(f"gradients {spec}: {len(dw)} of {len(ga)} tensors differ from base's (largest relative: {worst(dw)}); "
          f"base's own rerun differs in {len(d2)} ({worst(d2) or '-'}): " +
          ("wgrad within base's run-to-run spread" if same else "WGRAD DIFFERS WHERE BASE IS DETERMINISTIC"))
EOF
  done
  rm -f /tmp/wgrad-grads-*.safetensors
fi

ARMS=(base wgrad wgrad-124 wgrad-116)
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${ARMS[@]}")
  [ $((r % 2)) = 0 ] && order=(wgrad-116 wgrad-124 wgrad base)
  for arm in "${order[@]}"; do
    case $arm in
      base) run base "$r" bench "$X/base/$SPEC" ;;
      wgrad) run wgrad "$r" bench "$X/wgrad/$SPEC" ;;
      wgrad-*) run "$arm" "$r" bench "$X/wgrad/$SPEC" "LASP_WGRAD_SMS=${arm#wgrad-}" ;;
    esac
  done
done
python3 - "$OUT" "$ROUNDS" "${ARMS[@]}" <<'EOF' | tee "$OUT/summary.txt"
import json, statistics, sys
out, rounds, arms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def events(arm, r):
    ev = []
    try:
        for line in open(f"{out}/{arm}-{r}.out"):
            if line.startswith("{"):
                ev.append(json.loads(line))
    except (OSError, ValueError) as e:
        print(f"{arm}-{r}: {e}")
    return ev
med, bwd, loss = {}, {}, {}
for r in range(1, rounds + 1):
    line = []
    for arm in arms:
        ev = events(arm, r)
        st = [e for e in ev if e["event"] == "step"]
        timed = [e["ms"] for e in st if not e["warmup"]]
        med.setdefault(arm, []).extend(timed)
        bwd.setdefault(arm, []).extend(e["ms"] for e in ev if e["event"] == "phase" and e["name"] == "step.backward")
        loss.setdefault(arm, {}).update({(r, e["step"]): e["loss"] for e in st})
        line.append(f"{arm} {statistics.median(timed):.3f}" if timed else f"{arm} -")
    print(f"round {r}: " + " | ".join(line) + " (median step ms)")
base = statistics.median(med["base"]) if med.get("base") else float("nan")
print(f"\n{'arm':<10} {'median ms':>10} {'backward ms':>12} {'arm/base':>9} {'base/arm':>9}  losses")
for arm in arms:
    m = statistics.median(med[arm]) if med.get(arm) else float("nan")
    b = statistics.median(bwd[arm]) if bwd.get(arm) else float("nan")
    common = [k for k in loss.get(arm, {}) if k in loss.get("base", {})]
    same = all(loss[arm][k] == loss["base"][k] for k in common)
    verdict = "no steps" if not common else (f"= base ({len(common)} steps)" if same else
              f"DIFFER (largest {max(abs(loss[arm][k] - loss['base'][k]) for k in common):.2e})")
    print(f"{arm:<10} {m:>10.3f} {b:>12.3f} {m / base:>9.4f} {base / m:>9.4f}  {verdict}")
EOF
[ -f "$OUT/verify.txt" ] && { echo; cat "$OUT/verify.txt"; }
