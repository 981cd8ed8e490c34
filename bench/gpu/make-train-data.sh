#!/usr/bin/env bash
# The token files of the suite's train programs (make-suite.sh's t-*), into .gpu-suite/data/:
#   train.bin, eval.bin   this repository's text through `lasp tokens` (bytes, vocab 256): examples/tiny-train.lasp's
#   random-128256.bin     2M uniform random ids below 128256 in llm.c's Llama-3 format (magic 20240801, version 7,
#                         uint32): Linear-Llama3-1B's 100 training steps of 16K tokens, from seed 0
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu-suite/data
node bin/lasp.js tokens $(git ls-files 'src/*.ts' 'templates/*') -o .gpu-suite/data/train.bin --force
node bin/lasp.js tokens $(git ls-files 'test/*.ts' 'docs/*.md' '*.md') -o .gpu-suite/data/eval.bin --force
python3 - <<'PY'
import random, struct
n = 2 * 1024 * 1024
rng = random.Random(0)
header = struct.pack("<256i", 20240801, 7, n, *([0] * 253))
with open(".gpu-suite/data/random-128256.bin.tmp", "wb") as f:
    f.write(header)
    f.write(struct.pack(f"<{n}I", *(rng.randrange(128256) for _ in range(n))))
PY
mv .gpu-suite/data/random-128256.bin.tmp .gpu-suite/data/random-128256.bin
ls -l .gpu-suite/data
