"""The PyTorch baseline of issue 16's performance goal: the same model as the lasp program, the fastest honest
PyTorch version, timed on one GPU.

Usage (on the GPU machine, from the repository root):
    python3 bench/gpu/torch_model.py --config CONFIG.json --tokens 16384 [--layers N] [--steps 10 --warmup 3]
        [--no-optimizer] [--max-seq] [--json OUT]
    python3 bench/gpu/torch_model.py --preset linear-llama3-1b|hybrid [--tied] ...
    python3 bench/gpu/torch_model.py --self-test [--device cpu]

CONFIG.json is the config.json lasp writes beside --save-weights (src/model/hf-config.ts); torch_reference.py
reads it (the same parser). Presets: `linear-llama3-1b` is examples/linear-llama3-1b.lasp on one GPU (16 linear
layers, hidden 2048, 16 heads x 128, ffn 8192, vocab 128256, decay none, identity feature map, output RMSNorm);
`hybrid` is examples/linear-llama3-1b-hybrid.lasp ([L, L, L, S] x 4, S = softmax with 8 kv heads, RoPE 500000).
Both with an untied LM head as issue 16's baseline (the examples tie it: --tied).

What runs (one training step = forward + backward [+ optimizer step]):
- fp32 master weights; every matrix product in bf16 with fp32 accumulation (the casts autocast would make,
  written out so that torch.compile fuses them with what is around them), the residual stream in fp32.
- Per layer two torch.compile'd functions, shared by every layer of a kind (weights are arguments, so no
  recompilation per layer): norm + fused QKV projection + feature map or RoPE, and output norm + O projection
  + residual + norm + fused gate/up projection + SwiGLU + down projection + residual. Between them the
  attention core, uncompiled: fla's chunk_simple_gla (g_gamma = log decay per head, or no gate for decay 1;
  scale 1, as lasp's kernels have no 1/sqrt(d)) for causal linear layers, two GEMMs q (k^T v) for
  bidirectional ones, F.scaled_dot_product_attention (flash / cuDNN, GQA native) for softmax layers.
- The LM head and loss: a chunked fused linear cross-entropy (chunks of --ce-chunk tokens): per chunk the bf16
  logits, the loss and the logits' gradient in one compiled pass, then dx and dW (fp32 accumulation), so the
  logits of all tokens never exist at once. The loss is the mean over positions with a target.
- torch.optim.AdamW(fused=True).
Without fla (not importable) linear attention falls back to a chunked PyTorch implementation; the output says
so in capitals and the JSON's linear_backend names it: such a run is not the baseline.

FLOPs per token follow src/model/flops.ts: 6 x the weights in matrix products (the LM head included even when
tied, the embedding lookup not) + 3 x the attention's own forward products (softmax 4 x seq_len x d per head,
linear 4 x 64 x d + 4 x d x d per head). MFU = FLOPs per token x tokens/s / the GPU's dense bf16 peak.
"""

import argparse
import csv
import ctypes
import gc
import json
import math
import os
import re
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:
    print("torch_model: PyTorch is not installed", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ beside the scripts in the work tree
from torch_reference import BadInput, LayerConfig, ModelConfig, expected_parameters, load_config  # noqa: E402

sys.dont_write_bytecode = False

KERNEL_BLOCK = 64  # src/spec/resolved.ts: the linear-attention FLOP count's block

# Dense bf16 peak (no sparsity) by device name, most specific first.
PEAKS = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
]


def peak_flops(name):
    for key, peak in PEAKS:
        if key in name:
            return peak
    return None


# ---------------------------------------------------------------------------------------------------------
# The model's configuration


def preset(name, tied):
    layers_l = LayerConfig("linear", True, [1.0] * 16, "identity", "rms")
    layers_s = LayerConfig("softmax", True, kv_heads=8, rope_theta=500000.0)
    if name == "linear-llama3-1b":
        layers = [layers_l] * 16
    elif name == "hybrid":
        layers = [layers_l, layers_l, layers_l, layers_s] * 4
    else:
        raise BadInput(f"unknown preset {name!r} (linear-llama3-1b, hybrid)")
    return ModelConfig(128256, 2048, 8192, 16, 128, "rms", 1e-5, tied, layers)


def flops_per_token(cfg, seq_len):
    """src/model/flops.ts: (weights, attention, per token)."""
    shapes = expected_parameters(cfg)
    matmul = sum(math.prod(s) for n, s in shapes.items() if n.endswith("_proj.weight") or n == "lm_head.weight")
    if cfg.tied:
        matmul += cfg.vocab * cfg.hidden
    weights = 6 * matmul
    d = cfg.head_dim
    attn = 0
    for layer in cfg.layers:
        fwd = cfg.heads * 4 * seq_len * d if layer.kind == "softmax" else cfg.heads * (4 * KERNEL_BLOCK * d + 4 * d * d)
        attn += 3 * fwd
    return weights, attn, weights + attn


# ---------------------------------------------------------------------------------------------------------
# Linear-attention cores


def load_fla():
    """chunk_simple_gla, or (None, why). Tries the installed package, then fla's source in .fla/ (README)."""
    errors = []
    for extra in (None, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".fla")):
        if extra is not None:
            if not os.path.isdir(extra):
                continue
            sys.path.insert(0, os.path.abspath(extra))
        try:
            from fla.ops.simple_gla import chunk_simple_gla

            return chunk_simple_gla, None
        except Exception as exc:  # noqa: BLE001 - any import failure means: no fla
            errors.append(f"{type(exc).__name__}: {exc}")
    return None, "; ".join(errors)


def torch_chunk_linear(q, k, v, lams, chunk=KERNEL_BLOCK):
    """Causal linear attention with per-head decay, the chunk algorithm in plain PyTorch (fp32 states): the
    fallback when fla is missing. q, k [B, N, H, d], v [B, N, H, dv]; lams: [H] float tensor."""
    B, N, H, d = q.shape
    dv = v.shape[-1]
    pad = (-N) % chunk
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
    n = q.shape[1] // chunk
    qf, kf, vf = (t.float().view(B, n, chunk, H, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v))  # [B, H, n, C, d]
    lam = lams.to(q.device, torch.float32)
    i = torch.arange(chunk, device=q.device, dtype=torch.float32)
    lg = torch.log(lam)[:, None, None]
    dist = (i[:, None] - i[None, :]).clamp(min=0)
    D = torch.exp(lg * dist) * (i[:, None] >= i[None, :])  # [H, C, C]
    intra = ((qf @ kf.transpose(-1, -2)) * D[None, :, None]) @ vf
    w_state = torch.exp(lg[:, :, 0] * (chunk - 1 - i))  # lam^(C-1-j), [H, C]
    M = (kf * w_state[None, :, None, :, None]).transpose(-1, -2) @ vf  # [B, H, n, d, dv]
    if bool((lam == 1).all()):
        P = torch.cumsum(M, dim=2) - M  # exclusive prefix
    else:
        carry = torch.exp(lg[:, 0, 0] * chunk)[None, :, None, None]
        states = [torch.zeros(B, H, d, dv, device=q.device)]
        for c in range(1, n):
            states.append(carry * states[-1] + M[:, :, c - 1])
        P = torch.stack(states, dim=2)
    w_q = torch.exp(lg[:, :, 0] * (i + 1))  # lam^(i+1)
    o = intra + (qf * w_q[None, :, None, :, None]) @ P
    o = o.permute(0, 2, 3, 1, 4).reshape(B, n * chunk, H, dv)[:, :N]
    return o.to(q.dtype)


class LinearCore:
    """Picks fla or the fallback once; `name` is what the report prints."""

    def __init__(self, want_fla=True):
        self.fla, why = load_fla() if want_fla else (None, "not asked for (--no-fla, or no GPU)")
        self.name = "fla.ops.simple_gla.chunk_simple_gla" if self.fla else f"torch chunked fallback (fla: {why})"
        self.zero_gamma = False  # decay none through g_gamma = 0 (when fla's ungated path fails the probe)

    def __call__(self, q, k, v, lams, log_lams, causal):
        if not causal:  # o = q (sum_j k_j^T v_j): decay is 1 (torch_reference checks the config)
            S = torch.einsum("bnhk,bnhv->bhkv", k, v)
            return torch.einsum("bnhk,bhkv->bnhv", q, S)
        if self.fla is not None:
            if log_lams is None and self.zero_gamma:
                log_lams = torch.zeros(q.shape[2], device=q.device, dtype=torch.float32)
            o, _ = self.fla(q, k, v, g_gamma=log_lams, scale=1.0)
            return o
        return torch_chunk_linear(q, k, v, lams)

    def probe(self, cfg, device, log):
        """Runs fla once per decay set of the model's causal linear layers (300 tokens, bf16, forward and
        backward) against torch_chunk_linear in fp32; a variant that raises or disagrees is replaced (decay
        none: by g_gamma = 0, else by the fallback), and said so."""
        sets = {tuple(l.decay) for l in cfg.layers if l.kind == "linear" and l.causal}
        for decay in sorted(sets):
            while self.fla is not None:
                gen = torch.Generator(device=device).manual_seed(7)
                shape = (1, 300, cfg.heads, cfg.head_dim)
                q, k, v, do = (0.3 * torch.randn(shape, device=device, generator=gen) for _ in range(4))
                lams = torch.tensor(decay, dtype=torch.float32, device=device)
                log_lams = None if bool((lams == 1).all()) else torch.log(lams)
                ins = [t.to(torch.bfloat16).requires_grad_(True) for t in (q, k, v)]
                ref_in = [t.detach().float().requires_grad_(True) for t in ins]
                try:
                    o = self(*ins, lams, log_lams, True)
                    o.backward(do.to(torch.bfloat16))
                    sync(device)
                except Exception as exc:  # noqa: BLE001 - any failure: use what works
                    if log_lams is None and not self.zero_gamma:
                        log(f"fla without a gate failed ({type(exc).__name__}: {exc}); decay none runs as g_gamma = 0")
                        self.zero_gamma = True
                        continue
                    self.fla, self.name = None, f"torch chunked fallback (fla failed: {type(exc).__name__}: {exc})"
                    break
                r = torch_chunk_linear(*ref_in, lams)
                r.backward(do)
                errs = [
                    ((a.float() - b).abs().max() / b.abs().max()).item()
                    for a, b in zip([o] + [t.grad for t in ins], [r] + [t.grad for t in ref_in])
                ]
                log(f"fla probe, decay {sorted(set(decay))}: rel err o/dq/dk/dv " + " ".join(f"{e:.1e}" for e in errs))
                if max(errs) > 3e-2:
                    self.fla = None
                    self.name = f"torch chunked fallback (fla disagrees with the model's math: rel err {max(errs):.1e})"
                break


NOTES = []  # choices made at run time that the report must show
_GQA_NATIVE = [True]


def sdpa(q, k, v, causal, backend):
    """q [B, N, H, d], k, v [B, N, Hkv, d] -> o [B, N, H, d]. GQA natively (enable_gqa) where the backend takes
    it, else with the kv heads repeated (and a note)."""
    group = q.shape[2] // k.shape[2]
    if group > 1 and not _GQA_NATIVE[0]:
        k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    gqa = k.shape[2] != q.shape[2]

    def call():
        return F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal, enable_gqa=gqa)

    try:
        if backend is not None:
            from torch.nn.attention import sdpa_kernel

            with sdpa_kernel([backend]):
                o = call()
        else:
            o = call()
    except (RuntimeError, TypeError) as exc:
        if not gqa or is_oom(exc):
            raise
        _GQA_NATIVE[0] = False
        NOTES.append(f"SDPA refused enable_gqa ({type(exc).__name__}: {str(exc)[:200]}); kv heads are repeated")
        return sdpa(q, k, v, causal, backend)
    return o.transpose(1, 2)


# ---------------------------------------------------------------------------------------------------------
# The compiled pieces (plain functions: every layer of a kind shares one graph)


def norm(x, w, b, kind, eps):
    xf = x.float()
    if kind == "rms":
        return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w
    return F.layer_norm(xf, (xf.shape[-1],), w, b, eps)


def phi(x, kind):
    if kind == "elu_plus_one":
        return F.elu(x) + 1.0
    if kind == "relu":
        return F.relu(x)
    if kind == "silu":
        return F.silu(x)
    return x


def pre_block(x, nw, nb, wq, wk, wv, cos, sin, kind, eps, heads, kv_heads, d, fmap, softmax, cdt):
    """x [B, N, hidden] fp32 -> q [B, N, H, d], k, v [B, N, Hkv, d] in cdt."""
    B, N, _ = x.shape
    h = norm(x, nw, nb, kind, eps).to(cdt)
    qkv = h @ torch.cat([wq, wk, wv], 0).to(cdt).t()
    q, k, v = qkv.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
    q, k, v = q.reshape(B, N, heads, d), k.reshape(B, N, kv_heads, d), v.reshape(B, N, kv_heads, d)
    if softmax:
        half = d // 2
        c, s = cos[None, :, None, :], sin[None, :, None, :]

        def rot(t):
            t = t.float()
            t1, t2 = t[..., :half], t[..., half:]
            return torch.cat((t1 * c - t2 * s, t2 * c + t1 * s), dim=-1).to(cdt)

        q, k = rot(q), rot(k)
    elif fmap != "identity":
        q, k = phi(q.float(), fmap).to(cdt), phi(k.float(), fmap).to(cdt)
    return q.contiguous(), k.contiguous(), v.contiguous()


def post_block(x, o, wo, nw, nb, wg, wu, wd, kind, eps, out_norm, cdt):
    """x (residual, fp32), o [B, N, H, d] -> the layer's output residual (fp32)."""
    B, N, _ = x.shape
    if out_norm:
        of = o.float()
        o = of * torch.rsqrt(of.pow(2).mean(-1, keepdim=True) + eps)
    x = x + (o.reshape(B, N, -1).to(cdt) @ wo.to(cdt).t()).float()
    h = norm(x, nw, nb, kind, eps).to(cdt)
    gu = h @ torch.cat([wg, wu], 0).to(cdt).t()
    g, u = gu.chunk(2, dim=-1)
    a = (F.silu(g.float()) * u.float()).to(cdt)
    return x + (a @ wd.to(cdt).t()).float()


def final_norm(x, w, b, kind, eps, cdt):
    return norm(x, w, b, kind, eps).to(cdt)


def ce_chunk(logits, labels, inv_count):
    """(sum of the chunk's losses, d loss / d logits in the logits' dtype); labels -1 = no target."""
    z = logits.float()
    lse = torch.logsumexp(z, dim=-1)
    valid = labels >= 0
    tgt = labels.clamp(min=0)
    zt = z.gather(1, tgt[:, None])[:, 0]
    loss = torch.where(valid, lse - zt, torch.zeros_like(lse)).sum()
    onehot = torch.arange(z.shape[-1], device=z.device)[None, :] == tgt[:, None]
    scale = torch.where(valid, inv_count, torch.zeros_like(lse))[:, None]
    grad = (torch.exp(z - lse[:, None]) - onehot.float()) * scale
    return loss, grad.to(logits.dtype)


class Kernels:
    """The compiled (or not) functions and the choices made once per run. pre_block and post_block are
    compiled once per layer signature, as closures over its constants (head counts, feature map, norm, eps):
    the constants are baked into the graph, and layers of one kind share it (their weights are arguments)."""

    def __init__(self, compile_mode, linear, sdpa_backend, cdt):
        self.wrap = (lambda f: torch.compile(f, mode=compile_mode)) if compile_mode else (lambda f: f)
        self.ce, self.final_norm = self.wrap(ce_chunk), self.wrap(final_norm)
        self.linear, self.sdpa_backend, self.cdt = linear, sdpa_backend, cdt
        self.addmm_out_dtype = None  # probed at first use: fp32 dW straight from bf16 operands
        self.compiled = {}

    def pre(self, cfg, layer):
        key = ("pre", cfg.norm, cfg.eps, cfg.heads, cfg.kv_heads(layer), cfg.head_dim, layer.kind, layer.feature_map)
        if key not in self.compiled:
            kind, eps, heads, kv, d, fmap = cfg.norm, cfg.eps, cfg.heads, cfg.kv_heads(layer), cfg.head_dim, layer.feature_map
            softmax, cdt = layer.kind == "softmax", self.cdt

            def pre(x, nw, nb, wq, wk, wv, cos, sin):
                return pre_block(x, nw, nb, wq, wk, wv, cos, sin, kind, eps, heads, kv, d, fmap, softmax, cdt)

            self.compiled[key] = self.wrap(pre)
        return self.compiled[key]

    def post(self, cfg, layer):
        out_norm = layer.kind == "linear" and layer.output_norm == "rms"
        key = ("post", cfg.norm, cfg.eps, out_norm)
        if key not in self.compiled:
            kind, eps, cdt = cfg.norm, cfg.eps, self.cdt

            def post(x, o, wo, nw, nb, wg, wu, wd):
                return post_block(x, o, wo, nw, nb, wg, wu, wd, kind, eps, out_norm, cdt)

            self.compiled[key] = self.wrap(post)
        return self.compiled[key]


def accumulate_dw(kernels, dw, g, x):
    """dw (fp32) + g^T x with bf16 operands: one GEMM into fp32 where this torch has addmm's out_dtype (probed
    at the first call), else a bf16 product added in fp32 (what autocast's bf16 dW would give)."""
    if g.dtype == torch.float32 or kernels.addmm_out_dtype is False:
        return dw.add_((g.t() @ x).float())
    try:
        out = torch.addmm(dw, g.t(), x, out_dtype=torch.float32)
        kernels.addmm_out_dtype = True
        return out
    except (TypeError, RuntimeError, NotImplementedError):
        kernels.addmm_out_dtype = False
        return dw.add_((g.t() @ x).float())


class LinearCrossEntropy(torch.autograd.Function):
    """mean CE(x W^T, labels) over labels >= 0, chunked over tokens; the gradient is formed in the forward
    (a loss is always a graph's end, so nothing is lost) and scaled by the incoming one in the backward."""

    @staticmethod
    def forward(ctx, x, weight, labels, kernels, chunk):
        cdt = kernels.cdt
        w = weight.to(cdt)
        T = x.shape[0]
        count = (labels >= 0).sum()
        inv = 1.0 / count.clamp(min=1).float()
        loss = torch.zeros((), device=x.device, dtype=torch.float32)
        need = ctx.needs_input_grad
        dx = torch.empty_like(x) if need[0] else None
        dw = torch.zeros(weight.shape, device=x.device, dtype=torch.float32) if need[1] else None
        for s in range(0, T, chunk):
            xc = x[s : s + chunk].to(cdt)
            l, g = kernels.ce(xc @ w.t(), labels[s : s + chunk], inv)
            loss += l
            if dx is not None:
                dx[s : s + chunk] = (g @ w).to(dx.dtype)
            if dw is not None:
                dw = accumulate_dw(kernels, dw, g, xc)
        ctx.save_for_backward(dx, dw)
        return loss * inv

    @staticmethod
    def backward(ctx, grad):
        dx, dw = ctx.saved_tensors  # scaled in place: the backward of a loss runs once
        return (
            dx.mul_(grad.to(dx.dtype)) if dx is not None else None,
            dw.mul_(grad) if dw is not None else None,
            None,
            None,
            None,
        )


# ---------------------------------------------------------------------------------------------------------
# Modules with Hugging Face's names (so weights line up with lasp's --save-weights)


class Norm(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(cfg.hidden))
        if cfg.norm == "layer":
            self.bias = nn.Parameter(torch.zeros(cfg.hidden))
        else:
            self.bias = None


def linear(n_out, n_in, std):
    m = nn.Linear(n_in, n_out, bias=False)
    nn.init.normal_(m.weight, std=std)
    return m


class Attention(nn.Module):
    def __init__(self, cfg, kv_heads, std, out_std):
        super().__init__()
        w, kv = cfg.heads * cfg.head_dim, kv_heads * cfg.head_dim
        self.q_proj, self.k_proj = linear(w, cfg.hidden, std), linear(kv, cfg.hidden, std)
        self.v_proj, self.o_proj = linear(kv, cfg.hidden, std), linear(cfg.hidden, w, out_std)


class MLP(nn.Module):
    def __init__(self, cfg, std, out_std):
        super().__init__()
        self.gate_proj, self.up_proj = linear(cfg.ffn, cfg.hidden, std), linear(cfg.ffn, cfg.hidden, std)
        self.down_proj = linear(cfg.hidden, cfg.ffn, out_std)


class Layer(nn.Module):
    def __init__(self, cfg, layer, std, out_std):
        super().__init__()
        self.spec = layer
        self.input_layernorm = Norm(cfg)
        self.self_attn = Attention(cfg, cfg.kv_heads(layer), std, out_std)
        self.post_attention_layernorm = Norm(cfg)
        self.mlp = MLP(cfg, std, out_std)
        if layer.kind == "linear":
            lams = torch.tensor(layer.decay, dtype=torch.float32)
            self.register_buffer("lams", lams, persistent=False)
            self.register_buffer("log_lams", torch.log(lams), persistent=False)
            self.no_decay = bool((lams == 1).all())

    def forward(self, x, cfg, k, rope):
        L, a, m = self.spec, self.self_attn, self.mlp
        n1, n2 = self.input_layernorm, self.post_attention_layernorm
        softmax = L.kind == "softmax"
        cos, sin = rope.get(L.rope_theta) if softmax else (None, None)
        q, kk, v = k.pre(cfg, L)(x, n1.weight, n1.bias, a.q_proj.weight, a.k_proj.weight, a.v_proj.weight, cos, sin)
        if softmax:
            o = sdpa(q, kk, v, L.causal, k.sdpa_backend)
        else:
            o = k.linear(q, kk, v, self.lams, None if self.no_decay else self.log_lams, L.causal)
        return k.post(cfg, L)(x, o, a.o_proj.weight, n2.weight, n2.bias, m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight)


class Rope:
    """cos and sin [N, d/2] per RoPE base, formed in float64 then rounded to fp32, cached per length."""

    def __init__(self, d, device):
        self.d, self.device, self.n, self.tables = d, device, 0, {}

    def set_length(self, n):
        if n != self.n:
            self.n, self.tables = n, {}

    def get(self, theta):
        if theta not in self.tables:
            e = torch.arange(self.d // 2, dtype=torch.float64)
            inv = torch.pow(torch.tensor(float(theta), dtype=torch.float64), -2.0 * e / self.d)
            ang = torch.arange(self.n, dtype=torch.float64)[:, None] * inv[None, :]
            self.tables[theta] = (ang.cos().float().to(self.device), ang.sin().float().to(self.device))
        return self.tables[theta]


class Inner(nn.Module):
    def __init__(self, cfg, std, out_std):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        nn.init.normal_(self.embed_tokens.weight, std=std)
        self.layers = nn.ModuleList(Layer(cfg, layer, std, out_std) for layer in cfg.layers)
        self.norm = Norm(cfg)


class Model(nn.Module):
    def __init__(self, cfg, kernels, device):
        super().__init__()
        std = 0.02
        out_std = std / math.sqrt(2 * len(cfg.layers))
        self.cfg, self.kernels = cfg, kernels
        self.model = Inner(cfg, std, out_std)
        self.lm_head = None if cfg.tied else linear(cfg.vocab, cfg.hidden, std)
        self.rope = Rope(cfg.head_dim, device)
        self.ce_chunk = 4096

    def forward(self, ids, labels):
        cfg, k = self.cfg, self.kernels
        B, N = ids.shape
        self.rope.set_length(N)
        x = F.embedding(ids, self.model.embed_tokens.weight)  # fp32 residual stream
        for layer in self.model.layers:
            x = layer(x, cfg, k, self.rope)
        n = self.model.norm
        h = k.final_norm(x, n.weight, n.bias, cfg.norm, cfg.eps, k.cdt).reshape(B * N, cfg.hidden)
        head = self.model.embed_tokens.weight if cfg.tied else self.lm_head.weight
        return LinearCrossEntropy.apply(h, head, labels.reshape(-1), k, self.ce_chunk)


def next_token_batch(cfg, batch, seq_len, device, gen):
    ids = torch.randint(0, cfg.vocab, (batch, seq_len), device=device, generator=gen)
    labels = torch.cat([ids[:, 1:], torch.full((batch, 1), -1, device=device, dtype=ids.dtype)], dim=1)
    return ids, labels


# ---------------------------------------------------------------------------------------------------------
# Timing


def is_oom(exc):
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def free_memory(model, opt=None):
    model.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Timer:
    """CUDA events on the GPU; wall-clock after a synchronisation elsewhere (the CPU smoke run)."""

    def __init__(self, device):
        self.cuda = device.startswith("cuda")
        self.e = torch.cuda.Event(enable_timing=True) if self.cuda else None
        self.t = 0.0

    def record(self):
        if self.cuda:
            self.e.record()
        else:
            self.t = time.perf_counter()

    def ms_to(self, other):
        return self.e.elapsed_time(other.e) if self.cuda else (other.t - self.t) * 1e3


def fwd_bwd(model, ids, labels):
    loss = model(ids, labels)
    loss.backward()
    return loss


def energy_counter(device):
    """A function giving this GPU's energy counter in millijoules (NVML's total energy, as lasp's programs read it:
    templates/runtime/energy.cuh), or None where NVML or the counter is missing."""
    if not device.startswith("cuda"):
        return None
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return None
        props = torch.cuda.get_device_properties(device)
        handle = ctypes.c_void_p()
        bus = getattr(props, "pci_bus_id", None)
        if bus is not None:
            name = f"{getattr(props, 'pci_domain_id', 0):08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
            found = nvml.nvmlDeviceGetHandleByPciBusId_v2(name.encode(), ctypes.byref(handle))
        else:  # an older torch: the index, right where CUDA_VISIBLE_DEVICES does not renumber
            found = nvml.nvmlDeviceGetHandleByIndex_v2(torch.cuda.current_device(), ctypes.byref(handle))
        mj = ctypes.c_ulonglong()
        if found != 0 or nvml.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(mj)) != 0:
            return None
    except OSError:
        return None

    def read():
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(mj))
        return mj.value

    return read


def time_steps(model, opt, ids, labels, steps, warmup, device, clip=0.0):
    """Median ms of forward+backward, of the optimizer step (when opt; with clip > 0, the gradients clipped to
    that global norm first, inside the optimizer's time, as lasp's train step does) and of the clipping alone,
    peak bytes; the first loss; joules a timed step from the GPU's energy counter (None without it)."""
    cuda = device.startswith("cuda")
    fb, os_, cs, first = [], [], [], None
    counter = energy_counter(device)
    mj0 = None
    for i in range(warmup + steps):
        model.zero_grad(set_to_none=True)
        e0, e1, ec, e2 = Timer(device), Timer(device), Timer(device), Timer(device)
        if i == warmup and cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            mj0 = counter() if counter else None
        sync(device)
        e0.record()
        loss = fwd_bwd(model, ids, labels)
        sync(device)
        e1.record()
        if opt is not None and clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=True)
        ec.record()
        if opt is not None:
            opt.step()
        sync(device)
        e2.record()
        sync(device)
        if first is None:
            first = loss.item()
        if i >= warmup:
            fb.append(e0.ms_to(e1))
            os_.append(e1.ms_to(e2))
            cs.append(e1.ms_to(ec))
    joules = (counter() - mj0) * 1e-3 / steps if mj0 is not None and steps > 0 else None
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    med = lambda v: statistics.median(v) if opt is not None else None  # noqa: E731
    return statistics.median(fb), med(os_), (med(cs) if clip > 0 else None), peak, first, joules


KERNEL_GROUPS = [
    ("GEMMs (cuBLAS)", re.compile(r"gemm|nvjet|cutlass|xmma|sm90_", re.I)),
    ("optimizer and clipping", re.compile(r"adam|multi_tensor|foreach|norm_kernel|reduce_kernel", re.I)),
    ("torch.compile's kernels (triton_*)", re.compile(r"^triton_")),
    ("flash-linear-attention, SDPA", re.compile(r"chunk|fla|flash|attn|attention", re.I)),
]


def kernel_profile(model, opt, ids, labels, clip, trace_path=None):
    """One more step under torch.profiler: every CUDA kernel's total time, by name and by group (KERNEL_GROUPS,
    first match; the rest "other"), to set beside lasp's bench/gpu/profile-step.sh table. With `trace_path`,
    every kernel launch as it ran, in kernel_trace.cpp's CSV (start_ns, end_ns, stream, kernel), so the same
    tools read both programs' steps."""
    from torch.profiler import ProfilerActivity, profile

    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fwd_bwd(model, ids, labels)
        if opt is not None:
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip, foreach=True)
            opt.step()
        torch.cuda.synchronize()
    if trace_path:
        launches = [e for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
        with open(trace_path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["start_ns", "end_ns", "stream", "kernel"])
            for e in sorted(launches, key=lambda e: e.time_range.start):
                out.writerow([int(e.time_range.start * 1000), int(e.time_range.end * 1000), e.device_index, e.name])
    kernels = {}
    for e in prof.key_averages():
        if getattr(e, "device_type", None) != torch.autograd.DeviceType.CUDA:
            continue
        us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
        if us > 0:
            n, t = kernels.get(e.key, (0, 0.0))
            kernels[e.key] = (n + e.count, t + us)
    groups = {}
    for name, (_, us) in kernels.items():
        group = next((g for g, pattern in KERNEL_GROUPS if pattern.search(name)), "other")
        groups[group] = groups.get(group, 0.0) + us / 1000
    top = sorted(kernels.items(), key=lambda kv: -kv[1][1])[:25]
    return {
        "total_ms": sum(t for _, t in kernels.values()) / 1000,
        "groups_ms": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
        "top": [{"kernel": k[:120], "launches": n, "ms": t / 1000} for k, (n, t) in top],
    }


def fits(model, opt, cfg, seq_len, device, gen):
    """Whether forward+backward at batch 1 x seq_len runs (the optimizer's state already allocated)."""
    try:
        ids, labels = next_token_batch(cfg, 1, seq_len, device, gen)
        model.zero_grad(set_to_none=True)
        fwd_bwd(model, ids, labels)
        sync(device)
        ok = True
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        if not is_oom(exc):
            raise
        ok = False
    ids = labels = None
    free_memory(model, opt)
    return ok


def max_seq_len(model, opt, cfg, start, device, gen, log):
    """Doubles from `start` until a length fails, then bisects in steps of 1024; (longest, tried)."""
    tried = []
    lo, hi = 0, None
    n = start
    while hi is None:
        ok = fits(model, opt, cfg, n, device, gen)
        tried.append((n, ok))
        log(f"  max-seq: {n} tokens {'fits' if ok else 'does not fit'}")
        if ok:
            lo, n = n, n * 2
        else:
            hi = n
        if n > (1 << 24):
            break
    if hi is None:
        return lo, tried
    while hi - lo > 1024:
        mid = (lo + hi) // 2 // 1024 * 1024
        if mid <= lo:
            break
        ok = fits(model, opt, cfg, mid, device, gen)
        tried.append((mid, ok))
        log(f"  max-seq: {mid} tokens {'fits' if ok else 'does not fit'}")
        lo, hi = (mid, hi) if ok else (lo, mid)
    return lo, tried


# ---------------------------------------------------------------------------------------------------------
# Self-test: the model computes what torch_reference.py computes


def self_test(device, use_fla, compile_mode):
    """The model against torch_reference.py (float64) on its two tiny configurations: in fp32 with the torch
    fallback (tight), and on a GPU also in bf16 with fla and SDPA (loose: bf16 rounding), head_dim 32 and
    160 tokens there (fla's kernels want d >= 16)."""
    import torch_reference as ref

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    on_gpu = device.startswith("cuda")
    variants = [("fp32", torch.float32, False)] + ([("bf16", torch.bfloat16, use_fla)] if on_gpu else [])
    failures = []
    for tag, cdt, want_fla in variants:
        for name, cfg_json, batch, seq, masked in ref.self_test_configs(grouped=False):
            torch.manual_seed(0)
            if on_gpu:
                cfg_json, seq = dict(cfg_json, head_dim=32), 160
            cfg = ref.parse_config(cfg_json, name)
            linear = LinearCore(want_fla=want_fla)
            kernels = Kernels(compile_mode, linear, None, cdt)
            model = Model(cfg, kernels, device).to(device)
            model.ce_chunk = 7 if seq < 100 else 70  # several chunks, the last one partial
            with torch.no_grad():  # norm weights away from 1, biases away from 0: a misplaced one shows
                for n, p in model.named_parameters():
                    if n.endswith("norm.weight") or n.endswith("bias"):
                        p.add_(0.1 * torch.randn_like(p))
                    else:
                        p.mul_(0.3 / 0.02)  # order-one activations, as in torch_reference's self-test
            gen = torch.Generator(device=device).manual_seed(1)
            ids, labels = next_token_batch(cfg, batch, seq, device, gen)
            if masked:
                labels = torch.where(torch.rand(batch, seq, device=device, generator=gen) < 0.3, ids, -1)
                labels[:, 0] = ids[:, 0]
            loss = fwd_bwd(model, ids, labels)
            ours = {n: p.grad for n, p in model.named_parameters()}
            weights = {n: p.detach().float() for n, p in model.named_parameters()}
            if set(weights) != set(expected_parameters(cfg)):
                failures.append(f"{name}: parameter names differ from parameters.ts's")
                continue
            ref_loss, ref_grads = ref.reference_gradients(cfg, weights, ids, labels, device, torch.float64)
            rel_tol, cos_tol = (1e-1, 0.99) if cdt == torch.bfloat16 else (1e-4, 0.999999)
            loss_rel = abs(loss.item() - ref_loss) / abs(ref_loss)
            errs = {n: ref.compare_tensor(ours[n], ref_grads[n]) for n in ours}
            worst = max(errs, key=lambda n: errs[n][0])
            cos_min = min(e[1] for e in errs.values())
            ok = loss_rel <= rel_tol and errs[worst][0] <= rel_tol and cos_min >= cos_tol
            print(
                f"{name} [{tag}, {linear.name}, {compile_mode or 'eager'}]: loss rel err {loss_rel:.1e},"
                f" worst gradient rel err {errs[worst][0]:.1e} ({worst}), least cos {cos_min:.6f}:"
                f" {'ok' if ok else 'WRONG'}"
            )
            if not ok:
                failures.append(f"{name} {tag}")
    # the fallback chunk algorithm against the dense form, with a length that is not a multiple of the block
    q, k, v = (torch.randn(2, 150, 3, 8, device=device, dtype=torch.float64) * 0.3 for _ in range(3))
    lams = torch.tensor([1.0, 0.9, 0.5])
    layer = ref.LayerConfig("linear", True, lams.tolist())
    dense = ref.linear_attention(q, k, v, layer, ref.DecayMasks(150, torch.float64, device))
    err = ((torch_chunk_linear(q.float(), k.float(), v.float(), lams) - dense).abs().max() / dense.abs().max()).item()
    print(f"torch chunked fallback vs dense, decay {lams.tolist()}, 150 tokens: rel err {err:.1e}")
    if err > 1e-5:
        failures.append("chunked fallback")
    print("SELF-TEST PASSED" if not failures else f"SELF-TEST FAILED: {', '.join(failures)}")
    return 0 if not failures else 1


# ---------------------------------------------------------------------------------------------------------


def build(args, device):
    if args.config:
        cfg = load_config(args.config)
        source = args.config
        if args.tied or args.untied:
            cfg.tied = args.tied
    else:
        cfg = preset(args.preset, args.tied)
        source = f"preset {args.preset}"
    if args.layers:
        if args.layers > len(cfg.layers):
            raise BadInput(f"--layers {args.layers}: the model has {len(cfg.layers)}")
        cfg.layers = cfg.layers[: args.layers]
    return cfg, source


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--config", help="config.json written by lasp (--save-weights)")
    src.add_argument("--preset", choices=["linear-llama3-1b", "hybrid"])
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tied", action="store_true", help="tie the LM head to the embedding (presets: untied)")
    tie.add_argument("--untied", action="store_true", help="an LM head of its own even where the config ties it")
    ap.add_argument("--tokens", type=int, default=16384, help="tokens per step (batch x seq_len)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--layers", type=int, default=0, help="only the first N layers")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-optimizer", action="store_true", help="time forward+backward only, no AdamW state")
    ap.add_argument(
        "--kernel-profile",
        action="store_true",
        help="after the timed steps, one step under torch.profiler: kernel time by name and group",
    )
    ap.add_argument(
        "--kernel-trace",
        metavar="CSV",
        help="with --kernel-profile: that step's kernel launches as they ran (kernel_trace.cpp's CSV format)",
    )
    ap.add_argument(
        "--clip-grad-norm",
        type=float,
        default=0.0,
        metavar="MAX",
        help="clip the gradients to this global norm before AdamW, timed with it (lasp's grad_clip; 0: off)",
    )
    ap.add_argument("--max-seq", action="store_true", help="also find the longest seq_len whose fwd+bwd fits")
    ap.add_argument(
        "--memory-gib",
        type=float,
        default=None,
        help="cap this process's GPU memory (an 80 GB GPU's share on a larger one: --memory-gib 79.2)",
    )
    ap.add_argument("--ce-chunk", type=int, default=4096, help="tokens per chunk of the LM head + loss")
    ap.add_argument(
        "--compile-mode", default=None, help="torch.compile mode, or 'none' for eager (default: default; self-test: none)"
    )
    ap.add_argument("--sdpa-backend", default="auto", choices=["auto", "flash", "cudnn", "efficient"])
    ap.add_argument("--no-fla", action="store_true", help="use the torch chunked fallback (to measure it)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--device", default=None)
    ap.add_argument("--self-test", action="store_true", help="check the model against torch_reference.py")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            if dev.startswith("cuda") and not torch.cuda.is_available():
                raise BadInput(f"--device {dev}: CUDA is not available in this PyTorch")
            return self_test(dev, not args.no_fla, None if args.compile_mode in (None, "none") else args.compile_mode)
        if args.device is None and not torch.cuda.is_available():
            raise BadInput("no CUDA device: the benchmark needs a GPU (--device cpu: a smoke run of the code path)")
        if args.device == "cpu" and args.max_seq:
            raise BadInput("--max-seq needs a GPU")
        if not args.config and not args.preset:
            raise BadInput("give --config CONFIG.json or --preset linear-llama3-1b|hybrid")
        if args.tokens % args.batch:
            raise BadInput(f"--tokens {args.tokens} is not a multiple of --batch {args.batch}")
        if args.kernel_trace and not args.kernel_profile:
            raise BadInput("--kernel-trace writes the --kernel-profile step's launches: add --kernel-profile")
        return run_bench(args)
    except BadInput as exc:
        print(f"torch_model: {exc}", file=sys.stderr)
        return 2


def run_bench(args):
    device = args.device or "cuda"
    cuda = device.startswith("cuda")
    cfg, source = build(args, device)
    seq_len = args.tokens // args.batch
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    if args.memory_gib is not None and cuda:
        total = torch.cuda.get_device_properties(0).total_memory
        if args.memory_gib * 2**30 >= total:
            NOTES.append(f"--memory-gib {args.memory_gib}: the GPU has {total / 2**30:.1f} GiB, so no cap")
        else:
            torch.cuda.set_per_process_memory_fraction(args.memory_gib * 2**30 / total)
            NOTES.append(f"GPU memory capped at {args.memory_gib} GiB of {total / 2**30:.1f} GiB")
    import torch._dynamo as dynamo  # binds `dynamo` only: `import torch._dynamo` would make torch local here

    dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
    backends = {"auto": None}
    if args.sdpa_backend != "auto":
        from torch.nn.attention import SDPBackend

        backends[args.sdpa_backend] = {
            "flash": SDPBackend.FLASH_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION,
        }[args.sdpa_backend]
    has_linear = any(l.kind == "linear" for l in cfg.layers)
    linear = LinearCore(want_fla=cuda and not args.no_fla)
    compile_mode = None if args.compile_mode == "none" else (args.compile_mode or "default")
    kernels = Kernels(compile_mode, linear, backends[args.sdpa_backend], torch.bfloat16)
    if has_linear:
        linear.probe(cfg, device, print)
    model = Model(cfg, kernels, device).to(device)
    model.ce_chunk = args.ce_chunk
    opt = None if args.no_optimizer else torch.optim.AdamW(model.parameters(), lr=1e-5, fused=cuda)
    name = torch.cuda.get_device_name() if cuda else "cpu (smoke run: timings mean nothing)"
    peak = peak_flops(name)
    w_flops, a_flops, per_token = flops_per_token(cfg, seq_len)
    n_params = sum(p.numel() for p in model.parameters())
    kinds = "".join("L" if l.kind == "linear" else "S" for l in cfg.layers)
    print(f"device {name}; torch {torch.__version__}; bf16 peak {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s")
    print(
        f"model ({source}): {len(cfg.layers)} layers {kinds}, hidden {cfg.hidden}, {cfg.heads} heads x {cfg.head_dim},"
        f" ffn {cfg.ffn}, vocab {cfg.vocab}, {'tied' if cfg.tied else 'untied'} head, {n_params / 1e9:.3f} B parameters"
    )
    print(f"step: batch {args.batch} x seq_len {seq_len} = {args.tokens} tokens; FLOPs/token {per_token / 1e9:.3f} G")
    if has_linear:
        if linear.fla is None:
            print(f"WARNING: FLA IS NOT AVAILABLE, LINEAR ATTENTION RUNS THE TORCH CHUNKED FALLBACK: {linear.name}")
            print("WARNING: THIS IS NOT THE BASELINE OF ISSUE 16")
        else:
            import fla

            print(f"linear attention: {linear.name} (fla {getattr(fla, '__version__', '?')})")
    print(f"compile: {compile_mode or 'eager'}; sdpa backend: {args.sdpa_backend}; LM head chunks of {args.ce_chunk} tokens")

    gen = torch.Generator(device=device).manual_seed(0)
    ids, labels = next_token_batch(cfg, args.batch, seq_len, device, gen)
    t0 = time.time()
    fb_ms, opt_ms, clip_ms, peak_bytes, first_loss, step_joules = time_steps(
        model, opt, ids, labels, args.steps, args.warmup, device, args.clip_grad_norm
    )
    print(f"timed {args.steps} steps after {args.warmup} warm-up ({time.time() - t0:.0f} s with compilation); first loss {first_loss:.4f} (ln vocab {math.log(cfg.vocab):.4f})")
    res = {
        "device": name,
        "torch": torch.__version__,
        "model_source": source,
        "layers": kinds,
        "hidden": cfg.hidden,
        "heads": cfg.heads,
        "head_dim": cfg.head_dim,
        "ffn": cfg.ffn,
        "vocab": cfg.vocab,
        "tied": cfg.tied,
        "parameters": n_params,
        "linear_backend": linear.name if has_linear else None,
        "fla_fallback": has_linear and linear.fla is None,
        "sdpa_backend": args.sdpa_backend,
        "compile_mode": compile_mode,
        "batch": args.batch,
        "seq_len": seq_len,
        "tokens": args.tokens,
        "flops_per_token": {"weights": w_flops, "attention": a_flops, "total": per_token},
        "peak_flops": peak,
        "first_loss": first_loss,
        "fwd_bwd_ms": fb_ms,
        "fwd_bwd_tokens_per_s": args.tokens / fb_ms * 1e3,
        "fwd_bwd_mfu": per_token * args.tokens / (fb_ms / 1e3) / peak if peak else None,
        "optimizer_ms": opt_ms,
        "clip_grad_norm": args.clip_grad_norm,
        "clip_ms": clip_ms,
        "step_ms": fb_ms + opt_ms if opt_ms is not None else None,
        "peak_memory_bytes": peak_bytes,
        "joules_per_step": step_joules,
        "peak_memory_includes_optimizer_state": opt is not None,
        "lm_head_dw_fp32_gemm": kernels.addmm_out_dtype,
    }
    if opt_ms is not None:
        res["step_tokens_per_s"] = args.tokens / res["step_ms"] * 1e3
        res["step_mfu"] = per_token * args.tokens / (res["step_ms"] / 1e3) / peak if peak else None
    mfu = lambda v: f"{100 * v:.1f}% MFU" if v is not None else "MFU n/a (unknown GPU)"  # noqa: E731
    print(
        f"forward+backward: {fb_ms:.2f} ms, {res['fwd_bwd_tokens_per_s'] / 1e3:.1f}K tokens/s, {mfu(res['fwd_bwd_mfu'])}"
    )
    if opt_ms is not None:
        print(
            f"with{f' clipping to {args.clip_grad_norm:g} ({clip_ms:.2f} ms) and' if clip_ms is not None else ''} AdamW{' (fused)' if cuda else ''} step {opt_ms:.2f} ms: {res['step_ms']:.2f} ms, {res['step_tokens_per_s'] / 1e3:.1f}K tokens/s,"
            f" {mfu(res['step_mfu'])}"
        )
    print(f"peak memory {peak_bytes / 2**30:.2f} GiB ({'with' if opt else 'without'} optimizer state)")
    if step_joules is not None:
        print(f"energy: {step_joules:.1f} J a timed step (the GPU's counter over the {args.steps} timed steps)")
    if args.kernel_profile and cuda:
        res["kernel_profile"] = kp = kernel_profile(
            model, opt, ids, labels, args.clip_grad_norm, args.kernel_trace
        )
        print(f"one step's kernels (torch.profiler): {kp['total_ms']:.2f} ms")
        for group, ms in kp["groups_ms"].items():
            print(f"  {group:<40s} {ms:9.3f} ms")
        for row in kp["top"]:
            print(f"  {row['ms']:9.3f} ms  {row['launches']:5d}  {row['kernel']}")
    if args.max_seq:
        ids = labels = None
        free_memory(model, opt)
        longest, tried = max_seq_len(model, opt, cfg, seq_len, device, gen, print)
        res["max_seq_len"] = longest
        res["max_seq_tried"] = tried
        res["max_seq_with_optimizer_state"] = opt is not None
        print(
            f"longest seq_len whose forward+backward fits (batch 1, {'with' if opt else 'without'} optimizer state,"
            f" {args.memory_gib or torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB): {longest}"
        )
    for note in NOTES:
        print(f"note: {note}")
    res["notes"] = NOTES
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
