#!/usr/bin/env bash
# The document walk's A/B on one GPU (README.md in this folder): checks, then the bench alternating the
# variants, from the binaries built here into .exp/<variant>/ (carry .exp). Arguments: the variants, e.g.
# `base mine`. CHECKS=0 skips the checks, ROUNDS=N the bench rounds (default 2). Logs under $OUT/<variant>...;
# each variant's and round's bench table rows (the linear ones) last.
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-/tmp/lasp-doc-ab}
variants=("$@")
[ ${#variants[@]} -gt 0 ] || { echo "usage: doc-walk-ab.sh VARIANT... (folders of .exp/, e.g. base mine)" >&2; exit 2; }
if [ "${CHECKS:-1}" = 1 ]; then
  for v in "${variants[@]}"; do
    PREBUILT=.exp/$v/documents_check OUT=$OUT/$v SKIP_BENCH=1 bash bench/gpu/run-documents.sh --quick >/dev/null 2>&1
    echo "$v documents_check --quick: exit $? ($(tail -1 "$OUT/$v/summary.txt" 2>/dev/null))"
    for d in 128 64; do for r in 0 124 131; do
      LASP_SM_RESERVE=$r .exp/$v/linear_documents_segments $d >"$OUT/$v/segments-d$d-r$r.log" 2>&1
      echo "$v walk plans d$d reserve $r: exit $? ($(tail -1 "$OUT/$v/segments-d$d-r$r.log"))"
    done; done
  done
fi
for r in $(seq 1 "${ROUNDS:-2}"); do for v in "${variants[@]}"; do
  PREBUILT=.exp/$v/documents_check OUT=$OUT/$v-bench$r SKIP_CHECKS=1 bash bench/gpu/run-documents.sh >/dev/null 2>&1
  echo "== $v round $r (exit $?)"
  grep -E '^\|' "$OUT/$v-bench$r/summary.txt" 2>/dev/null | grep -iE 'linear|kernel|docs' | head -12
done; done
