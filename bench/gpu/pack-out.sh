#!/usr/bin/env bash
# Last step of a device call: the device tool brings back at most 8 files from $OUT (16 MiB each, two folders
# deep), so a script that leaves logs per program loses most of them. This packs everything under $OUT (or
# DIR) into one $OUT/out.tgz, leaving out files over 4 MiB (weights, gradients: MAX_MB changes it), and deletes
# what it packed; the files it left out stay, and are named. Usage: bash bench/gpu/pack-out.sh [DIR]
# Because it deletes, it works on the device's $OUT (an empty folder per call) or a folder under /tmp only.
set -uo pipefail
dir=${1:-${OUT:?set OUT or pass a folder}}
real=$(realpath -e "$dir" 2>/dev/null) || { echo "pack-out: $dir is not a folder"; exit 2; }
if [ "$real" != "$(realpath -e "${OUT:-/nonexistent}" 2>/dev/null)" ] && [[ "$real" != /tmp/?* ]]; then
  echo "pack-out: $dir is neither \$OUT nor under /tmp: not packing (it deletes what it packs)"
  exit 2
fi
max_mb=${MAX_MB:-4}
cd "$dir" || exit 2
list=$(mktemp)
find . -type f ! -name out.tgz -size -"$((max_mb * 1024 + 1))"k -printf '%P\n' | sort > "$list"
if [ ! -s "$list" ]; then
  echo "pack-out: nothing to pack under $dir"
  exit 0
fi
tar czf out.tgz -T "$list" || { echo "pack-out: tar failed, files left as they are"; exit 3; }
xargs -d '\n' rm -f < "$list"
find . -mindepth 1 -type d -empty -delete
echo "pack-out: $(wc -l < "$list") files in $dir/out.tgz ($(du -h out.tgz | cut -f1)); here: tar xzf out.tgz"
left=$(find . -type f ! -name out.tgz -printf '%P (%s bytes)\n')
[ -n "$left" ] && printf 'pack-out: left out (over %s MiB):\n%s\n' "$max_mb" "$left"
rm -f "$list"
