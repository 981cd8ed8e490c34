#!/usr/bin/env bash
# Same-machine A/B of two prebuilt suites (prebuild.sh output, e.g. before and after a compiler change):
# builds both, then runs the programs matching PATTERN from A and from B alternately, ROUNDS times, and
# prints every program's median step time per round, the median over rounds and B's ratio to A.
# Usage (on the GPU machine, from the repository root): ab-compare.sh A_DIR B_DIR PATTERN [ROUNDS]
# (compare-builds.sh does the work and takes any number of suites.)
set -uo pipefail
exec bash "$(dirname "$0")/compare-builds.sh" "$3" "${4:-2}" "$1" "$2"
