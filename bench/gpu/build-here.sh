#!/usr/bin/env bash
# Compiles AND links here (nvcc, no GPU) what the GPU machine would build, before device time is spent on a
# compile error: every standalone harness bench/gpu/*.cu (with the nvcc line and libraries its header comment
# gives), the calibrate program (templates/calibrate, rendered by src/calibrate/program.ts as `lasp calibrate`
# writes it) and every generated/*/ program through its own build.sh (in a copy: nothing is built inside the
# tree). cuDNN, NCCL and cuBLAS come from bench/gpu/nvlibs.sh (downloaded there on the first run).
#
#   bash bench/gpu/build-here.sh [what...]      what: default (the set below), all, bench, calibrate, generated,
#                                                  or target names / shell patterns (--list shows them)
#   bash bench/gpu/build-here.sh --list         the targets, and which of them `default` builds
#
# Targets: bench/<file> (one per bench/gpu/*.cu), calibrate, generated/<program> (with cuDNN: CUDNN_HOME=DIR)
# and generated/<program>:no-cudnn for NOCUDNN_PROGRAM (LASP_CUDNN=0; default tiny-hybrid). A name without
# its group is enough (tiny-hybrid = generated/tiny-hybrid and generated/tiny-hybrid:no-cudnn; softmax_kernels).
# `default` is every target but four large generated programs (LARGE below): about 12 minutes on 2 cores,
# against 18 for `all` (bench/gpu/README.md has the timings).
#
# Environment: JOBS (parallel builds, default nproc: 2 here, 16 on the GPU machine), OUT (logs, binaries,
# table; default /tmp/lasp-build-here), NVLIBS_DIR (default /tmp/nvroot), ARCH (default 90a),
# NOCUDNN_PROGRAM, CALIBRATE_DIST (a built dist/ to render calibrate with, instead of compiling src/ with tsc
# into OUT: tsc's type errors are reported but only a missing program.js fails the target).
# Output: $OUT/logs/<target>.log per target, $OUT/table.txt (also printed last): target, cuDNN (yes: built with
# it and the binary needs libcudnn; no: built without and it does not; -: not concerned), ok/FAIL, seconds, and
# a failure's first error. Exit status 1 if anything failed, 2 on usage errors, 3 without nvcc or the libraries.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/lasp-build-here}
JOBS=${JOBS:-$(nproc)}
ARCH=${ARCH:-90a}
NOCUDNN_PROGRAM=${NOCUDNN_PROGRAM:-tiny-hybrid}
# Generated programs left out of `default`: the large bench-mode ones (2 to 4 minutes of a core each), whose
# code paths the tiny programs (verify, documents, train) and bidirectional-encoder (bench mode) take too.
LARGE="linear-llama3-1b linear-llama3-1b-hybrid linear-llama3-8b-hybrid retention-1b"

# ---- the targets --------------------------------------------------------------------------------------------
all_targets() {
  local f d
  for f in bench/gpu/*.cu; do f=${f##*/}; echo "bench/${f%.cu}"; done
  echo calibrate
  for d in generated/*/; do
    d=${d%/}
    [ -f "$d/build.sh" ] || continue
    echo "$d"
    [ "${d#generated/}" = "$NOCUDNN_PROGRAM" ] && echo "$d:no-cudnn"
  done
}
is_default() {
  case "$1" in
    generated/*) local p=${1#generated/}; p=${p%:*}; [[ " $LARGE " != *" $p "* ]] ;;
    *) return 0 ;;
  esac
}
# Rough cost (seconds on one core) to start the longest first; unknown targets count as long.
cost() {
  case "$1" in
    generated/linear-llama3-8b-hybrid | generated/linear-llama3-1b-hybrid | generated/bidirectional-encoder) echo 240 ;;
    generated/*) echo 150 ;;
    calibrate) echo 150 ;;
    bench/softmax_kernels | bench/documents_check | bench/cudnn_attention_test | bench/gathered_check) echo 200 ;;
    bench/linear_kernels) echo 120 ;;
    bench/*) echo 60 ;;
    *) echo 300 ;;
  esac
}

if [ "${1:-}" = --list ]; then
  all_targets | while read -r t; do
    if is_default "$t"; then echo "$t"; else echo "$t   (all only)"; fi
  done
  exit 0
fi
case "${1:-}" in -h | --help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

selected=()
pick() {  # adds every target matching $1 (exact, a group, a bare name, or a pattern)
  local t n hit=0
  while read -r t; do
    n=${t#*/}
    case "$1" in
      all) ;;
      default) is_default "$t" || continue ;;
      bench | generated) [[ $t == "$1"/* ]] || continue ;;
      *) [[ $t == $1 || $n == $1 || ${n%:*} == $1 || $t == "$1:"* ]] || continue ;;
    esac
    [[ " ${selected[*]-} " == *" $t "* ]] || selected+=("$t")
    hit=1
  done < <(all_targets)
  [ $hit = 1 ] || { echo "build-here.sh: no target matches '$1' (--list shows them)" >&2; exit 2; }
}
[ $# -eq 0 ] && set -- default
for a in "$@"; do pick "$a"; done

# ---- the libraries ------------------------------------------------------------------------------------------
command -v nvcc >/dev/null || { echo "build-here.sh: no nvcc on PATH" >&2; exit 3; }
NV=${NVLIBS_DIR:-/tmp/nvroot}
envline=$(bash bench/gpu/nvlibs.sh --env "$NV") || { echo "build-here.sh: bench/gpu/nvlibs.sh $NV failed" >&2; exit 3; }
eval "$envline"
export CUDNN_HOME CPATH LIBRARY_PATH
NVINC=$NV/include NVLIB=$NV/lib

mkdir -p "$OUT/logs" "$OUT/status" "$OUT/bin"
rm -f "$OUT"/status/* "$OUT/table.txt"
GEN="-gencode=arch=compute_${ARCH},code=sm_${ARCH}"
safe() { local s=${1//\//_}; echo "${s//:/_}"; }

header_wants_cudnn() { sed -n '1,40p' "$1" | grep -q -- '-DLASP_WITH_CUDNN'; }
# How the binary stands towards libcudnn: yes / no.
needs_cudnn() { readelf -d "$1" 2>/dev/null | grep -q 'NEEDED.*libcudnn' && echo yes || echo no; }

# ---- one target: its log on stdout/stderr; prints "cudnn-column" into $2 ----------------------------------
build_bench() {  # bench/<name>
  local name=${1#bench/} bin=$OUT/bin/${1#bench/} flags=(-std=c++17 -O3 "$GEN") libs=()
  local src=bench/gpu/$name.cu
  case "$name" in
    adamw_check | linear_documents_segments) flags+=(-Itemplates/runtime) ;;
    linear_kernels | softmax_kernels) ;;
    softmax_support_test) flags=(-std=c++17 -O2 "$GEN") ;;
    model_ops_test) flags+=(-Itemplates/runtime -Ibench/gpu/harness) libs=(-lcublas) ;;
    gemm_algos) libs=(-lcublas -lcublasLt) ;;
    cudnn_attention_test) flags+=(-Itemplates/runtime) ;;  # + cuDNN, below
    gathered_check) flags+=(--use_fast_math -Itemplates/runtime) ;;  # + cuDNN, below
    documents_check)
      # as run-documents.sh builds it (a copy of templates/runtime as lasp/ beside kernels.h), by that script
      echo "+ BUILD_ONLY=1 bash bench/gpu/run-documents.sh"
      local work=$OUT/work  # (one prefix assignment sees the ones before it: no $OUT after OUT=)
      BUILD_ONLY=1 BUILD="$work/documents-build" OUT="$work/documents-out" ARCH=$ARCH \
        bash bench/gpu/run-documents.sh || return 1
      cp "$work/documents-build/documents_check" "$bin" || return 1
      echo "cudnn=$(needs_cudnn "$bin")"
      return 0 ;;
    *)
      # a harness this script does not know yet: the usual line, libraries from its includes
      echo "NOTE: no recipe for $src in build-here.sh; guessing from its #includes"
      flags+=(-Itemplates/runtime -Ibench/gpu/harness "-I$NVINC")
      grep -q 'cublasLt.h' "$src" && libs+=(-lcublasLt)
      grep -qE 'cublas_v2.h|blas.cuh|lm_head.cuh' "$src" && libs+=(-lcublas)
      grep -q 'nccl.h' "$src" && libs+=(-lnccl) ;;
  esac
  # with cuDNN where the header's nvcc line has -DLASP_WITH_CUDNN
  if header_wants_cudnn "$src"; then
    flags+=(-DLASP_WITH_CUDNN "-I$NVINC")
    libs+=("-L$NVLIB" -lcudnn -Xlinker -rpath -Xlinker "$NVLIB")
  fi
  echo "+ nvcc ${flags[*]} -o $bin $src ${libs[*]}"
  nvcc "${flags[@]}" -o "$bin" "$src" "${libs[@]}" || return 1
  echo "cudnn=$(needs_cudnn "$bin")"
}

build_calibrate() {
  local pkg=$OUT/work/calibrate-pkg dir=$OUT/work/calibrate dist
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ -n "${CALIBRATE_DIST:-}" ]; then
    dist=$(cd "$CALIBRATE_DIST" && pwd) || return 1
    echo "+ rendering with $dist"
  else
    # tsc into a package of our own (package.json + a link to templates/): dist/ of the tree is left alone
    rm -rf "$pkg"
    mkdir -p "$pkg"
    cp package.json "$pkg/"
    ln -s "$ROOT/templates" "$pkg/templates"
    echo "+ npx tsc -p tsconfig.build.json --outDir $pkg/dist"
    npx tsc -p tsconfig.build.json --outDir "$pkg/dist" || echo "NOTE: tsc reported errors (above); rendering with what it emitted"
    dist=$pkg/dist
  fi
  [ -f "$dist/src/calibrate/program.js" ] || { echo "error: no $dist/src/calibrate/program.js"; return 1; }
  echo "+ node: calibrateProgram() into $dir"
  node --input-type=module -e '
    import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
    import { dirname, join } from "node:path";
    const [program, out] = process.argv.slice(1);
    const { calibrateProgram } = await import(program);
    const version = JSON.parse(readFileSync("package.json", "utf8")).version;
    for (const [name, text] of calibrateProgram(version)) {
      mkdirSync(dirname(join(out, name)), { recursive: true });
      writeFileSync(join(out, name), text);
    }
    console.log([...calibrateProgram(version).keys()].join(" "));
  ' "$dist/src/calibrate/program.js" "$dir" || return 1
  echo "+ bash build.sh (CUDNN_HOME=$CUDNN_HOME)"
  (cd "$dir" && ARCH=$ARCH bash build.sh) || return 1
  cp "$dir/lasp_program" "$OUT/bin/calibrate" || return 1
  echo "cudnn=$(needs_cudnn "$OUT/bin/calibrate")"
}

build_generated() {  # generated/<name>[:no-cudnn]
  local t=$1 name=${1#generated/} variant="" dir
  case "$name" in *:no-cudnn) variant=no-cudnn; name=${name%:no-cudnn} ;; esac
  dir=$OUT/work/$(safe "$t")
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  cp -r "generated/$name" "$dir" || return 1
  rm -f "$dir/lasp_program"
  if [ "$variant" = no-cudnn ]; then
    echo "+ LASP_CUDNN=0 bash build.sh (copy of generated/$name)"
    (cd "$dir" && LASP_CUDNN=0 ARCH=$ARCH bash build.sh) || return 1
  else
    echo "+ CUDNN_HOME=$CUDNN_HOME bash build.sh (copy of generated/$name)"
    (cd "$dir" && ARCH=$ARCH bash build.sh) || return 1
  fi
  cp "$dir/lasp_program" "$OUT/bin/$(safe "$t")" || return 1
  echo "cudnn=$(needs_cudnn "$dir/lasp_program")"
}

# Runs one target, writes its status line: target|cudnn|ok/FAIL|seconds|first error
run_target() {
  local t=$1 log=$OUT/logs/$(safe "$1").log start rc want got col err=""
  start=$(date +%s)
  {
    echo "== $t ($(date -u +%H:%M:%S))"
    case "$t" in
      bench/*) build_bench "$t" ;;
      calibrate) build_calibrate ;;
      generated/*) build_generated "$t" ;;
    esac
  } >"$log" 2>&1
  rc=$?
  # the cuDNN column: what was asked, checked against what the binary links
  case "$t" in
    *:no-cudnn) want=no ;;
    generated/* | calibrate) want=yes ;;
    bench/*) header_wants_cudnn "bench/gpu/${t#bench/}.cu" && want=yes || want=- ;;
    *) want=- ;;
  esac
  got=$(sed -n 's/^cudnn=//p' "$log" | tail -1)
  col=$want
  if [ $rc = 0 ] && [ "$want" != - ] && [ "$got" != "$want" ]; then
    rc=1 err="asked cuDNN=$want, the binary links libcudnn: $got"
  fi
  [ "$want" = - ] && [ "$got" = yes ] && col="yes (unasked)"
  if [ $rc != 0 ] && [ -z "$err" ]; then
    err=$(grep -m1 -E 'error|undefined reference|cannot find|No such file|fatal' "$log" | cut -c1-160)
    [ -n "$err" ] || err=$(tail -1 "$log" | cut -c1-160)
  fi
  echo "$t|$col|$([ $rc = 0 ] && echo ok || echo FAIL)|$(($(date +%s) - start))|$err" >"$OUT/status/$(safe "$t")"
  echo "$([ $rc = 0 ] && echo "ok  " || echo "FAIL") $t ($(($(date +%s) - start)) s)$([ -n "$err" ] && echo ": $err")"
}

# ---- run them, longest first, JOBS at a time ---------------------------------------------------------------
mapfile -t order < <(for t in "${selected[@]}"; do echo "$(cost "$t") $t"; done | sort -k1,1nr -k2 | cut -d' ' -f2)
libversions() {
  printf 'cuDNN %s, NCCL %s, cuBLAS %s headers' \
    "$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{print $3}' "$NVINC/cudnn_version.h" | paste -sd.)" \
    "$(awk '/#define NCCL_(MAJOR|MINOR|PATCH) /{print $3}' "$NVINC/nccl.h" | paste -sd.)" \
    "$(awk '/#define CUBLAS_VER_(MAJOR|MINOR|PATCH) /{print $3}' "$NVINC/cublas_api.h" | paste -sd.)"
}
echo "building ${#order[@]} targets, $JOBS at a time, with $(libversions) of $NV; logs in $OUT/logs"
t0=$(date +%s)
running=0
for t in "${order[@]}"; do
  if [ $running -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
  run_target "$t" &
  running=$((running + 1))
done
wait
wall=$(($(date +%s) - t0))

fails=0
for t in "${order[@]}"; do
  grep -q '|ok|' "$OUT/status/$(safe "$t")" 2>/dev/null || fails=$((fails + 1))
done
{
  printf '%-44s %-13s %-5s %6s  %s\n' target cuDNN built s "first error"
  for t in "${order[@]}"; do
    f=$OUT/status/$(safe "$t")
    if [ -f "$f" ]; then IFS='|' read -r name col res secs err <"$f"; else name=$t col=? res=FAIL secs=? err="no status"; fi
    printf '%-44s %-13s %-5s %6s  %s\n' "$name" "$col" "$res" "$secs" "$err"
  done
  echo "${#order[@]} targets, $fails failed; wall ${wall} s with JOBS=$JOBS on $(nproc) cores ($(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/nvcc \1/p'), $(libversions))"
} | tee "$OUT/table.txt"
[ $fails = 0 ]
