"""Checks modeling_lasp.py's `kernels="fla"` (what "fast" takes on a GPU where flash-linear-attention imports:
causal linear layers on fla's chunk_simple_gla, softmax attention on bf16 q, k, v) against `kernels="exact"`
(the chunk loop, fp32 attention), and times both for fine-tuning.

Usage (from the repository root, on a GPU machine with torch, transformers, safetensors and fla):
    node bench/gpu/hf-configs.mjs DIR          (here, after `npm run build`: lasp's config.json files)
    python3 bench/gpu/hf_fla_check.py --configs DIR [--tokens 8192] [--runs 5]

For each causal model of DIR with linear layers (every decay, feature map, output norm, grouped kv heads, the
hybrids), random bf16 weights loaded on the GPU in bf16 once per setting, and in fp32 with "exact":
- the loss (5e-3) and the logits (3e-2) within bf16's rounding of "exact"'s (both sum in fp32 from the same bf16
  projections; they differ in the order of the sums and in 16-bit operands); every gradient no further from the
  fp32 model's than twice the bf16 loop's distance from it, plus 1e-2;
- fla's cache: a prompt, then tokens one at a time, gives one forward's logits; a left-padded row of a batch
  gives its logits alone.
Then a model of Linear-Llama3-1B's layer shape (hidden 2048, 16 heads of 128, ffn 8192; 4 layers, vocabulary
256) trained on --tokens tokens: forward + backward time (median of --runs after 2 warm-ups) and peak memory for
the loop, fla, and fla with gradient checkpointing.
Prints one line per check and a table; exits 1 if any check failed (2: a missing package or no GPU).
"""

import argparse
import json
import os
import shutil
import statistics
import sys

import hf_modeling_check as hf  # noqa: E402 (its imports say what is missing)
from hf_modeling_check import check, rel, torch

from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

import torch_reference as ref  # noqa: E402


def load(folder, kernel, dtype=torch.bfloat16):
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=dtype, kernels=kernel)
    return model.to("cuda").eval()


def write_model(folder, generator):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    cfg = ref.parse_config(config, os.path.join(folder, "config.json"))
    weights = hf.random_weights(cfg, generator)
    save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(folder, "model.safetensors"),
              metadata={"format": "pt"})
    with open(hf.MODELING) as src, open(os.path.join(folder, "modeling_lasp.py"), "w") as dst:
        dst.write(src.read())
    return config, cfg


def check_model(folder, generator):
    name = os.path.basename(folder)
    config, cfg = write_model(folder, generator)
    loop, fla, fp32 = load(folder, "exact"), load(folder, "fla"), load(folder, "exact", torch.float32)
    ids = torch.randint(0, cfg.vocab, (2, 300), generator=generator).cuda()  # several 64-token chunks and a part
    outs = {}
    for kernel, model in (("exact", loop), ("fla", fla), ("fp32", fp32)):
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        outs[kernel] = (out.loss.detach().float(), out.logits.detach().float(),
                        {k: p.grad.float() for k, p in model.named_parameters()})
    (l0, z0, g0), (l1, z1, g1), (_, _, g32) = outs["exact"], outs["fla"], outs["fp32"]
    err = float((l1 - l0).abs() / l0.abs())
    check(f"{name} fla loss", err < 5e-3, f"{float(l1):.6f} vs the loop's {float(l0):.6f} (rel {err:.1e})")
    err = rel(z1, z0)
    check(f"{name} fla logits", err < 3e-2, f"relative {err:.1e}")
    # Against the fp32 loop, each tensor: fla in bf16 may be as far off as the bf16 loop is (twice, plus 1e-2).
    # A bf16 model of random weights is ill-conditioned in places (the output norm's 1/rms on a small output),
    # so the two bf16 paths can differ by more than either's rounding; fla with bf16 operands was 10-55x the
    # loop there (bench/results/2026-12-07-hf-fla-h100.md), which this rejects.
    errs = {k: (rel(g1[k], g32[k]), rel(g0[k], g32[k])) for k in g32}
    bad = [k for k, (e_fla, e_loop) in errs.items() if e_fla > 2 * e_loop + 1e-2]
    worst = max(e for e, _ in errs.values())
    ratio = max(e_fla / max(e_loop, 1e-12) for e_fla, e_loop in errs.values())
    check(f"{name} fla gradients", not bad,
          f"{len(g32)} tensors against the fp32 loop: fla's worst {worst:.1e}, the bf16 loop's "
          f"{max(e for _, e in errs.values()):.1e}, largest ratio {ratio:.2f}" + (f"; off: {', '.join(bad)}" if bad else ""))

    with torch.no_grad():
        full = fla(input_ids=ids[:, :90], use_cache=False).logits.float()
        err = rel(hf.stepped_logits(fla, ids, 70, 90).float(), full)
        check(f"{name} fla cache", err < 2e-2, f"90 tokens, 20 of them one at a time: relative {err:.1e}")
        padded, alone = hf.masked_and_alone(fla, ids, 25, 70)
        err = rel(padded.float(), alone.float())
        check(f"{name} fla left padding", err < 2e-2, f"25 tokens masked: relative {err:.1e}")


def timing(folder, tokens, runs):
    """Forward + backward of a 4-layer model of Linear-Llama3-1B's layer shape: the loop, fla, fla recomputed."""
    shutil.copy(hf.MODELING, os.path.join(folder, "modeling_lasp.py"))
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    layer = {"layer_type": "linear_attention", "causal": True, "decay": [1.0] * 16, "feature_map": "identity",
             "output_norm": "rms"}  # Linear-Llama3-1B's
    config.update(dict(vocab_size=256, hidden_size=2048, intermediate_size=8192, num_attention_heads=16,
                       num_key_value_heads=16, head_dim=128, num_hidden_layers=4, layer_configs=[layer] * 4,
                       layer_types=["linear_attention"] * 4))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=True, dtype=torch.bfloat16).cuda().train()
    ids = torch.randint(0, config.vocab_size, (1, tokens), device="cuda")
    rows = []
    for label, kernel, recompute in (("chunk loop", "exact", False), ("fla", "fla", False),
                                     ("fla + gradient checkpointing", "fla", True)):
        model.config.kernels = kernel
        if recompute:
            model.gradient_checkpointing_enable()
        times = []
        torch.cuda.reset_peak_memory_stats()
        for i in range(2 + runs):
            model.zero_grad(set_to_none=True)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(input_ids=ids, labels=ids).loss.backward()
            end.record()
            torch.cuda.synchronize()
            if i >= 2:
                times.append(start.elapsed_time(end))
        ms = statistics.median(times)
        rows.append((label, ms, tokens / ms * 1e3, torch.cuda.max_memory_allocated() / 2**30))
        model.gradient_checkpointing_disable()
    print(f"\n4 layers of Linear-Llama3-1B's shape, {tokens} tokens, bf16, forward + backward (median of {runs}):")
    print("| linear layers | ms | tokens/s | peak GiB |\n| --- | --- | --- | --- |")
    for label, ms, rate, gib in rows:
        print(f"| {label} | {ms:.1f} | {rate:,.0f} | {gib:.2f} |")
    check("fla faster than the loop", rows[1][1] < rows[0][1], f"{rows[0][1] / rows[1][1]:.2f}x")
    check("gradient checkpointing uses less memory", rows[2][3] < rows[1][3], f"{rows[2][3]:.2f} vs {rows[1][3]:.2f} GiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", required=True, help="the folders of bench/gpu/hf-configs.mjs")
    parser.add_argument("--tokens", type=int, default=8192, help="tokens of the timed step")
    parser.add_argument("--runs", type=int, default=5, help="timed runs")
    parser.add_argument("--timing-only", action="store_true", help="the timing table alone, no checks of the models")
    parser.add_argument("--checks-only", action="store_true", help="the checks of the models alone, no timing")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("hf_fla_check: no GPU", file=sys.stderr)
        sys.exit(2)
    try:
        import fla  # noqa: F401
    except ImportError as exc:
        print(f"hf_fla_check: flash-linear-attention does not import ({exc})", file=sys.stderr)
        sys.exit(2)
    import transformers

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, fla {getattr(fla, '__version__', '?')}, "
          f"{torch.cuda.get_device_name()}")
    generator = torch.Generator().manual_seed(0)
    causal = []
    for entry in sorted(os.listdir(args.configs)):
        folder = os.path.join(args.configs, entry)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        kinds = [c["layer_type"] for c in config.get("layer_configs", [])]
        if "auto_map" in config and "linear_attention" in kinds and all(c["causal"] for c in config["layer_configs"]):
            causal.append(folder)
    for folder in [] if args.timing_only else causal:
        check_model(folder, generator)
    if not args.checks_only:
        timing(causal[0], args.tokens, args.runs)
    print(f"{'all passed' if not hf.failures else f'{len(hf.failures)} failed: ' + ', '.join(hf.failures)}")
    sys.exit(1 if hf.failures else 0)


if __name__ == "__main__":
    main()
