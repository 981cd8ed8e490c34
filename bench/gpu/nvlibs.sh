#!/usr/bin/env bash
# cuDNN, NCCL and cuBLAS headers and link libraries on a machine without them (this one: nvcc, no GPU), so that
# everything that includes cudnn.h / nccl.h / cublas_v2.h compiles AND links here before it reaches the GPU
# machine (bench/gpu/build-here.sh, bench/gpu/prebuild.sh).
#
#   bash bench/gpu/nvlibs.sh [DIR]          (default /tmp/nvroot; prints the line to export, last)
#   eval "$(bash bench/gpu/nvlibs.sh --env [DIR])"   (only the export line on stdout, messages on stderr)
#   bash bench/gpu/nvlibs.sh --force [DIR]  (again, even where DIR is complete; only a DIR this script made)
#
# Downloads the wheels nvidia-cudnn-cu13, nvidia-nccl-cu13 and nvidia-cublas with pip (the machine's index;
# about 1.2 GB), unpacks only their include/ and the four libraries the link needs (libcudnn.so.9 - the
# dispatcher that loads the engine libraries at run time -, libnccl.so.2, libcublas.so.13, libcublasLt.so.13:
# about 0.8 GB instead of 1.7) into DIR/nvidia/, and makes DIR/include and DIR/lib of links to them, with the
# unversioned libcudnn.so, libnccl.so, libcublas.so, libcublasLt.so that -lcudnn -lnccl -lcublas -lcublasLt take.
# Nothing runs here (no GPU), so the cuDNN engines are left in the wheel.
#
# Skips everything when DIR already has the headers and libraries (whoever made it). Writes only inside DIR
# (DIR/nvidia, DIR/include, DIR/lib, DIR/VERSIONS, DIR/.nvlibs marker) and its own temp folder DIR/.nvlibs-tmp,
# removed at the end; refuses a non-empty DIR that it did not make.
#   NVLIBS_PKGS="nvidia-cudnn-cu13==9.14.0.64 ..."  other versions (this index holds one of each today)
#   NVLIBS_WHEELS=dir     take (or put) the wheels there instead of the temp folder; never deleted
#   NVLIBS_ALL_LIBS=1     unpack every library of the wheels (to run something here; about 1.7 GB)
# Exit status: 0 ready, 1 pip or the index unavailable / a download or an unpack failed, 2 usage or a DIR refused.
set -euo pipefail

ENV_ONLY=0 FORCE=0 DIR=""
for a in "$@"; do
  case "$a" in
    --env) ENV_ONLY=1 ;;
    --force) FORCE=1 ;;
    -h | --help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "nvlibs.sh: unknown option $a" >&2; exit 2 ;;
    *) [ -z "$DIR" ] || { echo "nvlibs.sh: one DIR only" >&2; exit 2; }; DIR=$a ;;
  esac
done
DIR=${DIR:-${NVLIBS_DIR:-/tmp/nvroot}}
case "$DIR" in /*) ;; *) DIR=$PWD/$DIR ;; esac
DIR=${DIR%/}
[ -n "$DIR" ] && [ "$DIR" != / ] || { echo "nvlibs.sh: refusing DIR=/" >&2; exit 2; }

say() { echo "nvlibs: $*" >&2; }
read -r -a PKGS <<<"${NVLIBS_PKGS:-nvidia-cudnn-cu13 nvidia-nccl-cu13 nvidia-cublas}"
HEADERS=(cudnn.h cudnn_graph.h cudnn_version.h nccl.h cublas_v2.h cublasLt.h)
LINK_LIBS=(libcudnn.so libnccl.so libcublas.so libcublasLt.so)
# the libraries the link needs, as the wheels name them
WANT_LIBS='libcudnn\.so\.9|libnccl\.so\.2|libcublas\.so\.13|libcublasLt\.so\.13'
[ "${NVLIBS_ALL_LIBS:-0}" = 1 ] && WANT_LIBS='[^/]+'

complete() {
  local f
  for f in "${HEADERS[@]}"; do [ -f "$DIR/include/$f" ] || return 1; done
  for f in "${LINK_LIBS[@]}"; do [ -e "$DIR/lib/$f" ] || return 1; done  # -e: the link resolves
}

versions() {
  local i=$DIR/include
  printf 'cuDNN %s, NCCL %s, cuBLAS %s\n' \
    "$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{print $3}' "$i/cudnn_version.h" | paste -sd.)" \
    "$(awk '/#define NCCL_(MAJOR|MINOR|PATCH) /{print $3}' "$i/nccl.h" | paste -sd.)" \
    "$(awk '/#define CUBLAS_VER_(MAJOR|MINOR|PATCH) /{print $3}' "$i"/cublas_api.h | paste -sd.)"
}

env_line() {
  echo "export CUDNN_HOME=$DIR CPATH=$DIR/include${CPATH:+:$CPATH} LIBRARY_PATH=$DIR/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
}

finish() {
  say "$DIR: $(versions)"
  if [ "$ENV_ONLY" = 1 ]; then
    env_line
  else
    echo "headers and link libraries in $DIR; for nvcc here (build.sh of the generated programs, build-here.sh):"
    echo "  $(env_line)"
  fi
  exit 0
}

if complete && [ "$FORCE" = 0 ]; then
  say "$DIR is complete (--force to make it again)"
  finish
fi

# Only a new or empty DIR, or one this script made, is (re)written.
if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -f "$DIR/.nvlibs" ]; then
  say "$DIR exists, is not empty and was not made by nvlibs.sh (no $DIR/.nvlibs): give a new or empty DIR"
  exit 2
fi

command -v python3 >/dev/null || { say "python3 not found"; exit 1; }
if ! python3 -m pip --version >/dev/null 2>&1; then
  say "pip is not available (python3 -m pip); install it or fetch the three wheels by hand into NVLIBS_WHEELS"
  exit 1
fi

mkdir -p "$DIR"
touch "$DIR/.nvlibs"
TMP=$DIR/.nvlibs-tmp
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
WHEELS=${NVLIBS_WHEELS:-$TMP/wheels}
mkdir -p "$WHEELS"

avail=$(df -Pk "$DIR" | awk 'NR == 2 {print $4}')
need=$((3 * 1024 * 1024))  # 1.2 GB of wheels + 0.8 GB unpacked, and room
if [ "${avail:-0}" -lt "$need" ]; then
  say "only $((avail / 1024)) MiB free under $DIR; about 2.5 GiB are needed (wheels + unpacked files)"
  exit 1
fi

say "pip download ${PKGS[*]} into $WHEELS (about 1.2 GB)"
start=$(date +%s)
if ! python3 -m pip download --no-deps --only-binary=:all: -d "$WHEELS" "${PKGS[@]}" >"$TMP/pip.log" 2>&1; then
  tail -15 "$TMP/pip.log" >&2
  say "pip download failed: is the package index reachable? (python3 -m pip config list:"
  python3 -m pip config list 2>/dev/null | sed 's/^/  /' >&2 || true
  say ")"
  exit 1
fi
say "downloaded in $(($(date +%s) - start)) s: $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')"

# Unpack only include/ and the link libraries, into $TMP/unpack, then move the nvidia/ tree into DIR.
say "unpacking headers and link libraries"
python3 - "$WHEELS" "$TMP/unpack" "$WANT_LIBS" "${PKGS[@]}" <<'EOF' >&2
import os, re, sys, zipfile
wheels, dest, want_libs, pkgs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
want = re.compile(r"^nvidia/[^/]+/(include/.+|lib/(%s))$" % want_libs)
total = 0
for pkg in pkgs:
    stem = re.split(r"[=<>!~ ]", pkg, 1)[0].replace("-", "_").lower()
    found = sorted(w for w in os.listdir(wheels) if w.lower().startswith(stem + "-") and w.endswith(".whl"))
    if not found:
        sys.exit("no wheel of %s in %s" % (pkg, wheels))
    with zipfile.ZipFile(os.path.join(wheels, found[-1])) as z:
        members = [m for m in z.infolist() if want.match(m.filename) and not m.is_dir()]
        for m in members:
            z.extract(m, dest)
        size = sum(m.file_size for m in members)
        total += size
        print("  %s: %d files, %.0f MB" % (found[-1], len(members), size / 1e6))
print("  %.0f MB in all" % (total / 1e6))
EOF
rm -rf "$DIR/nvidia" "$DIR/include" "$DIR/lib"
mv "$TMP/unpack/nvidia" "$DIR/nvidia"

# DIR/include and DIR/lib: relative links into DIR/nvidia (DIR may move).
mkdir -p "$DIR/include" "$DIR/lib"
for d in "$DIR"/nvidia/*/include; do
  for f in "$d"/*; do ln -sfn "../nvidia/${d#"$DIR"/nvidia/}/${f##*/}" "$DIR/include/${f##*/}"; done
done
for d in "$DIR"/nvidia/*/lib; do
  for f in "$d"/*; do ln -sfn "../nvidia/${d#"$DIR"/nvidia/}/${f##*/}" "$DIR/lib/${f##*/}"; done
done
for l in "$DIR"/lib/*.so.*; do
  base=${l##*/}
  base=${base%%.so.*}.so
  [ -e "$DIR/lib/$base" ] || ln -sfn "${l##*/}" "$DIR/lib/$base"
done
complete || { say "unpacked, but $DIR still lacks some of: ${HEADERS[*]} ${LINK_LIBS[*]}"; exit 1; }
versions >"$DIR/VERSIONS"
(cd "$WHEELS" && ls *.whl) >>"$DIR/VERSIONS"
say "done in $(($(date +%s) - start)) s ($(du -sh "$DIR/nvidia" | cut -f1) unpacked)"
finish
