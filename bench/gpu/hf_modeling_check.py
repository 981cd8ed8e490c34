"""Checks templates/hf/modeling_lasp.py, the transformers classes lasp writes beside config.json, against
bench/gpu/torch_reference.py (the plain-PyTorch model that the program's losses and gradients were checked
against on GPUs), on the CPU in float64.

Usage (from the repository root, with torch, transformers and safetensors installed, after `npm run build`):
    python3 bench/gpu/hf_modeling_check.py [--keep DIR]
    python3 bench/gpu/hf_modeling_check.py --checkpoint DIR --eval-tokens FILE --seq-len L [--windows 32]
        [--expect-loss X] [--device cpu|cuda]

The second form loads a checkpoint the program wrote (model.safetensors, config.json, modeling_lasp.py) with
`AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)` in fp32 and prints its mean next-token loss
over the first windows of L tokens of an llm.c token file, the windows of the program's `eval` event; with
--expect-loss (that event's loss) it exits 1 beyond a relative 1e-2 (bf16 weights, the program's bf16
activations).

For each small model of bench/gpu/hf-configs.mjs (linear layers with every decay, feature map and output norm,
grouped kv heads, a hybrid with Llama 3's RoPE scaling, LayerNorm, an encoder, a plain Llama): writes lasp's
config.json, random bf16 weights with Hugging Face's names and the modeling file into a folder, loads it with
`AutoModelForCausalLM` / `AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True)` and checks
- the loss on random tokens equals the reference's (float64, relative 1e-10; 1e-5 for transformers' own Llama,
  which computes RoPE's angles and the loss in fp32), and its gradients (100 times that);
- tied embeddings are one tensor; the bf16 load's loss is within 2e-2 of the float64 one;
- training with gradient_checkpointing_enable() runs each layer twice and gives the same loss and gradients,
  bit for bit;
- kernels "fast": causal linear layers' call of fla's chunk_simple_gla, with a token-by-token stand-in of the
  function, gives the chunk loop's logits (forward, cache, left padding; 1e-6: the decay and the state are fp32
  there); softmax layers on bf16 q, k, v give the exact logits within 3e-2 (forward, cache, left padding);
- causal models: logits computed token by token through the cache equal one forward's (1e-10); greedy
  generation with the cache equals generation without it; a left-padded row of a batch gets the logits and the
  generated tokens it gets alone;
- `tokenizer bytes`: AutoTokenizer encodes text to its UTF-8 bytes and decodes them back, and transformers'
  text-generation pipeline runs on the folder; an encoder's `<mask>` is config.json's mask_token_id and the
  fill-mask pipeline runs.
Prints one line per check and exits 1 if any failed (2: a missing package or a bad setup).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

try:
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM
except ImportError as exc:
    print(f"hf_modeling_check: {exc.name} is not installed (pip install torch transformers safetensors)", file=sys.stderr)
    sys.exit(2)

import torch_reference as ref  # noqa: E402

MODELING = os.path.join(ROOT, "templates", "hf", "modeling_lasp.py")
failures = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))


def stepped_logits(model, ids, prompt, end):
    """The logits of ids[:, :end] from a prompt of `prompt` tokens, then one token at a time through the cache."""
    step = model(input_ids=ids[:, :prompt], use_cache=True)
    cache, parts = step.past_key_values, [step.logits]
    for t in range(prompt, end):
        step = model(input_ids=ids[:, t : t + 1], past_key_values=cache, use_cache=True)
        cache = step.past_key_values
        parts.append(step.logits)
    return torch.cat(parts, dim=1)


def masked_and_alone(model, ids, pad, end):
    """Row 1 of ids[:, :end] with its first `pad` tokens masked out by attention_mask, in the batch: its logits
    there and alone (ids[1, pad:end])."""
    mask = torch.ones_like(ids[:, :end])
    mask[1, :pad] = 0
    padded = model(input_ids=ids[:, :end], attention_mask=mask, use_cache=False).logits[1, pad:]
    return padded, model(input_ids=ids[1:, pad:end], use_cache=False).logits[0]


def random_weights(cfg, generator):
    """bf16 weights (what the program writes) with the reference's names and shapes."""
    out = {}
    for name, shape in ref.expected_parameters(cfg).items():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            t = 1 + 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
        elif name.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=generator, dtype=torch.float64) / shape[-1] ** 0.5
        out[name] = t.to(torch.bfloat16)
    return out


def load(folder, encoder, dtype):
    auto = AutoModelForMaskedLM if encoder else AutoModelForCausalLM
    return auto.from_pretrained(folder, trust_remote_code=True, dtype=dtype).eval()


def check_model(folder, generator):
    name = os.path.basename(folder)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    encoder = config["architectures"][0].endswith("MaskedLM")
    # transformers' own Llama computes RoPE's angles and the loss in fp32, the modeling file in the model's dtype.
    tol = 1e-10 if "auto_map" in config else 1e-5
    cfg = ref.parse_config(config, os.path.join(folder, "config.json"))
    weights = random_weights(cfg, generator)
    save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})
    if "auto_map" in config:
        shutil.copy(MODELING, os.path.join(folder, "modeling_lasp.py"))
    model = load(folder, encoder, torch.float64)
    check(f"{name} class", type(model).__name__ == config["architectures"][0], type(model).__name__)

    # The loss against the reference's (the reference's labels are already shifted; -1 = none).
    B, N = 2, 150  # more than two 64-token chunks
    ids = torch.randint(0, cfg.vocab, (B, N), generator=generator)
    if encoder:
        labels = torch.where(torch.rand(B, N, generator=generator) < 0.3, ids, torch.full_like(ids, -100))
        ref_labels = torch.where(labels >= 0, labels, -1)
    else:
        labels = ids
        ref_labels = torch.cat((ids[:, 1:], torch.full((B, 1), -1)), dim=1)
    params = {k: v.to(torch.float64).requires_grad_(True) for k, v in weights.items()}
    ref_loss = ref.forward_loss(cfg, params, ids, ref_labels)
    ref_loss.backward()
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    err = abs(float(out.loss.detach()) - float(ref_loss.detach())) / abs(float(ref_loss.detach()))
    check(f"{name} loss", err < tol, f"{float(out.loss.detach()):.12f} vs reference {float(ref_loss.detach()):.12f} (rel {err:.1e})")
    named = dict(model.named_parameters())
    worst = max(rel(named[k].grad, params[k].grad) for k in params)
    check(f"{name} gradients", worst < 100 * tol, f"{len(params)} tensors, worst relative {worst:.1e}")
    if cfg.tied:
        same = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        check(f"{name} tied head", same, "lm_head.weight is model.embed_tokens.weight")
    if "auto_map" in config:
        check_checkpointing(model, name, ids, labels, float(out.loss.detach()), named)
        if any(c["layer_type"] == "linear_attention" and c["causal"] for c in config["layer_configs"]):
            check_fla_call(model, name, ids)
        if any(c["layer_type"] == "full_attention" for c in config["layer_configs"]):
            check_fast_softmax(model, name, ids)

    low = load(folder, encoder, "auto")
    with torch.no_grad():
        low_loss = float(low(input_ids=ids, labels=labels).loss)
    err = abs(low_loss - float(out.loss.detach())) / abs(float(out.loss.detach()))
    check(f"{name} {low.dtype} load", low.dtype == torch.bfloat16 and err < 2e-2, f"loss {low_loss:.5f} (rel {err:.1e})")
    if encoder:
        if os.path.exists(os.path.join(folder, "tokenizer.json")):
            check_mask_token(folder, name, config["mask_token_id"])
        return
    if os.path.exists(os.path.join(folder, "tokenizer.json")):
        check_tokenizer(folder, name)

    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        # Token by token through the cache, after a prompt of 70 (a chunk and a part).
        err = rel(stepped_logits(model, ids, 70, 90), full[:, :90])
        check(f"{name} cache", err < tol, f"90 tokens, 20 of them one at a time: relative {err:.1e}")

        prompt = ids[:, :70]
        a = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=True)
        b = model.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=False)
        check(f"{name} generate", a.shape == (B, 82) and torch.equal(a, b), f"12 greedy tokens, cache {a[0, 70:].tolist()}")

        # Row 1 left-padded by 25 tokens in a batch with row 0: its logits and tokens as alone.
        pad = 25
        short = ids[1:, pad:70]
        batch = torch.stack((ids[0, :70], torch.cat((torch.zeros(pad, dtype=ids.dtype), short[0]))))
        mask = torch.ones_like(batch)
        mask[1, :pad] = 0
        both = model(input_ids=batch, attention_mask=mask, use_cache=False).logits
        alone = model(input_ids=short, use_cache=False).logits
        err = rel(both[1, pad:], alone[0])
        check(f"{name} left padding", err < tol, f"{pad} pad tokens: relative {err:.1e}")
        gb = model.generate(batch, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
        ga = model.generate(short, max_new_tokens=8, do_sample=False)
        check(f"{name} padded generate", torch.equal(gb[1, 70:], ga[0, 70 - pad :]), f"{gb[1, 70:].tolist()}")


def check_checkpointing(model, name, ids, labels, loss, named):
    """Training with gradient_checkpointing_enable() (each layer recomputed in the backward) gives the loss and
    the gradients of training without it, bit for bit on the CPU in fp64."""
    plain = {k: p.grad.clone() for k, p in named.items()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model.train()
    calls = []  # each layer's forward runs, the recomputation's included (forward hooks miss those)

    def counted(forward):
        return lambda *a, **k: calls.append(1) or forward(*a, **k)

    for layer in model.model.layers:
        layer.forward = counted(layer.forward)
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    for layer in model.model.layers:
        del layer.forward
    layers = len(model.model.layers)
    same = float(out.loss.detach()) == loss and all(torch.equal(named[k].grad, plain[k]) for k in plain)
    check(f"{name} gradient checkpointing", same and len(calls) == 2 * layers,
          f"{len(calls)} layer calls for {layers} layers; loss and {len(plain)} gradients {'the same bits' if same else 'DIFFER'}")
    model.gradient_checkpointing_disable()
    model.eval()
    # from_pretrained sets its arguments on the config after __init__: a wrong `kernels` is named at the call.
    model.config.kernels = "fastest"
    try:
        model(input_ids=ids[:, :8])
        message = "no error"
    except ValueError as exc:
        message = str(exc)
    finally:
        model.config.kernels = "exact"
    check(f"{name} kernels value", message == "kernels must be one of exact, fast, fla, got 'fastest'", message)


def stand_in_chunk_simple_gla(q, k, v, g_gamma=None, scale=None, initial_state=None, output_final_state=False):
    """fla's chunk_simple_gla as its documentation defines it, token by token in fp64: q, k, v [B, T, H, d];
    h_t = exp(g_gamma) h_(t-1) + k_t^T v_t from h_(-1) = initial_state [B, H, d, d]; o_t = scale q_t h_t."""
    B, T, H, d = q.shape
    h = torch.zeros(B, H, d, v.shape[-1], dtype=torch.float64) if initial_state is None else initial_state.double()
    gamma = torch.exp(g_gamma.double())[None, :, None, None]
    out = []
    for t in range(T):
        h = gamma * h + k[:, t].double()[..., :, None] * v[:, t].double()[..., None, :]
        out.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t].double(), h))
    return torch.stack(out, dim=1).to(q.dtype), (h.float() if output_final_state else None)


def check_fla_call(model, name, ids):
    """The causal linear layers' call of fla's chunk_simple_gla (kernels "fast" / "fla") (layout, each head's decay as g_gamma, no scale,
    grouped kv heads, padding, the cache's state in and out), with a stand-in of the function in its place: the
    same logits as the chunk loop, one forward, through the cache and left-padded. fla's own kernels against the
    loop: bench/gpu/hf_fla_check.py on a GPU."""
    modeling = sys.modules[type(model).__module__]
    attention = modeling.LaspLinearAttention
    saved_fla, saved_on = list(modeling._FLA), attention._on_fla
    with torch.no_grad():
        loop = model(input_ids=ids, use_cache=False).logits
        modeling._FLA[:] = [stand_in_chunk_simple_gla, None]
        attention._on_fla = lambda self, x: True
        try:
            full = model(input_ids=ids, use_cache=False).logits
            stepped = stepped_logits(model, ids, 70, 80)
            padded, alone = masked_and_alone(model, ids, 25, 70)
        finally:
            modeling._FLA[:], attention._on_fla = saved_fla, saved_on
    errs = (rel(full, loop), rel(stepped, loop[:, :80]), rel(padded, alone))
    # g_gamma and the returned state are fp32 in fla's interface: fp32's rounding in an fp64 model.
    check(f"{name} fla call", max(errs) < 1e-6,
          "stand-in chunk_simple_gla: forward, cache, left padding relative " + ", ".join(f"{e:.1e}" for e in errs))


def check_fast_softmax(model, name, ids):
    """kernels "fast" on a GPU gives softmax attention bf16 q, k, v (SDPA's flash kernels): with that dtype forced
    here, one forward, the cache and left padding give the exact logits within bf16's rounding."""
    attention = sys.modules[type(model).__module__].LaspSoftmaxAttention
    saved = attention._attention_dtype
    causal = hasattr(model, "generate")
    with torch.no_grad():
        exact = model(input_ids=ids, use_cache=False).logits
        attention._attention_dtype = lambda self, x: torch.bfloat16
        try:
            errs = [rel(model(input_ids=ids, use_cache=False).logits, exact)]
            if causal:
                errs.append(rel(stepped_logits(model, ids, 70, 80), exact[:, :80]))
                errs.append(rel(*masked_and_alone(model, ids, 25, 70)))
        finally:
            attention._attention_dtype = saved
    check(f"{name} bf16 softmax", max(errs) < 3e-2,
          "q, k, v in bf16: forward" + (", cache, left padding" if causal else "") + " relative "
          + ", ".join(f"{e:.1e}" for e in errs))


def eval_checkpoint(args):
    """The checkpoint's loss over the program's eval windows (torch_reference.run_eval's), through transformers."""
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, trust_remote_code=True, dtype=torch.float32)
    model = model.to(args.device).eval()
    ids = ref.read_llmc_tokens(args.eval_tokens)
    windows = min(args.windows, (ids.numel() - 1) // args.seq_len)
    total, count = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            window = ids[w * args.seq_len : (w + 1) * args.seq_len + 1][None].to(args.device)
            out = model(input_ids=window[:, :-1], use_cache=False)
            total += float(torch.nn.functional.cross_entropy(out.logits[0].float(), window[0, 1:], reduction="sum"))
            count += args.seq_len
    loss = total / count
    print(f"{type(model).__name__} from {args.checkpoint}: loss {loss:.6f} over {windows} windows of {args.seq_len}")
    if args.expect_loss is not None:
        err = abs(loss - args.expect_loss) / abs(args.expect_loss)
        check("checkpoint eval", err < 1e-2, f"program's eval loss {args.expect_loss:.6f}: relative {err:.1e}")
    sys.exit(1 if failures else 0)


def check_tokenizer(folder, name):
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    text = 'héllo wörld\n\tx = "{}" ✓ 🚀'
    ids = tokenizer(text)["input_ids"]
    same = ids == list(text.encode("utf-8")) and tokenizer.decode(ids) == text
    check(f"{name} tokenizer", same, f"{len(tokenizer)} tokens; {len(ids)} ids for {len(text)} characters, decoded back")
    generate = pipeline("text-generation", model=folder, trust_remote_code=True, dtype=torch.float32)
    out = generate("def main(", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    check(f"{name} pipeline", out.startswith("def main(") and len(out.encode("utf-8")) >= len("def main(") + 1,
          f"text-generation: {out!r}")


def check_mask_token(folder, name, mask_id):
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    ids = tokenizer("ab<mask>c")["input_ids"]
    same = tokenizer.mask_token_id == mask_id and ids == [97, 98, mask_id, 99]
    check(f"{name} mask token", same, f"<mask> is id {tokenizer.mask_token_id} (config.json: {mask_id}); ids {ids}")
    fill = pipeline("fill-mask", model=folder, trust_remote_code=True, dtype=torch.float32)
    out = fill("ab<mask>c", top_k=3)
    check(f"{name} fill-mask", len(out) == 3 and all(0 <= o["token"] < 256 for o in out),
          f"fill-mask's top 3: {[o['token'] for o in out]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="write the models here and keep them (default: a temporary folder)")
    parser.add_argument("--checkpoint", help="a checkpoint folder the program wrote: evaluate it (see above)")
    parser.add_argument("--eval-tokens", help="with --checkpoint: the llm.c token file of the program's eval_data")
    parser.add_argument("--seq-len", type=int, help="with --checkpoint: the spec's seq_len")
    parser.add_argument("--windows", type=int, default=32, help="with --checkpoint: windows read (the program's: 32)")
    parser.add_argument("--expect-loss", type=float, help="with --checkpoint: the program's eval loss")
    parser.add_argument("--device", default="cpu", help="with --checkpoint: cpu or cuda")
    args = parser.parse_args()
    if args.checkpoint:
        if not args.eval_tokens or not args.seq_len:
            parser.error("--checkpoint needs --eval-tokens and --seq-len")
        eval_checkpoint(args)
    out = args.keep or tempfile.mkdtemp(prefix="lasp-hf-")
    try:
        made = subprocess.run(["node", os.path.join(HERE, "hf-configs.mjs"), out], cwd=ROOT, capture_output=True, text=True)
    except FileNotFoundError:
        print("hf_modeling_check: node is not on PATH (it writes lasp's config.json files)", file=sys.stderr)
        sys.exit(2)
    if made.returncode != 0:
        print(f"hf_modeling_check: hf-configs.mjs failed (npm run build first?)\n{made.stderr}", file=sys.stderr)
        sys.exit(2)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for folder in made.stdout.split():
        check_model(folder, generator)
    if not args.keep:
        shutil.rmtree(out)
    print(f"{'all passed' if not failures else f'{len(failures)} failed: ' + ', '.join(failures)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
