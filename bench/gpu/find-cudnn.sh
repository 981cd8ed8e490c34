# Sourced by the cuDNN benchmarks' drivers (run_cudnn.sh) on the GPU machine: finds cuDNN
# and sets INC, LIB (its include/ and lib/), LINK (the -l flag: the library may exist only as libcudnn.so.9)
# and CUDNN_LD (the LD_LIBRARY_PATH for the binary alone: cuDNN loads its engine libraries, NVRTC and
# cuBLASLt at run time, from a wheel's directories beside it; PyTorch refuses to start with another cuDNN
# there). CUDNN=dir takes dir/include and dir/lib, CUDNN=wheel PyTorch's own (nvidia.cudnn); otherwise the
# system's (/usr/include or /usr/include/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu), else the wheel.
# `find_cudnn FILE` appends what it found to FILE (and prints it); returns 3 where there is no cuDNN.
find_cudnn() {
  local env_txt=$1 wheel="" extra="" site
  INC="" LIB=""
  wheel_dir() { python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0])" 2>/dev/null; }
  if [ "${CUDNN:-}" = wheel ]; then
    wheel=$(wheel_dir)
    [ -n "$wheel" ] && INC=$wheel/include LIB=$wheel/lib
  elif [ -n "${CUDNN:-}" ]; then
    INC=$CUDNN/include LIB=$CUDNN/lib
  elif [ -f /usr/include/cudnn.h ] && ls /usr/lib/x86_64-linux-gnu/libcudnn.so* >/dev/null 2>&1; then
    INC=/usr/include LIB=/usr/lib/x86_64-linux-gnu
  elif [ -f /usr/include/x86_64-linux-gnu/cudnn.h ] && ls /usr/lib/x86_64-linux-gnu/libcudnn.so* >/dev/null 2>&1; then
    INC=/usr/include/x86_64-linux-gnu LIB=/usr/lib/x86_64-linux-gnu
  else
    wheel=$(wheel_dir)
    [ -n "$wheel" ] && INC=$wheel/include LIB=$wheel/lib
  fi
  if [ -z "$INC" ] || [ ! -f "$INC/cudnn.h" ]; then
    echo "no cuDNN found (system or nvidia.cudnn wheel)" | tee -a "$env_txt"
    return 3
  fi
  if ls "$LIB"/libcudnn.so >/dev/null 2>&1; then LINK="-lcudnn"; else LINK="-l:libcudnn.so.9"; fi
  case "$LIB" in */site-packages/nvidia/*)
    site=$(dirname "$(dirname "$LIB")")
    extra=$(ls -d "$site"/*/lib "$site"/cu13/lib 2>/dev/null | tr '\n' ':') ;;
  esac
  CUDNN_LD="$LIB:${extra}${LD_LIBRARY_PATH:-}"
  {
    echo "include: $INC"
    echo "lib: $LIB ($LINK, rpath $LIB)"
    echo "version: $(grep -hE '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$INC"/cudnn_version.h | awk '{print $3}' | paste -sd.)"
    echo "libraries: $(cd "$LIB" && ls libcudnn* | tr '\n' ' ')"
  } | tee -a "$env_txt"
}
