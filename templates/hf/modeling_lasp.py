# Written by lasp beside config.json: lasp's model (linear and softmax attention layers in any pattern) in
# PyTorch for Hugging Face transformers, so that a checkpoint loads, evaluates, generates and fine-tunes with
# the tools people already use:
#
#     from transformers import AutoModelForCausalLM
#     model = AutoModelForCausalLM.from_pretrained("runs/NAME/checkpoints/step-000400", trust_remote_code=True)
#
# (AutoModelForMaskedLM for a model whose layers are all bidirectional; AutoTokenizer where the spec names a
# `tokenizer`). It computes what the generated program computes, in the checkpoint's dtype with the attention's
# sums in fp32 (fp64 for an fp64 model). It is written apart from lasp's PyTorch reference (the lasp repository's
# bench/gpu/torch_reference.py, which the program's losses and gradients were checked against), and
# bench/gpu/hf_modeling_check.py there compares the two:
# - x = embed[ids]; per layer x += Attn(Norm(x)), x += down(silu(gate(Norm(x))) * up(Norm(x))); final Norm;
#   logits = x W^T (W = lm_head, or the embedding when tied).
# - Linear attention: o_i = sum_{j <= i} lam_h^(i-j) (phi(q_i) . phi(k_j)) v_j, no 1/sqrt(d) scale (every j
#   when bidirectional), then each head's output RMS-normed without a weight (`output_norm rms`). It runs in
#   chunks of 64 tokens carrying a d x d state per head, and generation carries that state: each new token
#   costs the same whatever the length so far.
# - Softmax attention: RoPE (transformers' rotate_half pairing, Llama 3's scaling) on q and k, grouped kv heads,
#   scale 1/sqrt(d), causal or not; generation keeps its keys and values.
# Padding: a 0 in attention_mask takes the token out of every layer's keys and values (left padding, as batched
# generation pads, leaves the other rows' results unchanged). Tested with transformers 4.57 and 5.17-5.18 and
# PyTorch 2.11-2.13.
# Fine-tuning: `model.gradient_checkpointing_enable()` recomputes each layer in the backward. `kernels="fast"`
# (a from_pretrained argument, or config.kernels) runs on a GPU what the default, "exact", computes in fp32:
# causal linear layers on flash-linear-attention's chunk_simple_gla (`pip install flash-linear-attention`; fp32
# in and out, as the loop) where it imports, and softmax attention on 16-bit q, k, v (rounded after RoPE,
# as the program rounds them), so that SDPA takes its flash kernels; "fla" is "fast" with fla required.
import math

import torch
import torch.nn.functional as F
from torch import nn

import transformers
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast, MaskedLMOutput

try:
    from transformers import PreTrainedConfig as _ConfigBase
except ImportError:  # transformers 4
    from transformers import PretrainedConfig as _ConfigBase

_TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5
CHUNK = 64
KERNELS = ("exact", "fast", "fla")
_FLA = []  # [chunk_simple_gla or None, why not], filled on first use


def _fla():
    """fla's chunk_simple_gla, or None where flash-linear-attention does not import (the reason in _FLA[1])."""
    if not _FLA:
        try:
            from fla.ops.simple_gla import chunk_simple_gla

            _FLA.extend((chunk_simple_gla, None))
        except Exception as exc:  # noqa: BLE001 - any import failure means: no fla
            _FLA.extend((None, f"{type(exc).__name__}: {exc}"))
    return _FLA[0]


FEATURE_MAPS = {
    "identity": lambda x: x,
    "elu_plus_one": lambda x: F.elu(x) + 1.0,
    "relu": F.relu,
    "silu": F.silu,
}


class LaspLinearLlamaConfig(_ConfigBase):
    """config.json as lasp writes it (src/model/hf-config.ts): Llama's keys, `layer_types` and one entry of
    `layer_configs` per layer with that layer's attention settings."""

    model_type = "lasp_linear_llama"

    def __init__(
        self,
        vocab_size=256,
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=2,
        num_attention_heads=4,
        head_dim=None,
        norm_type="rms_norm",
        rms_norm_eps=1e-5,
        layer_norm_eps=None,
        max_position_embeddings=2048,
        rope_theta=None,
        rope_scaling=None,
        layer_types=None,
        layer_configs=None,
        tie_word_embeddings=False,
        use_cache=True,
        kernels="exact",
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.norm_type = norm_type
        self.rms_norm_eps = rms_norm_eps
        self.layer_norm_eps = layer_norm_eps
        self.max_position_embeddings = max_position_embeddings
        # The softmax layers' RoPE when they share it; each layer reads its own from layer_configs.
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        if layer_configs is None:
            layer_configs = [
                {"layer_type": "linear_attention", "causal": True, "decay": [1.0] * num_attention_heads,
                 "feature_map": "identity", "output_norm": "rms"}
            ] * num_hidden_layers
        self.layer_configs = layer_configs
        self.layer_types = layer_types if layer_types is not None else [c["layer_type"] for c in layer_configs]
        self.tie_word_embeddings = tie_word_embeddings
        self.use_cache = use_cache
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
        self.kernels = kernels
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        if len(self.layer_configs) != self.num_hidden_layers:
            raise ValueError(
                f"layer_configs lists {len(self.layer_configs)} layers; num_hidden_layers is {self.num_hidden_layers}"
            )

    @property
    def norm_eps(self):
        return self.rms_norm_eps if self.norm_type == "rms_norm" else self.layer_norm_eps


def _constant(module, name, values, dtype, device):
    """A module's tensor of plain numbers, made once per dtype and device: a copy onto a GPU at every call would
    make the host wait for the work queued before it."""
    made = module.__dict__.setdefault("_constants", {})
    key = (name, dtype, device)
    if key not in made:
        made[key] = torch.tensor(values, dtype=dtype, device=device)
    return made[key]


def _kernels(config):
    """config.kernels, read at each call: it may be set after loading (from_pretrained sets its arguments on the
    config after __init__, so the value is checked here)."""
    kernels = getattr(config, "kernels", "exact")
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    return kernels


def _sum_dtype(dtype):
    """The attention's sums: fp32, or fp64 for an fp64 model."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class LaspNorm(nn.Module):
    """RMSNorm (a weight) or LayerNorm (a weight and a bias), computed in fp32 or better."""

    def __init__(self, config):
        super().__init__()
        self.rms = config.norm_type == "rms_norm"
        self.eps = config.norm_eps
        self.weight = nn.Parameter(torch.ones(config.hidden_size))
        self.bias = None if self.rms else nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, x):
        h = x.to(_sum_dtype(x.dtype))
        if self.rms:
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.to(h.dtype)
        else:
            h = F.layer_norm(h, (h.shape[-1],), self.weight.to(h.dtype), self.bias.to(h.dtype), self.eps)
        return h.to(x.dtype)


class LaspMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def _heads(x, heads, d):
    """[B, T, heads * d] -> [B, heads, T, d]."""
    return x.view(x.shape[0], x.shape[1], heads, d).transpose(1, 2)


def _drop_padding(x, keep):
    """x [B, H, T, d] with the tokens where keep [B, T] is False set to 0 (where, not a product: 0 * inf is nan)."""
    return x if keep is None else torch.where(keep[:, None, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))


class LaspLinearAttention(nn.Module):
    def __init__(self, config, layer_config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.kv_heads = layer_config.get("num_key_value_heads", self.heads)
        self.d = config.head_dim
        self.causal = layer_config["causal"]
        self.phi = FEATURE_MAPS[layer_config.get("feature_map", "identity")]
        self.output_norm = layer_config.get("output_norm", "none") == "rms"
        self.eps = config.norm_eps
        self.config = config  # for _kernels
        # Plain numbers, not buffers: from_pretrained leaves buffers that no file holds uninitialised.
        self.decay = [float(x) for x in layer_config.get("decay", [1.0] * self.heads)]
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.d, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.d, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.d, bias=False)
        self.o_proj = nn.Linear(self.heads * self.d, config.hidden_size, bias=False)

    def forward(self, x, keep, positions, cache, index):
        B, T, _ = x.shape
        sums = _sum_dtype(x.dtype)
        keep = keep[:, -T:] if keep is not None else None
        state = cache.linear_state(index) if cache is not None and self.causal else None
        # One token at a time (generation) is one state update: the loop's, not a chunk kernel compiled for it.
        if self.causal and self._on_fla(x) and T > 1:
            o, state = self._fla_causal(x, keep, state, cache is not None)
            o = o.to(sums)
        else:
            q = self.phi(_heads(self.q_proj(x), self.heads, self.d)).to(sums)
            k = self.phi(_heads(self.k_proj(x), self.kv_heads, self.d)).to(sums)
            v = _heads(self.v_proj(x), self.kv_heads, self.d).to(sums)
            group = self.heads // self.kv_heads
            k = _drop_padding(k, keep).repeat_interleave(group, dim=1)  # query head h reads kv head h // group
            v = _drop_padding(v, keep).repeat_interleave(group, dim=1)
            if self.causal:
                o, state = self._causal(q, k, v, state)
            else:
                o = q @ (k.transpose(-1, -2) @ v)
            o = o.transpose(1, 2)  # [B, T, H, d]
        if cache is not None and self.causal:
            cache.set_linear_state(index, state)
        if self.output_norm:
            o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + self.eps)
        o = o.to(x.dtype).reshape(B, T, self.heads * self.d)
        return self.o_proj(o)

    def _on_fla(self, x):
        """Whether this call runs on fla: kernels "fast" takes it on a GPU in 16 or 32 bits where fla imports,
        "fla" requires it, "exact" never."""
        kernels = _kernels(self.config)
        if kernels == "exact":
            return False
        usable = x.is_cuda and x.dtype != torch.float64
        if kernels == "fast":
            return usable and _fla() is not None
        if not usable:
            raise ValueError(f"kernels 'fla' runs on a GPU in 16 or 32 bits, not {x.device} in {x.dtype}")
        if _fla() is None:
            raise ImportError(f"kernels 'fla' needs flash-linear-attention ({_FLA[1]})")
        return True

    def _fla_causal(self, x, keep, state, want_state):
        """The causal core on fla's chunk_simple_gla: [B, T, H, d] in the sums' dtype (fp32), each head's decay as
        its g_gamma = log(lam), no 1/sqrt(d) scale; state [B, H, d, d] fp32 (the chunk loop's layout) or None.
        Not in 16 bits: fla's 16-bit operands lose the precision of a token whose output is small beside the
        sequence's largest, and the output norm's backward (1/rms) makes that gradients off by 10-55x on a small
        model checked on an H100 (bench/results/2026-12-07-hf-fla-h100.md); in fp32 they agree."""
        B, T, _ = x.shape
        sums = _sum_dtype(x.dtype)
        q = self.phi(self.q_proj(x).view(B, T, self.heads, self.d)).to(sums)
        k = self.phi(self.k_proj(x).view(B, T, self.kv_heads, self.d)).to(sums)
        v = self.v_proj(x).view(B, T, self.kv_heads, self.d).to(sums)
        if keep is not None:
            zero = torch.zeros((), dtype=sums, device=x.device)
            k, v = torch.where(keep[:, :, None, None], k, zero), torch.where(keep[:, :, None, None], v, zero)
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
        gamma = _constant(self, "log_decay", [math.log(lam) for lam in self.decay], torch.float32, x.device)
        o, state = _fla()(q.contiguous(), k.contiguous(), v.contiguous(), g_gamma=gamma, scale=1.0,
                          initial_state=state.float() if state is not None else None, output_final_state=want_state)
        return o, state

    def _causal(self, q, k, v, state):
        """Chunks of CHUNK tokens: the in-chunk products masked by lam^(i-j), plus q times the state of the
        tokens before the chunk, which then takes the chunk in. state [B, H, d, d] or None (zero)."""
        B, H, T, d = q.shape
        if state is None:
            state = q.new_zeros(B, H, d, v.shape[-1])
        state = state.to(q.dtype)  # fla's is fp32 whatever the model's dtype
        lam = _constant(self, "decay", self.decay, torch.float64, q.device)
        i = torch.arange(min(T, CHUNK), device=q.device, dtype=torch.float64)
        dist = i[:, None] - i[None, :]
        mask = torch.where(dist >= 0, lam[:, None, None] ** dist.clamp(min=0), 0.0).to(q.dtype)  # [H, C, C]
        into_q = (lam[:, None] ** (i + 1)).to(q.dtype)[:, :, None]  # [H, C, 1]: lam^(i+1)
        out = torch.empty(B, H, T, v.shape[-1], dtype=q.dtype, device=q.device)
        for c0 in range(0, T, CHUNK):
            qc, kc, vc = q[:, :, c0 : c0 + CHUNK], k[:, :, c0 : c0 + CHUNK], v[:, :, c0 : c0 + CHUNK]
            C = qc.shape[2]
            into_state = (lam[:, None] ** (C - 1 - i[:C])).to(q.dtype)[:, :, None]  # lam^(C-1-j)
            out[:, :, c0 : c0 + C] = ((qc @ kc.transpose(-1, -2)) * mask[:, :C, :C]) @ vc + (qc * into_q[:, :C]) @ state
            state = (lam**C).to(q.dtype)[:, None, None] * state + (kc * into_state).transpose(-1, -2) @ vc
        return out, state


def _rope_inv_freq(d, theta, scaling):
    """theta^(-2e/d), e < d/2, in fp64, scaled as transformers scales Llama 3's (`llama3`) or linearly."""
    inv = [float(theta) ** (-2.0 * e / d) for e in range(d // 2)]
    kind = None if scaling is None else scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return inv
    factor = float(scaling["factor"])
    if kind == "linear":
        return [f / factor for f in inv]
    if kind != "llama3":
        raise ValueError(f"rope_scaling of rope_type {kind!r} is not one lasp writes (llama3 or linear)")
    low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
    old = float(scaling["original_max_position_embeddings"])
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


def _rope(x, cos, sin):
    """x [B, H, T, d]; cos, sin [B, T, d/2]: x'[e] = x[e] cos - x[e+d/2] sin, x'[e+d/2] = x[e+d/2] cos + x[e] sin."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None], sin[:, None]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


class LaspSoftmaxAttention(nn.Module):
    def __init__(self, config, layer_config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.kv_heads = layer_config["num_key_value_heads"]
        self.d = config.head_dim
        self.causal = layer_config["causal"]
        self.inv_freq = _rope_inv_freq(self.d, layer_config["rope_theta"], layer_config.get("rope_scaling"))
        self.config = config  # for _kernels
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.d, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.d, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.d, bias=False)
        self.o_proj = nn.Linear(self.heads * self.d, config.hidden_size, bias=False)

    def forward(self, x, keep, positions, cache, index):
        B, T, _ = x.shape
        sums = _sum_dtype(x.dtype)
        inv_freq = _constant(self, "inv_freq", self.inv_freq, torch.float64, x.device)
        angle = positions.to(device=x.device, dtype=torch.float64)[..., None] * inv_freq
        cos, sin = angle.cos().to(sums), angle.sin().to(sums)
        att = self._attention_dtype(x)
        q = _rope(_heads(self.q_proj(x), self.heads, self.d).to(sums), cos, sin).to(att)
        k = _rope(_heads(self.k_proj(x), self.kv_heads, self.d).to(sums), cos, sin).to(att)
        v = _heads(self.v_proj(x), self.kv_heads, self.d).to(att)
        past = 0
        if cache is not None:
            past = cache.seen
            k, v = cache.keys_values(index, k, v)
        group = self.heads // self.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        if keep is None and (past == 0 or not self.causal):
            # Every key a token: PyTorch's fused kernels (flash attention on a GPU), causal from the top left.
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal and T > 1)
        else:
            keys = k.shape[2]
            # visible[b, i, j]: key j is a token (not padding) and, when causal, not after query i.
            visible = torch.ones(B, T, keys, dtype=torch.bool, device=x.device)
            if keep is not None:
                visible = visible & keep[:, None, -keys:]
            position = torch.arange(T, device=x.device)[:, None] + past
            key = torch.arange(keys, device=x.device)[None, :]
            if self.causal:
                visible = visible & (key <= position)[None]
            # A padding query sees only itself (its row would otherwise be empty: nan); no token reads it.
            visible = visible | (key == position)[None]
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=visible[:, None])
        o = o.to(x.dtype).transpose(1, 2).reshape(B, T, self.heads * self.d)
        return self.o_proj(o)

    def _attention_dtype(self, x):
        """q, k and v's dtype: the model's 16 bits on a GPU with kernels "fast" or "fla", else the sums' (fp32)."""
        fast = _kernels(self.config) != "exact" and x.is_cuda and x.dtype in (torch.bfloat16, torch.float16)
        return x.dtype if fast else _sum_dtype(x.dtype)


class LaspDecoderLayer(nn.Module):
    gradient_checkpointing = False  # set by model.gradient_checkpointing_enable(), with _gradient_checkpointing_func

    def __init__(self, config, index):
        super().__init__()
        layer_config = config.layer_configs[index]
        kind = layer_config["layer_type"]
        if kind == "linear_attention":
            self.self_attn = LaspLinearAttention(config, layer_config)
        elif kind == "full_attention":
            self.self_attn = LaspSoftmaxAttention(config, layer_config)
        else:
            raise ValueError(f"layer_configs[{index}]: layer_type {kind!r} is not linear_attention or full_attention")
        self.input_layernorm = LaspNorm(config)
        self.post_attention_layernorm = LaspNorm(config)
        self.mlp = LaspMLP(config)
        self.index = index

    def forward(self, x, keep, positions, cache):
        x = x + self.self_attn(self.input_layernorm(x), keep, positions, cache, self.index)
        return x + self.mlp(self.post_attention_layernorm(x))


class LaspCache:
    """What generation carries between calls: each causal linear layer's state [B, H, d, d], each softmax
    layer's keys and values [B, kv_heads, tokens, d], and how many tokens were seen."""

    def __init__(self):
        self.seen = 0
        self.states = {}
        self.kv = {}

    def linear_state(self, index):
        return self.states.get(index)

    def set_linear_state(self, index, state):
        self.states[index] = state

    def keys_values(self, index, k, v):
        if index in self.kv:
            pk, pv = self.kv[index]
            k, v = torch.cat((pk, k), dim=2), torch.cat((pv, v), dim=2)
        self.kv[index] = (k, v)
        return k, v

    def get_seq_length(self, layer_idx=0):
        return self.seen

    def reorder_cache(self, beam_idx):
        self.states = {i: s.index_select(0, beam_idx.to(s.device)) for i, s in self.states.items()}
        self.kv = {i: (k.index_select(0, beam_idx.to(k.device)), v.index_select(0, beam_idx.to(v.device)))
                   for i, (k, v) in self.kv.items()}


class LaspLinearLlamaPreTrainedModel(PreTrainedModel):
    config_class = LaspLinearLlamaConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LaspDecoderLayer"]

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, LaspNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class LaspLinearLlamaModel(LaspLinearLlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LaspDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = LaspNorm(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, cache=None,
                output_hidden_states=False):
        _kernels(self.config)  # a wrong value is named even where no layer reads it
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        B, T = x.shape[:2]
        past = cache.seen if cache is not None else 0
        keep = None
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape[0] != B or attention_mask.shape[1] != past + T:
                raise ValueError(
                    f"attention_mask must be [batch, tokens so far] = [{B}, {past + T}], got {list(attention_mask.shape)}"
                )
            keep = attention_mask.to(device=x.device).bool()
        if position_ids is None:
            if keep is not None:  # left padding: each row counts its positions from its first token
                position_ids = (keep.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
            else:
                position_ids = torch.arange(past, past + T, device=x.device)[None].expand(B, T)
        # keep covers every token so far: linear layers read this call's tokens of it, softmax layers all (the cache).
        hidden = [x] if output_hidden_states else None
        for layer in self.layers:
            # A recomputed layer would take its tokens into a cache twice: with a cache, layers are not recomputed.
            if layer.gradient_checkpointing and self.training and cache is None and torch.is_grad_enabled():
                x = layer._gradient_checkpointing_func(layer.__call__, x, keep, position_ids, None)
            else:
                x = layer(x, keep, position_ids, cache)
            if output_hidden_states:
                hidden.append(x)
        x = self.norm(x)
        if cache is not None:
            cache.seen += T
        return x, hidden


class LaspLinearLlamaForCausalLM(LaspLinearLlamaPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"} if _TRANSFORMERS_5 else ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.model = LaspLinearLlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    @classmethod
    def _supports_default_dynamic_cache(cls):
        return False  # generation carries LaspCache, which forward makes

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, inputs_embeds=None,
                                      use_cache=True, **kwargs):
        if past_key_values is not None and past_key_values.seen > 0:
            input_ids, inputs_embeds = input_ids[:, past_key_values.seen :], None
        inputs = {"past_key_values": past_key_values, "attention_mask": attention_mask, "use_cache": use_cache}
        if inputs_embeds is not None:
            inputs["inputs_embeds"] = inputs_embeds
        else:
            inputs["input_ids"] = input_ids
        return inputs

    def _reorder_cache(self, past_key_values, beam_idx):
        past_key_values.reorder_cache(beam_idx)
        return past_key_values

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_hidden_states=None, return_dict=None,
                logits_to_keep=0, **kwargs):
        # Training keeps no cache unless asked: the next call would not continue these tokens.
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        cache = past_key_values if past_key_values is not None else (LaspCache() if use_cache else None)
        x, hidden = self.model(input_ids, attention_mask, position_ids, inputs_embeds, cache, bool(output_hidden_states))
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(x)
        loss = None
        if labels is not None:  # the next token's: labels shifted here, -100 ignored (Hugging Face's convention)
            loss = F.cross_entropy(
                logits[:, :-1].to(_sum_dtype(logits.dtype)).reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=-100,
            )
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, past_key_values=cache if use_cache else None,
            hidden_states=tuple(hidden) if hidden is not None else None,
        )


class LaspLinearLlamaForMaskedLM(LaspLinearLlamaPreTrainedModel):
    """A model whose layers are all bidirectional (`causal false`), trained by masked-token prediction: the mask
    token is config.mask_token_id (the vocabulary's last id)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"} if _TRANSFORMERS_5 else ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.model = LaspLinearLlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        x, hidden = self.model(input_ids, attention_mask, position_ids, inputs_embeds, None, bool(output_hidden_states))
        logits = self.lm_head(x)
        loss = None
        if labels is not None:  # labels at the masked positions, -100 elsewhere
            loss = F.cross_entropy(logits.to(_sum_dtype(logits.dtype)).reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                                   ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=tuple(hidden) if hidden is not None else None)
