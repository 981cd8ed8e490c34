#!/usr/bin/env bash
# One-GPU programs built against lasp/nccl_one_rank.cuh instead of NCCL: verify, a short training run, the
# refusal of a second rank, and the 1B step beside the same program built with NCCL.
#   here:  bash bench/gpu/make-suite.sh all 1 && bash bench/gpu/make-train-data.sh && bash bench/gpu/prebuild.sh
#          (.gpu-suite: the one-GPU programs, now without NCCL), and .gpu-suite-nccl: m-linear-1b-w1 compiled by a
#          revision before the stand-in (with its kernels.o and run-prebuilt.sh)
#   there: bash bench/gpu/one-rank-check.sh      (carry .gpu-suite and .gpu-suite-nccl; results under $OUT)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lasp-one-rank}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
(cd .gpu-suite && SUITE_FILTER='-' OUT=/tmp/b1 bash run-prebuilt.sh > /dev/null 2>&1) &
(cd .gpu-suite-nccl && SUITE_FILTER='-' OUT=/tmp/b2 bash run-prebuilt.sh > /dev/null 2>&1) &
wait
echo "nccl libraries linked by the one-GPU build: $(ldd .gpu-suite/m-linear-1b-w1/prog | grep -c nccl); by the NCCL build: $(ldd .gpu-suite-nccl/m-linear-1b-w1/prog | grep -c nccl)"
(cd .gpu-suite && SUITE_FILTER='v-*' OUT=$OUT/verify RANK_TIMEOUT=100 bash run-prebuilt.sh > $OUT/verify.log 2>&1); echo "verify exit $?"
grep -E "exit +[0-9]+ " $OUT/verify.log | tail -12
(cd .gpu-suite && timeout 120 t-tiny-train-w1/prog --rank 0 --world 1 --device 0 --mode train --run-dir /tmp/tiny \
  --steps 200 > $OUT/tiny.jsonl 2> $OUT/tiny.err); echo "tiny train exit $?"
python3 -c "
import json,sys
st=[json.loads(l) for l in open('$OUT/tiny.jsonl') if '\"event\":\"step\"' in l]
print('tiny train: steps', len(st), 'loss', st[0]['loss'], '->', st[-1]['loss'])"
(cd .gpu-suite && timeout 60 v-tied-d64-w1/prog --rank 1 --world 2 --device 0 --nccl-id-file /tmp/x.id > /dev/null 2> $OUT/world2.err); echo "started as rank 1 of 2: exit $?"; head -3 $OUT/world2.err
OUT=$OUT/ab bash bench/gpu/ab-compare.sh .gpu-suite-nccl .gpu-suite 'm-linear-1b-w1' 3 2>&1 | tail -2
