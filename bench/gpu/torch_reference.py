"""The whole model in plain PyTorch, rebuilt from lasp's config.json and safetensors weights alone, as the
oracle of the program's loss and weight gradients (issue 16, "Correctness").

Usage:
    python3 bench/gpu/torch_reference.py WEIGHTS.safetensors GRADS.safetensors [--config config.json]
        [--device cuda|cpu] [--dtype float32|float64] [--rel-tol 1e-1] [--cos-tol 0.999] [--loss-tol 1e-2]
        [--recompute] [--json OUT]
    python3 bench/gpu/torch_reference.py --self-test [--device cpu]

WEIGHTS is what `--save-weights` writes (BF16, Hugging Face Llama names, PyTorch shapes [out, in]); config.json
defaults to the file of that name beside it. GRADS is what `--save-grads` writes in verify mode: every weight's
gradient of the mean loss (F32, same names; a tied head only as model.embed_tokens.weight), `input_ids` and
`labels` (I32 [batch, seq_len]; labels already shifted, -1 = no target), `loss` (F32 [1]) and the fp64 loss as
the metadata string "loss"; with packed documents (or a padded seq_len) also `doc_ends` (I32 [batch, seq_len], 1
at each token that ends a document). Exit codes: 0 every tensor within tolerance, 1 some not, 2 bad input.

Where a tensor fails, the reference runs again with q, k, v moved by about one bf16 rounding (three draws,
`--probes`), and a tensor that the probe moves past a tolerance passes as ill-conditioned within
`--probe-factor` (3) times that movement: verify's rule (templates/runtime/verify_model.cuh; W0614's case).

Packed documents (issue 19): the reference runs every document of every row ALONE through the model (positions
from 0; RoPE and the decays depend only on distances, so that is the packed computation with attention stopped
at the documents' ends) and sums their losses over the row's targets; the self-test checks that against the
whole rows with a document mask.

The model, in the order the program runs it (templates/runtime/*.cuh, src/reference/oracle.ts,
shared/docs/ALGORITHMS.md):
- x = embed[input_ids]; per layer x = x + Attn(Norm(x)), x = x + down(silu(gate(Norm(x))) * up(Norm(x)));
  final Norm, logits = x W^T (W = lm_head, or the embedding when tied), mean cross-entropy over labels >= 0.
- Norm: RMSNorm x * rsqrt(mean(x^2) + eps) * w, or LayerNorm (biased variance) * w + b; eps is the config's
  rms_norm_eps / layer_norm_eps.
- Linear attention layer: q, k, v projections (k and v over every head), feature map phi on q and k, then
  o_i = sum_{j visible} lam_h^(i-j) (q_i . k_j) v_j with NO 1/sqrt(d) scale; causal: j <= i, bidirectional:
  every j (decay must be 1). Output norm "rms": each head's d-vector divided by sqrt(mean(o^2) + eps), no
  weight, the same eps as the block norms (layer.cuh passes program::kNormEps). Then the O projection.
- Softmax layer: RoPE on q and k, Hugging Face's rotate_half pairing (element e with e + d/2), angle
  pos * theta^(-2e/d) at global positions 0..seq_len-1 of each batch row; GQA, query head h reads kv head
  h // (heads / kv_heads); scale 1/sqrt(d); causal mask j <= i or none.
Attention is written as plain O(N^2) masked matrices, one head at a time, for clarity; the verify sizes are
small. No lasp code and no fla are used. TF32 is switched off so "float32" means float32 on the GPU too.
"""

import argparse
import ctypes
import json
import math
import os
import struct
import sys
import tempfile
from dataclasses import dataclass, field

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the message names what to install; a stack trace would not
    print("torch_reference: PyTorch is not installed (pip install torch)", file=sys.stderr)
    sys.exit(2)

FEATURE_MAPS = ("identity", "elu_plus_one", "relu", "silu")


class BadInput(Exception):
    """A missing or malformed file, tensor or key: exit code 2 with this message."""


# ---------------------------------------------------------------------------------------------------------
# Config


@dataclass
class LayerConfig:
    kind: str  # "linear" or "softmax"
    causal: bool
    decay: list = field(default_factory=list)  # linear: one value per head, 1 = none
    feature_map: str = "identity"
    output_norm: str = "none"  # linear: "rms" or "none"
    kv_heads: int = 0  # softmax; linear when grouped (0: every head)
    rope_theta: float = 0.0  # softmax
    rope_scaling: dict = None  # softmax: transformers' rope_scaling (llama3 or linear), None when unscaled


@dataclass
class ModelConfig:
    vocab: int
    hidden: int
    ffn: int
    heads: int
    head_dim: int
    norm: str  # "rms" or "layer"
    eps: float
    tied: bool
    layers: list

    def kv_heads(self, layer):
        return layer.kv_heads if layer.kv_heads else self.heads


def _need(obj, key, kind, where):
    if key not in obj:
        raise BadInput(f"{where}: missing key '{key}'")
    value = obj[key]
    if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
        raise BadInput(f"{where}: '{key}' must be an integer, got {value!r}")
    if kind is float and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
        raise BadInput(f"{where}: '{key}' must be a number, got {value!r}")
    if kind is bool and not isinstance(value, bool):
        raise BadInput(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def parse_config(cfg, where="config.json"):
    """A ModelConfig from lasp's config.json (src/model/hf-config.ts) or a plain Llama config.json."""
    if not isinstance(cfg, dict):
        raise BadInput(f"{where}: not a JSON object")
    vocab = _need(cfg, "vocab_size", int, where)
    hidden = _need(cfg, "hidden_size", int, where)
    ffn = _need(cfg, "intermediate_size", int, where)
    n_layers = _need(cfg, "num_hidden_layers", int, where)
    heads = _need(cfg, "num_attention_heads", int, where)
    head_dim = cfg.get("head_dim", hidden // heads if heads else 0)
    if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
        raise BadInput(f"{where}: head_dim must be a positive even integer, got {head_dim!r}")
    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise BadInput(f"{where}: hidden_act '{act}' is not supported (the MLP is SwiGLU: silu)")
    norm_type = cfg.get("norm_type", "rms_norm")
    if norm_type == "rms_norm":
        norm, eps = "rms", _need(cfg, "rms_norm_eps", float, where)
    elif norm_type == "layer_norm":
        norm, eps = "layer", _need(cfg, "layer_norm_eps", float, where)
    else:
        raise BadInput(f"{where}: norm_type must be rms_norm or layer_norm, got {norm_type!r}")
    tied = cfg.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise BadInput(f"{where}: tie_word_embeddings must be true or false")
    for key in ("attention_bias", "mlp_bias"):
        if cfg.get(key, False):
            raise BadInput(f"{where}: {key} true is not supported (lasp's model has no projection biases)")
    layer_cfgs = cfg.get("layer_configs")
    if layer_cfgs is None:
        # A plain Llama config: every layer causal softmax attention with the top-level kv heads and RoPE base.
        types = cfg.get("layer_types", ["full_attention"] * n_layers)
        if any(t != "full_attention" for t in types):
            raise BadInput(f"{where}: layer_types has linear_attention layers but there is no layer_configs")
        layer_cfgs = [
            {
                "layer_type": "full_attention",
                "causal": True,
                "num_key_value_heads": cfg.get("num_key_value_heads", heads),
                "rope_theta": cfg.get("rope_theta", 10000.0),
                "rope_scaling": cfg.get("rope_scaling"),
            }
        ] * n_layers
    if not isinstance(layer_cfgs, list) or len(layer_cfgs) != n_layers:
        raise BadInput(f"{where}: layer_configs must list num_hidden_layers = {n_layers} layers")
    types = cfg.get("layer_types")
    layers = []
    for i, lc in enumerate(layer_cfgs):
        at = f"{where}: layer_configs[{i}]"
        if not isinstance(lc, dict):
            raise BadInput(f"{at}: not an object")
        lt = lc.get("layer_type")
        if types is not None and (not isinstance(types, list) or i >= len(types) or types[i] != lt):
            raise BadInput(f"{at}: layer_type {lt!r} disagrees with layer_types")
        causal = _need(lc, "causal", bool, at)
        if lt == "linear_attention":
            decay = _need(lc, "decay", list, at) if "decay" in lc else [1.0] * heads
            if isinstance(decay, (int, float)):
                decay = [float(decay)] * heads
            if len(decay) != heads or not all(isinstance(x, (int, float)) and 0 < x <= 1 for x in decay):
                raise BadInput(f"{at}: decay must be {heads} numbers in (0, 1], got {decay!r}")
            if not causal and any(x != 1 for x in decay):
                raise BadInput(f"{at}: bidirectional linear attention has no decay (ALGORITHMS.md), got {decay!r}")
            fmap = lc.get("feature_map", "identity")
            if fmap not in FEATURE_MAPS:
                raise BadInput(f"{at}: feature_map {fmap!r} is not one of {', '.join(FEATURE_MAPS)}")
            onorm = lc.get("output_norm", "none")
            if onorm not in ("rms", "none"):
                raise BadInput(f"{at}: output_norm must be rms or none, got {onorm!r}")
            kv = lc.get("num_key_value_heads", heads)
            if not isinstance(kv, int) or kv < 1 or heads % kv:
                raise BadInput(f"{at}: {heads} heads do not split into {kv!r} key/value heads")
            layers.append(LayerConfig("linear", causal, [float(x) for x in decay], fmap, onorm, kv_heads=kv if kv != heads else 0))
        elif lt == "full_attention":
            kv = _need(lc, "num_key_value_heads", int, at)
            if kv < 1 or heads % kv:
                raise BadInput(f"{at}: {heads} heads do not split into {kv} key/value heads")
            theta = _need(lc, "rope_theta", float, at)
            if not theta > 0:
                raise BadInput(f"{at}: rope_theta must be positive")
            scaling = rope_scaling_of(lc.get("rope_scaling", cfg.get("rope_scaling")), at)
            layers.append(LayerConfig("softmax", causal, kv_heads=kv, rope_theta=float(theta), rope_scaling=scaling))
        else:
            raise BadInput(f"{at}: layer_type must be linear_attention or full_attention, got {lt!r}")
    for name, v in (("vocab_size", vocab), ("hidden_size", hidden), ("intermediate_size", ffn), ("heads", heads)):
        if v <= 0:
            raise BadInput(f"{where}: {name} must be positive")
    return ModelConfig(vocab, hidden, ffn, heads, head_dim, norm, float(eps), tied, layers)


def load_config(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise BadInput(f"config file {path} does not exist (give --config)") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})") from None
    return parse_config(cfg, path)


def expected_parameters(cfg):
    """Name -> shape of every weight, in the order of src/model/parameters.ts (modelParameters)."""
    out = {"model.embed_tokens.weight": (cfg.vocab, cfg.hidden)}

    def norm(prefix):
        out[f"{prefix}.weight"] = (cfg.hidden,)
        if cfg.norm == "layer":
            out[f"{prefix}.bias"] = (cfg.hidden,)

    width = cfg.heads * cfg.head_dim
    for i, layer in enumerate(cfg.layers):
        p = f"model.layers.{i}"
        kv = cfg.kv_heads(layer) * cfg.head_dim
        norm(f"{p}.input_layernorm")
        out[f"{p}.self_attn.q_proj.weight"] = (width, cfg.hidden)
        out[f"{p}.self_attn.k_proj.weight"] = (kv, cfg.hidden)
        out[f"{p}.self_attn.v_proj.weight"] = (kv, cfg.hidden)
        out[f"{p}.self_attn.o_proj.weight"] = (cfg.hidden, width)
        norm(f"{p}.post_attention_layernorm")
        out[f"{p}.mlp.gate_proj.weight"] = (cfg.ffn, cfg.hidden)
        out[f"{p}.mlp.up_proj.weight"] = (cfg.ffn, cfg.hidden)
        out[f"{p}.mlp.down_proj.weight"] = (cfg.hidden, cfg.ffn)
    norm("model.norm")
    if not cfg.tied:
        out["lm_head.weight"] = (cfg.vocab, cfg.hidden)
    return out


# ---------------------------------------------------------------------------------------------------------
# safetensors: the `safetensors` package when installed (what a user loads with), else a small reader of the
# format (8-byte little-endian header size, JSON header, raw little-endian data).

ST_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I8": torch.int8,
    "U8": torch.uint8,
    "I16": torch.int16,
    "I32": torch.int32,
    "I64": torch.int64,
    "BOOL": torch.bool,
}
ST_NAMES = {v: k for k, v in ST_DTYPES.items()}


def read_safetensors_builtin(path):
    """(tensors by name, metadata) without the safetensors package."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    if len(data) < 8:
        raise BadInput(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise BadInput(f"{path}: header size {n} runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: the header is not JSON ({exc})") from None
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n :]
    tensors = {}
    for name, info in header.items():
        dtype = ST_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise BadInput(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')!r}")
        shape = [int(s) for s in info["shape"]]
        begin, end = info["data_offsets"]
        count = math.prod(shape)
        size = torch.empty((), dtype=dtype).element_size()
        if end - begin != count * size or end > len(body):
            raise BadInput(f"{path}: tensor {name} has {end - begin} bytes for shape {shape} of {info['dtype']}")
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(shape)
    return tensors, meta


def read_safetensors(path, use_package=True):
    if not os.path.isfile(path):
        raise BadInput(f"{path} does not exist")
    if use_package:
        try:
            from safetensors import safe_open
        except ImportError:
            use_package = False
    if not use_package:
        return read_safetensors_builtin(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as exc:  # noqa: BLE001 - the package raises several types for a malformed file
        raise BadInput(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (CPU, any ST_DTYPES dtype) in the safetensors format; the self-test's writer."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        nbytes = t.numel() * t.element_size()
        blobs.append(ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b"")
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the package writes it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------------------
# The model


def block_norm(cfg, x, w, b):
    if cfg.norm == "rms":
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.eps) * w
    return F.layer_norm(x, (x.shape[-1],), w, b, cfg.eps)


def feature_map(kind, x):
    if kind == "identity":
        return x
    if kind == "elu_plus_one":
        return F.elu(x) + 1.0
    if kind == "relu":
        return F.relu(x)
    return F.silu(x)


def head_rms_norm(x, eps):
    """RMSNorm over the last axis (one head's vector) without a weight."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rope_scaling_of(value, at):
    """transformers' rope_scaling as the reference computes it: None, or a dict of a llama3 or linear scaling."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"{at}: rope_scaling must be an object, got {value!r}")
    kind = value.get("rope_type", value.get("type"))
    if kind == "default":
        return None
    if kind not in ("llama3", "linear"):
        raise BadInput(f"{at}: rope_scaling of rope_type {kind!r} is not computed here (llama3 or linear)")
    scaling = {"rope_type": kind, "factor": float(_need(value, "factor", float, at))}
    if kind == "llama3":
        scaling["low_freq_factor"] = float(value.get("low_freq_factor", 1.0))
        scaling["high_freq_factor"] = float(value.get("high_freq_factor", 4.0))
        scaling["original_max_position_embeddings"] = int(_need(value, "original_max_position_embeddings", int, at))
    return scaling


def rope_inv_freq(d, theta, scaling):
    """theta^(-2e/d) for e < d/2 in float64, scaled as transformers' _compute_llama3_parameters / linear do."""
    inv = [float(theta) ** (-2.0 * e / d) for e in range(d // 2)]
    if scaling is None:
        return inv
    factor = scaling["factor"]
    if scaling["rope_type"] == "linear":
        return [f / factor for f in inv]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    out = []
    for f in inv:
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(f)
        elif wavelen > old / low:
            out.append(f / factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return out


def rope_tables(n, d, theta, dtype, device, scaling=None):
    """cos and sin [n, d/2] of pos * inv_freq (rope_inv_freq), formed in float64 (positions up to 1M stay exact)."""
    inv_freq = torch.tensor(rope_inv_freq(d, theta, scaling), dtype=torch.float64)
    angle = torch.arange(n, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angle.cos().to(device, dtype), angle.sin().to(device, dtype)


def rope(x, cos, sin):
    """x [B, N, heads, d]: the rotate_half pairing, x'[e] = x[e] cos - x[e+d/2] sin, x'[e+d/2] = x[e+d/2] cos + x[e] sin."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


class DecayMasks:
    """D[i, j] = lam^(i-j) for j <= i, 0 above (causal), or all ones (bidirectional); built in float64."""

    def __init__(self, n, dtype, device):
        self.n, self.dtype, self.device, self.cache = n, dtype, device, {}

    def get(self, lam, causal):
        key = (float(lam), bool(causal))
        if key not in self.cache:
            if not causal:
                self.cache[key] = torch.ones(self.n, self.n, dtype=self.dtype, device=self.device)
            else:
                idx = torch.arange(self.n, dtype=torch.float64, device=self.device)
                dist = idx[:, None] - idx[None, :]
                m = torch.pow(torch.tensor(float(lam), dtype=torch.float64, device=self.device), dist.clamp(min=0))
                self.cache[key] = (m * (dist >= 0)).to(self.dtype)
        return self.cache[key]


def linear_attention(q, k, v, layer, masks, same=None):
    """q [B, N, H, d], k [B, N, Hkv, d] (feature map applied), v [B, N, Hkv, dv] -> o [B, N, H, dv]; query head h
    reads key/value head h // (H / Hkv) (Hkv = H unless grouped). same [B, N, N]: the pairs of one document (None:
    every pair)."""
    group = q.shape[2] // k.shape[2]
    outs = []
    for h in range(q.shape[2]):
        d = masks.get(layer.decay[h], layer.causal)
        scores = q[:, :, h] @ k[:, :, h // group].transpose(1, 2)  # [B, N, N]
        if same is not None:
            scores = scores * same
        outs.append((scores * d) @ v[:, :, h // group])
    return torch.stack(outs, dim=2)


def softmax_attention(q, k, v, layer, causal_mask, same=None):
    """q [B, N, H, d], k, v [B, N, Hkv, d] (RoPE applied) -> o [B, N, H, d]. same [B, N, N]: the pairs of one
    document (None: every pair)."""
    heads, kv_heads = q.shape[2], k.shape[2]
    group = heads // kv_heads
    scale = 1.0 / math.sqrt(q.shape[-1])
    visible = causal_mask if layer.causal else None
    if same is not None:
        visible = same if visible is None else (same & visible)
    outs = []
    for h in range(heads):
        g = h // group
        s = (q[:, :, h] @ k[:, :, g].transpose(1, 2)) * scale
        if visible is not None:
            s = s.masked_fill(~visible, float("-inf"))
        outs.append(torch.softmax(s, dim=-1) @ v[:, :, g])
    return torch.stack(outs, dim=2)


def document_spans(ends):
    """[(start, stop)] of one row's documents: each ends at a token marked 1, the last at the row's end."""
    spans, start = [], 0
    for t, e in enumerate(ends):
        if e:
            spans.append((start, t + 1))
            start = t + 1
    if start < len(ends):
        spans.append((start, len(ends)))
    return spans


def same_document(doc_ends):
    """[B, N, N] bool: tokens i and j in one document (doc_ends [B, N], 1 at each document's last token)."""
    ends = doc_ends.long()
    ids = torch.cumsum(ends, dim=1) - ends  # ends before each token
    return ids[:, :, None] == ids[:, None, :]


class RoundBf16(torch.autograd.Function):
    """x rounded to bf16 and back, and so its gradient: where a bf16 program stores an activation."""

    @staticmethod
    def forward(ctx, x):
        return x.to(torch.bfloat16).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g.to(torch.bfloat16).to(g.dtype)


class AttentionProbe:
    """While set (probe_inputs), moves every layer's attention inputs q, k, v by (1 + 2^-8 u), u uniform in
    [-1, 1] from `generator`: about one bf16 rounding, the probe verify's whole-model check runs
    (templates/runtime/verify_model.cuh) to see how well bf16 inputs determine each gradient."""

    generator = None

    @classmethod
    def move(cls, x):
        if cls.generator is None:
            return x
        u = torch.rand(x.shape, generator=cls.generator, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
        return x * (1 + (2 * u - 1) * 2.0**-8)


class ActivationProbe(AttentionProbe):
    """While set, moves every value a bf16 program keeps in bf16 (where round_activations rounds: the residual
    stream, the norms' outputs, q, k, v, the attention output and its norm, gate, up, their product) the same
    way: about one bf16 rounding at every such place, a wider probe than AttentionProbe's
    (bench/gpu/conditioning_study.py --probe activations compares the two). Its own generator, so the two are
    set independently."""

    generator = None


def forward_loss(cfg, params, input_ids, labels, recompute=False, round_activations=False, doc_ends=None):
    """The mean cross-entropy over labels >= 0; params maps the Hugging Face names to leaf tensors. With
    round_activations, the values a bf16 program keeps in bf16 (the residual stream, every norm's output, q, k,
    v, the attention output and its norm, the MLP's gate, up and their product) and their gradients are rounded
    to bf16, the arithmetic staying in `dtype`. With doc_ends, every
    document of every row runs alone (the reference for packed documents)."""
    if doc_ends is None:
        total, count = forward_sum(cfg, params, input_ids, labels, recompute, round_activations)
        return total / count
    total, count = 0.0, 0
    for b in range(input_ids.shape[0]):
        for start, stop in document_spans(doc_ends[b].tolist()):
            part, n = forward_sum(
                cfg, params, input_ids[b : b + 1, start:stop], labels[b : b + 1, start:stop], recompute, round_activations
            )
            total, count = total + part, count + n
    return total / count


def forward_sum(cfg, params, input_ids, labels, recompute=False, round_activations=False, same=None):
    """(summed cross-entropy over labels >= 0, their count) of whole rows; `same` [B, N, N] (same_document):
    attention only within documents."""
    kept = RoundBf16.apply if round_activations else (lambda t: t)

    def rnd(t):
        return ActivationProbe.move(kept(t))

    B, N = input_ids.shape
    dtype, device = params["model.embed_tokens.weight"].dtype, input_ids.device
    masks = DecayMasks(N, dtype, device)
    causal_mask = torch.ones(N, N, dtype=torch.bool, device=device).tril()
    same_d = None if same is None else same.to(device)
    same_x = None if same is None else same_d.to(dtype)
    ropes = {}
    H, d = cfg.heads, cfg.head_dim
    x = params["model.embed_tokens.weight"][input_ids]  # [B, N, hidden]
    for i, layer in enumerate(cfg.layers):
        p = f"model.layers.{i}"
        Hkv = cfg.kv_heads(layer)
        h = rnd(block_norm(cfg, x, params[f"{p}.input_layernorm.weight"], params.get(f"{p}.input_layernorm.bias")))
        q = (h @ params[f"{p}.self_attn.q_proj.weight"].T).view(B, N, H, d)
        k = (h @ params[f"{p}.self_attn.k_proj.weight"].T).view(B, N, Hkv, d)
        v = (h @ params[f"{p}.self_attn.v_proj.weight"].T).view(B, N, Hkv, d)
        if layer.kind == "linear":
            q, k, v = rnd(feature_map(layer.feature_map, q)), rnd(feature_map(layer.feature_map, k)), rnd(v)

            def core(q, k, v, layer=layer):
                o = rnd(linear_attention(q, k, v, layer, masks, same_x))
                return rnd(head_rms_norm(o, cfg.eps)) if layer.output_norm == "rms" else o

        else:
            rope_key = (layer.rope_theta, json.dumps(layer.rope_scaling, sort_keys=True))
            if rope_key not in ropes:
                ropes[rope_key] = rope_tables(N, d, layer.rope_theta, dtype, device, layer.rope_scaling)
            cos, sin = ropes[rope_key]
            q, k, v = rnd(rope(rnd(q), cos, sin)), rnd(rope(rnd(k), cos, sin)), rnd(v)

            def core(q, k, v, layer=layer):
                return rnd(softmax_attention(q, k, v, layer, causal_mask, same_d))

        q, k, v = AttentionProbe.move(q), AttentionProbe.move(k), AttentionProbe.move(v)
        if recompute:
            from torch.utils.checkpoint import checkpoint

            o = checkpoint(core, q, k, v, use_reentrant=False)
        else:
            o = core(q, k, v)
        x = rnd(x + o.reshape(B, N, H * d) @ params[f"{p}.self_attn.o_proj.weight"].T)
        h = rnd(
            block_norm(
                cfg, x, params[f"{p}.post_attention_layernorm.weight"], params.get(f"{p}.post_attention_layernorm.bias")
            )
        )
        gate = rnd(h @ params[f"{p}.mlp.gate_proj.weight"].T)
        up = rnd(h @ params[f"{p}.mlp.up_proj.weight"].T)
        x = rnd(x + rnd(F.silu(gate) * up) @ params[f"{p}.mlp.down_proj.weight"].T)
    x = rnd(block_norm(cfg, x, params["model.norm.weight"], params.get("model.norm.bias")))
    head = params["model.embed_tokens.weight"] if cfg.tied else params["lm_head.weight"]
    logits = x.reshape(B * N, cfg.hidden) @ head.T
    flat = labels.reshape(-1).long()
    count = int((flat >= 0).sum())
    if count == 0:  # a document without a target (a padding's)
        return logits.sum() * 0.0, 0
    return F.cross_entropy(logits, flat, ignore_index=-1, reduction="sum"), count


def reference_gradients(
    cfg, weights, input_ids, labels, device, dtype, recompute=False, round_activations=False, doc_ends=None
):
    """(loss, {name: grad}) of the model in `dtype` on `device`, weights upcast from the file; with doc_ends,
    each document alone."""
    params = {n: t.to(device=device, dtype=dtype, copy=True).requires_grad_(True) for n, t in weights.items()}
    loss = forward_loss(
        cfg, params, input_ids.to(device), labels.to(device), recompute, round_activations, doc_ends
    )
    loss.backward()
    grads = {}
    for n, t in params.items():
        grads[n] = t.grad.detach() if t.grad is not None else torch.zeros_like(t)
    return loss.item(), grads


# ---------------------------------------------------------------------------------------------------------
# Checking the inputs and comparing


def check_inputs(cfg, weights, grads):
    """Every expected tensor present with its shape, nothing else; tokens in range. Raises BadInput."""
    expected = expected_parameters(cfg)
    notes = []
    for what, table in (("weights", weights), ("gradients", grads)):
        missing = [n for n in expected if n not in table]
        if missing:
            raise BadInput(f"the {what} file lacks {len(missing)} tensor(s): {', '.join(missing[:8])}")
        for n, shape in expected.items():
            if tuple(table[n].shape) != shape:
                raise BadInput(f"{what}: {n} has shape {list(table[n].shape)}, the config gives {list(shape)}")
            if not table[n].is_floating_point():
                raise BadInput(f"{what}: {n} is {table[n].dtype}, not a floating-point tensor")
    extra = [n for n in weights if n not in expected]
    if extra:
        raise BadInput(f"the weights file has tensor(s) the config does not describe: {', '.join(extra[:8])}")
    extra = [n for n in grads if n not in expected and n not in ("input_ids", "labels", "loss", "doc_ends")]
    if extra:
        raise BadInput(f"the gradients file has unexpected tensor(s): {', '.join(extra[:8])}")
    for n in ("input_ids", "labels"):
        if n not in grads:
            raise BadInput(f"the gradients file lacks '{n}'")
        t = grads[n]
        if t.dtype not in (torch.int32, torch.int64) or t.dim() != 2:
            raise BadInput(f"{n} must be an I32 tensor [batch, seq_len], got {t.dtype} {list(t.shape)}")
    ids, labels = grads["input_ids"], grads["labels"]
    if ids.shape != labels.shape:
        raise BadInput(f"input_ids {list(ids.shape)} and labels {list(labels.shape)} differ in shape")
    if ids.numel() == 0:
        raise BadInput("input_ids is empty")
    if int(ids.min()) < 0 or int(ids.max()) >= cfg.vocab:
        raise BadInput(f"input_ids lie in [{int(ids.min())}, {int(ids.max())}], outside [0, {cfg.vocab})")
    if int(labels.min()) < -1 or int(labels.max()) >= cfg.vocab:
        raise BadInput(f"labels lie in [{int(labels.min())}, {int(labels.max())}], outside [-1, {cfg.vocab})")
    if int((labels >= 0).sum()) == 0:
        raise BadInput("labels has no target (every entry is -1)")
    if "doc_ends" in grads:
        ends = grads["doc_ends"]
        if ends.dtype not in (torch.int32, torch.int64) or tuple(ends.shape) != tuple(ids.shape):
            raise BadInput(f"doc_ends must be an I32 tensor {list(ids.shape)} like input_ids, got {ends.dtype} {list(ends.shape)}")
        if int(ends.min()) < 0 or int(ends.max()) > 1:
            raise BadInput(f"doc_ends holds values in [{int(ends.min())}, {int(ends.max())}], not only 0 and 1")
        documents = sum(len(document_spans(row)) for row in ends.tolist())
        notes.append(f"documents: {documents} in {ids.shape[0]} row(s); the reference runs each one alone")
    wdt = sorted({ST_NAMES.get(weights[n].dtype, str(weights[n].dtype)) for n in expected})
    gdt = sorted({ST_NAMES.get(grads[n].dtype, str(grads[n].dtype)) for n in expected})
    if wdt != ["BF16"]:
        notes.append(f"note: weights are {'/'.join(wdt)} (the contract says BF16)")
    if gdt != ["F32"]:
        notes.append(f"note: gradients are {'/'.join(gdt)} (the contract says F32)")
    return notes


def program_loss(grads, meta):
    """The program's loss: the fp64 metadata string when present, else the F32 tensor."""
    if "loss" in meta:
        try:
            return float(meta["loss"]), "metadata"
        except ValueError:
            raise BadInput(f"metadata 'loss' is not a number: {meta['loss']!r}") from None
    if "loss" in grads and grads["loss"].numel() == 1:
        return float(grads["loss"].double().item()), "tensor"
    raise BadInput("the gradients file has neither a 'loss' metadata entry nor a one-element 'loss' tensor")


def compare_tensor(got, ref):
    """(max|got - ref| / max|ref|, cosine) in float64; both zero counts as a perfect match."""
    a, b = got.double().flatten(), ref.double().flatten()
    if not torch.isfinite(a).all():
        return math.inf, math.nan
    ref_max = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    rel = diff / ref_max if ref_max > 0 else (0.0 if diff == 0 else math.inf)
    na, nb = a.norm().item(), b.norm().item()
    if na == 0 and nb == 0:
        cos = 1.0
    elif na == 0 or nb == 0:
        cos = 0.0
    else:
        cos = (a @ b).item() / (na * nb)
    return rel, cos


def sensitivity(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, level=2.0**-9, seed=0, doc_ends=None):
    """How far the reference's own gradients move when every weight is multiplied by (1 + level * N(0, 1)):
    per tensor (rel err, cos) against the unperturbed ones. At level 2^-9 (bf16's rounding) this estimates
    what a correct bf16 program can reach; a large value means the configuration is ill-conditioned there."""
    gen = torch.Generator().manual_seed(seed)
    noisy = {n: t.double() * (1 + level * torch.randn(t.shape, generator=gen, dtype=torch.float64)) for n, t in weights.items()}
    _, moved = reference_gradients(cfg, noisy, ids, labels, device, dtype, recompute, doc_ends=doc_ends)
    return {n: compare_tensor(moved[n].cpu(), ref_grads[n].cpu()) for n in ref_grads}


def attention_probes(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, probes=3, doc_ends=None):
    """How far the reference's own gradients move when q, k, v move by about one bf16 rounding
    (AttentionProbe), the largest of `probes` draws: per tensor (rel err, cos) against the unmoved ones, as
    verify's whole-model check measures its oracle. Large where the model is ill-conditioned (W0614)."""
    worst = {n: (0.0, 1.0) for n in ref_grads}
    try:
        for p in range(probes):
            AttentionProbe.generator = torch.Generator().manual_seed(104729 + p)
            _, moved = reference_gradients(cfg, weights, ids, labels, device, dtype, recompute, doc_ends=doc_ends)
            for n in ref_grads:
                r, c = compare_tensor(moved[n].cpu(), ref_grads[n].cpu())
                worst[n] = (max(worst[n][0], r), min(worst[n][1], c))
    finally:
        AttentionProbe.generator = None
    return worst


def activation_rounding(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, doc_ends=None):
    """How far the reference's own gradients move when the activations a bf16 program keeps in bf16 are rounded
    to bf16 (forward and backward): per tensor (rel err, cos) against the unrounded ones. Where this is large,
    no bf16 program can match the fp32 reference: the configuration is ill-conditioned in its activations."""
    _, moved = reference_gradients(
        cfg, weights, ids, labels, device, dtype, recompute, round_activations=True, doc_ends=doc_ends
    )
    return {n: compare_tensor(moved[n].cpu(), ref_grads[n].cpu()) for n in ref_grads}


def compare(
    cfg, grads, meta, ref_loss, ref_grads, rel_tol, cos_tol, loss_tol, sens=None, sens_factor=0.0, probe=None,
    probe_factor=3.0,
):
    """The table. With `sens` (sensitivity()) and sens_factor F > 0, a tensor's tolerances widen to
    rel err <= max(rel_tol, F * its sensitivity) and 1 - cos <= max(1 - cos_tol, F * (1 - its cos)). With
    `probe` (attention_probes()), a tensor that fails passes as ill-conditioned where the probe moves the
    reference itself past a tolerance and the program's error is within probe_factor times that movement
    (verify_model.cuh's rule)."""
    rows = []
    for name, shape in expected_parameters(cfg).items():
        rel, cos = compare_tensor(grads[name], ref_grads[name].cpu())
        r_tol, c_tol = rel_tol, cos_tol
        row = {"tensor": name, "shape": list(shape), "rel_err": rel, "cos": cos}
        if sens is not None:
            s_rel, s_cos = sens[name]
            row["sens_rel_err"], row["sens_cos"] = s_rel, s_cos
            if sens_factor > 0:
                r_tol = max(rel_tol, sens_factor * s_rel)
                c_tol = min(cos_tol, 1 - sens_factor * (1 - s_cos))
        ok = rel <= r_tol and cos >= c_tol  # NaN fails both
        if probe is not None:
            p_rel, p_cos = probe[name]
            row["probe_rel_err"], row["probe_cos"] = p_rel, p_cos
            shaky = p_rel > rel_tol or p_cos < cos_tol
            within = rel <= probe_factor * p_rel and (1 - cos) <= probe_factor * (1 - p_cos)
            row["ill_conditioned"] = not ok and shaky and within
            if row["ill_conditioned"]:
                ok, r_tol, c_tol = True, max(r_tol, probe_factor * p_rel), min(c_tol, 1 - probe_factor * (1 - p_cos))
        # badness: how far past (or short of) its tolerance each measure is; the table shows the worst first
        bad = max(rel / r_tol if r_tol > 0 else math.inf, (1 - cos) / (1 - c_tol) if c_tol < 1 else 0.0)
        if math.isnan(bad):
            bad = math.inf
        row.update({"ok": ok, "badness": bad})
        rows.append(row)
    rows.sort(key=lambda r: -r["badness"])
    prog, source = program_loss(grads, meta)
    loss_rel = abs(prog - ref_loss) / abs(ref_loss) if ref_loss != 0 else abs(prog)
    loss_ok = loss_rel <= loss_tol
    return {
        "loss": {"program": prog, "program_source": source, "reference": ref_loss, "rel_err": loss_rel, "ok": loss_ok},
        "tolerances": {
            "rel_err": rel_tol,
            "cos": cos_tol,
            "loss_rel_err": loss_tol,
            "sensitivity_factor": sens_factor,
            "probe_factor": probe_factor if probe is not None else None,
        },
        "tensors": rows,
        "passed": loss_ok and all(r["ok"] for r in rows),
    }


def print_report(result, out=sys.stdout):
    loss = result["loss"]
    tol = result["tolerances"]
    print(
        f"loss: program {loss['program']:.10g} ({loss['program_source']}), reference {loss['reference']:.10g},"
        f" rel err {loss['rel_err']:.2e} (tol {tol['loss_rel_err']:.0e}) {'ok' if loss['ok'] else 'FAIL'}",
        file=out,
    )
    width = max([len("tensor")] + [len(r["tensor"]) for r in result["tensors"]])
    has_sens = any("sens_rel_err" in r for r in result["tensors"])
    extra = f"  {'sens rel':>9}  {'sens cos':>10}" if has_sens else ""
    print(f"{'tensor':<{width}}  {'shape':<14} {'rel err':>9}  {'cos':>10}{extra}", file=out)
    for r in result["tensors"]:
        shape = "x".join(str(s) for s in r["shape"])
        extra = f"  {r['sens_rel_err']:9.2e}  {r['sens_cos']:10.7f}" if has_sens else ""
        if "probe_rel_err" in r:
            extra += f"  probe {r['probe_rel_err']:.2e} / {r['probe_cos']:.7f}"
        verdict = ("ok (ill-conditioned)" if r.get("ill_conditioned") else "ok") if r["ok"] else "FAIL"
        print(f"{r['tensor']:<{width}}  {shape:<14} {r['rel_err']:9.2e}  {r['cos']:10.7f}{extra}  {verdict}", file=out)
    good = sum(r["ok"] for r in result["tensors"])
    loose = sum(bool(r.get("ill_conditioned")) for r in result["tensors"])
    if loose:
        print(
            f"ill-conditioned: {loose} tensor(s) pass only within {tol['probe_factor']:g} x how far the reference"
            " itself moves when q, k, v move by one bf16 rounding (the probe; verify_model.cuh's rule)",
            file=out,
        )
    verdict = "PASS" if result["passed"] else "FAIL"
    widened = f" (or {tol['sensitivity_factor']:g} x the sensitivity)" if tol.get("sensitivity_factor") else ""
    print(
        f"{verdict}: {good}/{len(result['tensors'])} gradients within rel err <= {tol['rel_err']:g} and"
        f" cos >= {tol['cos']:g}{widened}; loss {'within' if loss['ok'] else 'outside'} {tol['loss_rel_err']:g}",
        file=out,
    )
    if has_sens:
        shaky = [r for r in result["tensors"] if r["sens_rel_err"] > tol["rel_err"] or r["sens_cos"] < tol["cos"]]
        print(
            f"sensitivity: the reference itself moves past the tolerance for {len(shaky)} tensor(s) when the weights"
            f" carry bf16-level noise (2^-9){': ill-conditioned here, a bf16 program cannot do better' if shaky else ''}",
            file=out,
        )


def pick_device(name):
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {name}: CUDA is not available in this PyTorch")
    return name


def run_check(args, quiet=False):
    """The whole comparison; returns the exit code (0 pass, 1 fail). BadInput propagates."""
    device = pick_device(args.device)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for path in (args.weights, args.grads):
        if not os.path.isfile(path):
            raise BadInput(f"{path} does not exist")
    config_path = args.config or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "config.json")
    cfg = load_config(config_path)
    weights, _ = read_safetensors(args.weights, not args.builtin_reader)
    grads, meta = read_safetensors(args.grads, not args.builtin_reader)
    notes = check_inputs(cfg, weights, grads)
    ids, labels = grads["input_ids"].long(), grads["labels"].long()
    doc_ends = grads["doc_ends"].long() if "doc_ends" in grads else None
    say = (lambda *a: None) if quiet else print
    kinds = ", ".join(
        f"{'linear' if l.kind == 'linear' else 'softmax'}{'' if l.causal else '(bidir)'}" for l in cfg.layers
    )
    say(
        f"model: {len(cfg.layers)} layers [{kinds}], hidden {cfg.hidden}, {cfg.heads} heads x {cfg.head_dim},"
        f" ffn {cfg.ffn}, vocab {cfg.vocab}, {cfg.norm}norm eps {cfg.eps:g}, {'tied' if cfg.tied else 'untied'} head"
    )
    say(
        f"tokens: batch {ids.shape[0]} x seq_len {ids.shape[1]}, {int((labels >= 0).sum())} targets;"
        f" reference in {args.dtype} on {device} (torch {torch.__version__})"
    )
    for n in notes:
        say(n)
    recompute = args.recompute == "on"
    if args.recompute == "auto":
        # about three [N, N] matrices per head and layer stay alive for the backward without recomputation
        saved = 3 * ids.shape[0] * ids.shape[1] ** 2 * cfg.heads * len(cfg.layers) * (8 if args.dtype == "float64" else 4)
        recompute = saved > 8 * 2**30
        if recompute:
            say(f"recomputing attention in the backward (its score matrices would hold {saved / 2**30:.0f} GiB)")
    ref_loss, ref_grads = reference_gradients(cfg, weights, ids, labels, device, dtype, recompute, doc_ends=doc_ends)
    sens = None
    if args.sensitivity:
        sens = sensitivity(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, doc_ends=doc_ends)
    factor = args.sensitivity_factor if sens is not None else 0.0
    result = compare(cfg, grads, meta, ref_loss, ref_grads, args.rel_tol, args.cos_tol, args.loss_tol, sens, factor)
    if args.probe_factor > 0 and not all(r["ok"] for r in result["tensors"]):
        say(f"some gradients fail: the reference again, {args.probes} times with q, k, v moved by one bf16 rounding")
        probe = attention_probes(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, args.probes, doc_ends)
        result = compare(
            cfg, grads, meta, ref_loss, ref_grads, args.rel_tol, args.cos_tol, args.loss_tol, sens, factor, probe,
            args.probe_factor,
        )
    if args.bf16_activations:
        moved = activation_rounding(cfg, weights, ids, labels, device, dtype, recompute, ref_grads, doc_ends)
        result["bf16_activations"] = {n: {"rel_err": r, "cos": c} for n, (r, c) in moved.items()}
        worst = sorted(moved.items(), key=lambda kv: -kv[1][0])[:6]
        say("the reference with bf16-rounded activations against itself (worst first):")
        for n, (r, c) in worst:
            say(f"  {n:<46}  rel err {r:.2e}  cos {c:.7f}")
    result["config"] = config_path
    result["device"] = device
    result["dtype"] = args.dtype
    if not quiet:
        print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0 if result["passed"] else 1


# ---------------------------------------------------------------------------------------------------------
# Self-test: tiny random models, a grads file from an independent formulation, pass and fail cases.


def recurrent_linear_attention(q, k, v, layer, masks, same=None):
    """The same linear attention as a recurrence S_i = lam S_{i-1} + k_i^T v_i, o_i = q_i S_i (causal) or
    q_i sum_j k_j^T v_j (bidirectional): an independent check of the masked-matrix form and its decay power.
    Whole rows only (same must be None)."""
    assert same is None
    B, N, H, d = q.shape
    group = H // k.shape[2]  # grouped kv heads: repeated, as sdpa_attention does
    k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    outs = []
    for h in range(H):
        qh, kh, vh = q[:, :, h], k[:, :, h], v[:, :, h]
        if not layer.causal:
            outs.append(qh @ (kh.transpose(1, 2) @ vh))
            continue
        S = torch.zeros(B, d, vh.shape[-1], dtype=q.dtype, device=q.device)
        rows = []
        for i in range(N):
            S = layer.decay[h] * S + kh[:, i, :, None] * vh[:, i, None, :]
            rows.append((qh[:, i, None, :] @ S)[:, 0])
        outs.append(torch.stack(rows, dim=1))
    return torch.stack(outs, dim=2)


def sdpa_attention(q, k, v, layer, causal_mask, same=None):
    """Softmax attention through F.scaled_dot_product_attention with kv heads repeated: an independent path.
    Whole rows only (same must be None)."""
    assert same is None
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=layer.causal)
    return o.transpose(1, 2)


def self_test_configs(grouped=True):
    """The self-test's tiny models; grouped=False leaves out the grouped-kv linear layer with scaled RoPE (which
    torch_model.py's model does not build)."""
    common = {"hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "torch_dtype": "bfloat16"}
    causal = {
        **common,
        "architectures": ["LaspLinearLlamaForCausalLM"],
        "model_type": "lasp_linear_llama",
        "vocab_size": 96,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "head_dim": 8,
        "norm_type": "rms_norm",
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 24,
        "tie_word_embeddings": False,
        "layer_types": ["linear_attention", "full_attention"],
        "layer_configs": [
            {
                "layer_type": "linear_attention",
                "causal": True,
                "decay": [0.95, 0.8, 1.0, 0.5],
                "feature_map": "elu_plus_one",
                "output_norm": "rms",
            },
            {"layer_type": "full_attention", "causal": True, "num_key_value_heads": 2, "rope_theta": 10000.0},
        ],
    }
    encoder = {
        **common,
        "architectures": ["LaspLinearLlamaForMaskedLM"],
        "model_type": "lasp_linear_llama",
        "vocab_size": 80,
        "hidden_size": 24,
        "intermediate_size": 40,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "head_dim": 8,
        "norm_type": "layer_norm",
        "layer_norm_eps": 1e-5,
        "max_position_embeddings": 20,
        "tie_word_embeddings": True,
        "layer_types": ["linear_attention", "full_attention"],
        "layer_configs": [
            {
                "layer_type": "linear_attention",
                "causal": False,
                "decay": [1.0, 1.0, 1.0],
                "feature_map": "silu",
                "output_norm": "none",
            },
            {"layer_type": "full_attention", "causal": False, "num_key_value_heads": 1, "rope_theta": 500000.0},
        ],
    }
    # A linearized grouped-query model: the linear layer with 2 kv heads of 4, the softmax one with Llama 3's RoPE
    # scaling over an original 8 positions (so 24 tokens reach its blended and divided frequencies).
    grouped_cfg = json.loads(json.dumps(causal))
    grouped_cfg["layer_configs"][0]["num_key_value_heads"] = 2
    grouped_cfg["layer_configs"][1]["rope_scaling"] = {
        "rope_type": "llama3",
        "factor": 4.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8,
    }
    cases = [("causal-rms-untied", causal, 2, 24, False), ("bidir-layernorm-tied", encoder, 1, 20, True)]
    return cases + [("grouped-linear-scaled-rope", grouped_cfg, 2, 24, False)] if grouped else cases


def make_case(folder, name, cfg_json, batch, seq, masked, seed, doc_ends=None, documents_masked=True):
    """Writes config.json, weights (BF16) and a grads file computed by the independent formulation in float64.
    With doc_ends: the whole rows with a document mask (documents_masked; False: without it, a wrong program's
    gradients), and doc_ends in the grads file."""
    gen = torch.Generator().manual_seed(seed)
    cfg = parse_config(cfg_json, name)
    weights = {}
    for n, shape in expected_parameters(cfg).items():
        if n.endswith("layernorm.weight") or n == "model.norm.weight":
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif n.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[-1])
        weights[n] = t.to(torch.bfloat16)
    ids = torch.randint(0, cfg.vocab - (1 if masked else 0), (batch, seq), generator=gen)
    if masked:  # masked-token prediction: a share of positions replaced by the mask id, the only targets
        pick = torch.rand(batch, seq, generator=gen) < 0.3
        pick[:, 0] = True
        labels = torch.where(pick, ids, torch.full_like(ids, -1))
        ids = torch.where(pick, torch.full_like(ids, cfg.vocab - 1), ids)
    else:  # next-token prediction, already shifted; the last position has no target
        labels = torch.cat([ids[:, 1:], torch.full((batch, 1), -1, dtype=ids.dtype)], dim=1)
    if doc_ends is not None:
        params = {n: t.to(torch.float64).requires_grad_(True) for n, t in weights.items()}
        same = same_document(doc_ends) if documents_masked else None
        total, count = forward_sum(cfg, params, ids, labels, same=same)
        loss_t = total / count
        loss_t.backward()
        loss, grads = loss_t.item(), {n: t.grad.detach() for n, t in params.items()}
    else:
        global linear_attention, softmax_attention
        saved = linear_attention, softmax_attention
        linear_attention, softmax_attention = recurrent_linear_attention, sdpa_attention
        try:
            loss, grads = reference_gradients(cfg, weights, ids, labels, "cpu", torch.float64)
        finally:
            linear_attention, softmax_attention = saved
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), weights)
    out = {n: g.float() for n, g in grads.items()}
    out["input_ids"] = ids.int()
    out["labels"] = labels.int()
    if doc_ends is not None:
        out["doc_ends"] = doc_ends.int()
    out["loss"] = torch.tensor([loss], dtype=torch.float32)
    write_safetensors(os.path.join(folder, "grads.safetensors"), out, {"loss": f"{loss:.17g}"})
    return cfg


def self_test(device):
    """Returns the exit code: 0 when every expectation holds."""
    failures = []

    def expect(what, got, want):
        status = "ok" if got == want else "WRONG"
        print(f"  {what}: exit {got} (expected {want}) {status}")
        if got != want:
            failures.append(what)

    def check(folder, grads=None, **over):
        ns = argparse.Namespace(
            weights=os.path.join(folder, "model.safetensors"),
            grads=grads or os.path.join(folder, "grads.safetensors"),
            config=None,
            device=device,
            dtype=over.get("dtype", "float32"),
            rel_tol=2e-2,
            cos_tol=0.999,
            loss_tol=1e-2,
            recompute=over.get("recompute", "auto"),
            json=over.get("json"),
            builtin_reader=over.get("builtin_reader", False),
            sensitivity=over.get("sensitivity", False),
            sensitivity_factor=0.0,
            probe_factor=over.get("probe_factor", 0.0),
            probes=3,
            bf16_activations=over.get("bf16_activations", False),
        )
        try:
            return run_check(ns, quiet=over.get("quiet", True))
        except BadInput as exc:
            print(f"    (bad input: {exc})")
            return 2

    # RoPE against Hugging Face's own formula: q * cos + rotate_half(q) * sin, cos and sin repeated twice
    x = torch.randn(2, 7, 3, 8, dtype=torch.float64)
    cos, sin = rope_tables(7, 8, 500000.0, torch.float64, "cpu")
    rotate_half = torch.cat((-x[..., 4:], x[..., :4]), dim=-1)
    c2, s2 = torch.cat((cos, cos), -1)[None, :, None], torch.cat((sin, sin), -1)[None, :, None]
    rope_err = (rope(x, cos, sin) - (x * c2 + rotate_half * s2)).abs().max().item()
    print(f"rope vs Hugging Face's rotate_half: max diff {rope_err:.1e}")
    if rope_err > 1e-12:
        failures.append("rope differs from rotate_half")
    with tempfile.TemporaryDirectory(prefix="torch_reference_") as tmp:
        for i, (name, cfg_json, batch, seq, masked) in enumerate(self_test_configs()):
            folder = os.path.join(tmp, name)
            cfg = make_case(folder, name, cfg_json, batch, seq, masked, seed=1234 + i)
            print(f"case {name}: batch {batch} x {seq} tokens")
            report = os.path.join(folder, "report.json")
            expect("agrees (float32)", check(folder, quiet=False, json=report, sensitivity=True), 0)
            with open(report) as f:
                worst = json.load(f)["tensors"][0]
            # float64 against the independent float64 formulation (recurrence, SDPA): only rounding may differ,
            # but the grads file holds F32, so agreement is to about 1e-7
            report64 = os.path.join(folder, "report64.json")
            expect("agrees (float64, recompute)", check(folder, dtype="float64", recompute="on", json=report64), 0)
            with open(report64) as f:
                worst64 = json.load(f)["tensors"][0]
            print(f"  worst: float32 {worst['rel_err']:.1e} ({worst['tensor']}), float64 {worst64['rel_err']:.1e}")
            if worst["rel_err"] > 1e-4 or worst64["rel_err"] > 1e-6:
                failures.append(f"{name}: worst rel err {worst['rel_err']:.1e} / {worst64['rel_err']:.1e} exceeds rounding")
            if name.startswith("causal"):
                expect("builtin safetensors reader", check(folder, builtin_reader=True), 0)
                try:
                    from safetensors.torch import load_file

                    a = load_file(os.path.join(folder, "grads.safetensors"))
                    b, _ = read_safetensors_builtin(os.path.join(folder, "grads.safetensors"))
                    same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
                    print(f"  package and builtin readers read the same tensors: {same}")
                    if not same:
                        failures.append("readers disagree")
                except ImportError:
                    print("  (safetensors package absent: only the builtin reader was exercised)")
            grads, meta = read_safetensors_builtin(os.path.join(folder, "grads.safetensors"))
            victim = "model.layers.1.mlp.up_proj.weight"
            bad = dict(grads)
            bad[victim] = grads[victim] * 1.1
            path = os.path.join(folder, "perturbed.safetensors")
            write_safetensors(path, bad, meta)
            expect(f"{victim} x 1.1 fails", check(folder, grads=path), 1)
            # The probe (verify's conditioning rule) measures a well-conditioned tiny model as such: the error
            # still fails, and the table says what the probe saw.
            report_probe = os.path.join(folder, "probe.json")
            expect(f"{victim} x 1.1 fails with the probe", check(folder, grads=path, probe_factor=3.0, json=report_probe), 1)
            with open(report_probe) as f:
                rows = {r["tensor"]: r for r in json.load(f)["tensors"]}
            if "probe_rel_err" not in rows[victim] or rows[victim]["ill_conditioned"]:
                failures.append(f"{name}: the probe did not run, or called {victim} ill-conditioned")
            elif rows[victim]["probe_rel_err"] > 2e-2:
                failures.append(f"{name}: the probe moved {victim} by {rows[victim]['probe_rel_err']:.1e}")
            bad = dict(grads)
            bad["model.layers.0.self_attn.k_proj.weight"] = grads["model.layers.0.self_attn.k_proj.weight"] + 0.1 * (
                grads["model.layers.0.self_attn.k_proj.weight"].abs().max()
            ) * torch.randn(grads["model.layers.0.self_attn.k_proj.weight"].shape)
            write_safetensors(path, bad, meta)
            expect("k_proj plus 10% noise fails", check(folder, grads=path), 1)
            bad_meta = dict(meta)
            bad_meta["loss"] = repr(float(meta["loss"]) * 1.05)
            write_safetensors(path, grads, bad_meta)
            expect("loss off by 5% fails", check(folder, grads=path), 1)
            bad = {k: v for k, v in grads.items() if k != "model.norm.weight"}
            write_safetensors(path, bad, meta)
            expect("missing model.norm.weight is bad input", check(folder, grads=path), 2)
            bad = dict(grads)
            bad["model.layers.0.mlp.down_proj.weight"] = grads["model.layers.0.mlp.down_proj.weight"].T.contiguous()
            write_safetensors(path, bad, meta)
            expect("transposed down_proj is bad input", check(folder, grads=path), 2)
            if not cfg.tied:
                bad = {k: v for k, v in grads.items() if k != "lm_head.weight"}
                write_safetensors(path, bad, meta)
                expect("missing lm_head.weight (untied) is bad input", check(folder, grads=path), 2)
        # Packed documents: each document run alone (the check's reference, positions from 0) against the whole
        # rows with a document mask at their packed positions (make_case): the same loss and gradients; and a
        # program whose attention crosses the documents fails. Ends at a row's first and last tokens, runs of
        # one-token documents, a row without any.
        ends = torch.zeros(3, 24, dtype=torch.int64)
        for b, at in enumerate(([0, 5, 6, 7, 15, 23], [11], [])):
            ends[b, at] = 1
        for name, cfg_json, _, _, masked in self_test_configs():
            folder = os.path.join(tmp, f"{name}-documents")
            make_case(folder, name, cfg_json, 3, 24, masked, seed=99, doc_ends=ends)
            print(f"case {name} with documents: batch 3 x 24 tokens, {sum(len(document_spans(r)) for r in ends.tolist())} documents")
            expect("each document alone agrees with the masked rows (float64)", check(folder, dtype="float64", json=os.path.join(folder, "r.json")), 0)
            with open(os.path.join(folder, "r.json")) as f:
                worst = json.load(f)["tensors"][0]["rel_err"]
            print(f"  worst rel err {worst:.1e}")
            if worst > 1e-6:
                failures.append(f"{name} with documents: rel err {worst:.1e} exceeds rounding")
            crossing = os.path.join(tmp, f"{name}-crossing")
            make_case(crossing, name, cfg_json, 3, 24, masked, seed=99, doc_ends=ends, documents_masked=False)
            expect("attention across documents fails", check(crossing, dtype="float64"), 1)
    if failures:
        print(f"SELF-TEST FAILED: {'; '.join(failures)}")
        return 1
    print("SELF-TEST PASSED")
    return 0


def read_llmc_tokens(path):
    """The token ids of an llm.c token file (GPT-2: magic 20240520 version 1, uint16; Llama 3: 20240801 version 7,
    uint32), as an int64 tensor; BadInput for anything else."""
    import numpy as np

    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), dtype="<i4")
        if header.size != 256:
            raise BadInput(f"{path}: shorter than llm.c's 1024-byte header")
        kinds = {(20240520, 1): "<u2", (20240801, 7): "<u4"}
        kind = kinds.get((int(header[0]), int(header[1])))
        if kind is None:
            raise BadInput(f"{path}: magic {header[0]} version {header[1]} is not an llm.c token file")
        count = int(header[2])
        ids = np.frombuffer(f.read(), dtype=kind)
    if ids.size != count:
        raise BadInput(f"{path}: the header says {count} tokens, the file holds {ids.size}")
    return torch.from_numpy(ids.astype("int64"))


def run_eval(args):
    """The mean next-token loss of the weights over the first --windows windows of --seq-len tokens of a token
    file, in file order: what the program's `eval` event reports for a checkpoint's step (train.cuh evaluate)."""
    device = pick_device(args.device)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = False
    config_path = args.config or os.path.join(os.path.dirname(os.path.abspath(args.weights)), "config.json")
    cfg = load_config(config_path)
    if all(not layer.causal for layer in cfg.layers):
        raise BadInput("an encoder trains on masked tokens drawn by the program's hash: --eval-tokens needs a causal model")
    if args.seq_len is None or args.seq_len < 2:
        raise BadInput("--eval-tokens needs --seq-len (the spec's seq_len)")
    weights, _ = read_safetensors(args.weights, not args.builtin_reader)
    ids = read_llmc_tokens(args.eval_tokens)
    windows = min(args.windows, (ids.numel() - 1) // args.seq_len)
    if windows < 1:
        raise BadInput(f"{args.eval_tokens} holds fewer than one window of {args.seq_len} tokens and the next")
    if int(ids.max()) >= cfg.vocab:
        raise BadInput(f"{args.eval_tokens}: token id {int(ids.max())} is outside the vocabulary of {cfg.vocab}")
    params = {n: t.to(device=device, dtype=dtype) for n, t in weights.items()}
    total, count = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            window = ids[w * args.seq_len : (w + 1) * args.seq_len + 1]
            x, y = window[:-1][None].to(device), window[1:][None].to(device)
            total += forward_loss(cfg, params, x, y).item() * y.numel()
            count += y.numel()
    loss = total / count
    print(f"model: {config_path}; {windows} windows of {args.seq_len} tokens from {args.eval_tokens}, {args.dtype}")
    print(f"loss {loss:.6f} over {count} targets (perplexity {math.exp(loss):.4f})")
    if args.expect_loss is None:
        return 0
    rel = abs(loss - args.expect_loss) / abs(args.expect_loss)
    ok = rel <= args.loss_tol
    print(f"program's loss {args.expect_loss:.6f}: rel err {rel:.2e} (tol {args.loss_tol:g}) {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="?", help="the program's --save-weights file")
    ap.add_argument("grads", nargs="?", help="the program's --save-grads file")
    ap.add_argument("--config", help="config.json (default: beside the weights)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="the reference's precision")
    # The cosine decides; the max error only catches gross outliers: a bf16 program's whole-model gradients
    # differ from fp32's by about what one bf16 rounding of the weights does (the "sens" columns), and a few
    # near-zero sums move the max error to several times that (bench/results/2026-12-05-whole-model-h100.md).
    ap.add_argument("--rel-tol", type=float, default=1e-1, help="max |prog - ref| / max |ref| per tensor")
    ap.add_argument("--cos-tol", type=float, default=0.999, help="least cosine similarity per tensor")
    ap.add_argument("--loss-tol", type=float, default=1e-2, help="largest relative difference of the loss")
    ap.add_argument(
        "--recompute",
        default="auto",
        choices=["auto", "on", "off"],
        help="recompute attention in the backward (auto: when its saved score matrices would pass 8 GiB)",
    )
    ap.add_argument(
        "--no-sensitivity",
        dest="sensitivity",
        action="store_false",
        help="skip the second reference run with bf16-level weight noise (the 'sens' columns)",
    )
    ap.add_argument(
        "--sensitivity-factor",
        type=float,
        default=0.0,
        help="F > 0: a tensor also passes within F x the reference's own sensitivity (default 0: fixed tolerances)",
    )
    ap.add_argument(
        "--probe-factor",
        type=float,
        default=3.0,
        help="where a tensor fails: rerun the reference with q, k, v moved by one bf16 rounding (--probes draws)"
        " and pass it as ill-conditioned within this many times that movement, as verify does (0: off)",
    )
    ap.add_argument("--probes", type=int, default=3, help="draws of the probe (default 3, as verify)")
    ap.add_argument(
        "--bf16-activations",
        action="store_true",
        help="also run the reference with the activations a bf16 program keeps rounded to bf16, and show how far"
        " its gradients move (an ill-conditioned configuration moves far)",
    )
    ap.add_argument(
        "--eval-tokens",
        help="instead of gradients: the mean loss of WEIGHTS (a checkpoint's model.safetensors) over the first"
        " --windows windows of this llm.c token file, as the program's `eval` event reports it",
    )
    ap.add_argument("--seq-len", type=int, help="with --eval-tokens: the spec's seq_len")
    ap.add_argument("--windows", type=int, default=32, help="with --eval-tokens: windows read (the program's: 32)")
    ap.add_argument("--expect-loss", type=float, help="with --eval-tokens: the program's loss, checked within --loss-tol")
    ap.add_argument("--json", help="also write the table as JSON here")
    ap.add_argument("--builtin-reader", action="store_true", help="read safetensors without the package")
    ap.add_argument("--self-test", action="store_true", help="check this script on tiny random models")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            return self_test(pick_device(args.device or "cpu"))
        if args.eval_tokens:
            if not args.weights:
                ap.error("give WEIGHTS (a checkpoint's model.safetensors) with --eval-tokens")
            return run_eval(args)
        if not args.weights or not args.grads:
            ap.error("give WEIGHTS and GRADS (or --self-test, or --eval-tokens)")
        return run_check(args)
    except BadInput as exc:
        print(f"torch_reference: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
