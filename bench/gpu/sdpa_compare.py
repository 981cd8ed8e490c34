"""Time PyTorch's scaled_dot_product_attention (cuDNN and flash backends) on the shapes of softmax_kernels.cu.

Usage (on the GPU machine):  python3 bench/gpu/sdpa_compare.py [--tokens 16384 65536] [--no-find]

- Shapes: batch 1, 16 heads x 128, causal, bf16, the [batch][tokens][heads][d] layout of our kernels handed
  to SDPA as a transposed view ([batch][heads][tokens][d] with strides), random normal inputs.
- Backends: torch.nn.attention.sdpa_kernel(SDPBackend.CUDNN_ATTENTION) and (SDPBackend.FLASH_ATTENTION).
- Times: triton.testing.do_bench medians (CUDA events) of the forward alone (no grad) and of forward +
  backward (gradients reset between runs). FLOPs 4*N*N*H*d/2 forward, 2.5x that backward.
- Also prints whether cudnn_frontend headers exist on the machine (searched under /usr, /opt and the
  Python site-packages) and the cuDNN version PyTorch uses.
Prints machine-readable lines starting with SDPA for run_softmax.sh.
"""

import argparse
import glob
import os
import subprocess
import sys

import torch
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F


def find_frontend():
    try:
        out = subprocess.run(
            "find / -xdev -name 'cudnn_frontend*.h' 2>/dev/null | head",
            shell=True, capture_output=True, text=True, timeout=60,
        ).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        out = f"(find failed: {exc})"
    return out or "(none found)"


def bench(T, backend, B=1, H=16, D=128):
    dev = "cuda"
    gen = torch.Generator(device=dev).manual_seed(1234 + T)

    def rnd():
        return torch.randn(B, T, H, D, device=dev, generator=gen, dtype=torch.bfloat16)

    q, k, v, do = rnd(), rnd(), rnd(), rnd()
    for t in (q, k, v):
        t.requires_grad_(True)

    def fwd():
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)

    def fwdbwd():
        o = fwd()
        o.backward(do.transpose(1, 2))

    with sdpa_kernel(backend):
        with torch.no_grad():
            tf = triton.testing.do_bench(fwd, warmup=100, rep=500, return_mode="median")
        tfb = triton.testing.do_bench(fwdbwd, warmup=100, rep=800, grad_to_none=[q, k, v], return_mode="median")
    flop = 4.0 * T * T * H * D / 2
    return tf, tfb, flop / tf / 1e9, 3.5 * flop / tfb / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, nargs="*", default=[16384, 65536])
    ap.add_argument("--no-find", action="store_true", help="skip the search for cudnn_frontend headers")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}, "
          f"device {torch.cuda.get_device_name()}", flush=True)
    if not a.no_find:
        print("cudnn_frontend headers:", find_frontend().replace("\n", "; "), flush=True)
    inc = [p for p in glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia", "cudnn", "include", "*.h"))]
    print(f"cudnn headers in site-packages: {len(inc)} files" + (f" ({os.path.dirname(inc[0])})" if inc else ""), flush=True)
    for T in a.tokens:
        for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
            try:
                tf, tfb, r1, r2 = bench(T, be)
                print(f"SDPA {name} {T} {tf:.3f} {r1:.1f} {tfb:.3f} {r2:.1f}", flush=True)
            except Exception as exc:  # noqa: BLE001 - keep the other backend
                print(f"SDPAERR {name} {T}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
