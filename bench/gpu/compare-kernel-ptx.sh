#!/usr/bin/env bash
# Whether a change to templates/runtime/ leaves the compiled kernels as they were, without a GPU: compiles the
# runtime headers of REV and of the working tree into one translation unit each, with the generated programs'
# nvcc flags (build.sh), and compares them kernel by kernel: the PTX (basic-block label numbers aside, which
# follow the kernels' order in the file) and ptxas's registers, spills and shared memory.
#   bash bench/gpu/compare-kernel-ptx.sh [REV] [HEADER...]    (default: HEAD softmax_attention.cuh linear_attention.cuh)
#   ARCHS="90a 80" (the default) picks the targets; KEEP=1 keeps the work folder (printed).
# Prints one line per kernel that is not the same (and a count per target); exits 1 when a kernel present on both
# sides differs, 0 otherwise (kernels only one side has are listed, not failures: moved or new ones).
# About 4 minutes on two cores for both targets.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-HEAD}
shift || true
headers=("$@")
[ ${#headers[@]} -gt 0 ] || headers=(softmax_attention.cuh linear_attention.cuh)
work=$(mktemp -d /tmp/lasp-kernel-ptx.XXXXXX)
[ "${KEEP:-0}" = 1 ] && echo "work folder: $work" || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/before" "$work/after"
git archive "$rev" templates/runtime | tar -x -C "$work/before"
cp -r templates "$work/after/"
for h in "${headers[@]}"; do echo "#include \"$h\""; done >"$work/tu.cu"

build() {  # side arch
  local rt="$work/$1/templates/runtime" flags=(-O3 -std=c++17 --use_fast_math)
  nvcc "${flags[@]}" -lineinfo "-gencode=arch=compute_$2,code=sm_$2" -I"$rt" --resource-usage -c "$work/tu.cu" \
    -o "$work/$1.$2.o" >"$work/$1.$2.res" 2>&1
  nvcc "${flags[@]}" "-arch=compute_$2" -I"$rt" -ptx "$work/tu.cu" -o "$work/$1.$2.ptx"
}

status=0
for arch in ${ARCHS:-90a 80}; do
  build before "$arch"
  build after "$arch"
  python3 - "$work" "$arch" <<'EOF' || status=1
import re, sys
work, arch = sys.argv[1], sys.argv[2]

def ptx(side):
    kernels, name = {}, None
    for line in open(f"{work}/{side}.{arch}.ptx"):
        m = re.match(r"\s*// \.globl\s+(\S+)", line)
        if m:
            name = m.group(1)
            kernels[name] = []
        elif name:
            kernels[name].append(re.sub(r"\$L__BB\d+_", "$L__BB_", line))
    # The extern shared-memory declarations before the first kernel list every kernel's array: not per kernel
    # (nor the blank line after them, which falls to whichever kernel comes first).
    return {k: "".join(l for l in v if l.strip() and not l.startswith(".extern .shared")) for k, v in kernels.items()}

def resources(side):
    out, name = {}, None
    for line in open(f"{work}/{side}.{arch}.res"):
        m = re.search(r"(?:Compiling entry function '|Function properties for )([^' ]+)", line)
        if m:
            name = m.group(1)
            out.setdefault(name, [])
        elif name and re.search(r"registers|spill|smem|stack", line):
            out[name].append(line.strip())
    return out

a, b = ptx("before"), ptx("after")
ra, rb = resources("before"), resources("after")
differ = 0
for k in sorted(set(a) | set(b)):
    if k not in b:
        print(f"sm_{arch} only before: {k}")
    elif k not in a:
        print(f"sm_{arch} only after:  {k}")
    elif a[k] != b[k] or ra.get(k) != rb.get(k):
        differ += 1
        print(f"sm_{arch} DIFFERS:     {k}  ({'PTX' if a[k] != b[k] else 'resources'})")
same = len(set(a) & set(b)) - differ
print(f"sm_{arch}: {same} kernels the same, {differ} different, {len(set(a) - set(b))} only before, "
      f"{len(set(b) - set(a))} only after")
sys.exit(1 if differ else 0)
EOF
done
exit $status
