#!/usr/bin/env python3
"""How often verify's conditioning rule (templates/runtime/verify_model.cuh) would pass a correct bf16 program,
and whether it still catches a wrong one, on models like the suite's document programs; PyTorch, CPU or GPU.

For each seed (weights, tokens and documents drawn from it) and model:
  ref     the fp32 model, attention inputs q, k, v rounded to bf16 (what the C++ oracle feeds its attention);
  prog    a stand-in for the bf16 program: the same with torch_reference.py's round_activations (every value
          the program keeps in bf16, and its gradient, rounded to bf16);
  probe p the fp32 model with q, k, v moved by (1 + 2^-8 u), u uniform in [-1, 1], before that rounding;
          spread = the largest rel L2 distance of a probe's gradient from ref's (PROBES of them).
Per weight gradient: err = ||prog - ref|| / ||ref||; it passes if err <= TOL, or if spread > TOL and
err <= 3 spread (the rule). A `wrong` program (prog with its first layer's q_proj gradient scaled by 1.2,
an error the rule must not hide) is judged too. Prints one line per (model, seed) and a summary.
  python3 bench/gpu/conditioning_study.py [--seeds 8] [--tokens 2048] [--probes 3] [--device cpu]
                                          [--hidden 256 --heads 4 --head-dim 64] [--only LABEL-PREFIX]
                                          [--init 0.02|program] [--probe qkv|activations]
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as tr  # noqa: E402

TOL, FACTOR = 0.05, 3.0


def config(layers, hidden=256, heads=4, head_dim=64, vocab=512, ffn=512):
    """A Hugging Face config as the program writes it: `layers` is a list of (kind, output_norm)."""
    types, configs = [], []
    for kind, norm in layers:
        if kind == "linear":
            types.append("linear_attention")
            configs.append(
                {"layer_type": "linear_attention", "causal": True, "decay": [0.99] * heads,
                 "feature_map": "identity", "output_norm": norm}
            )
        else:
            types.append("full_attention")
            configs.append({"layer_type": "full_attention", "causal": True, "num_key_value_heads": heads // 2,
                            "rope_theta": 500000.0})
    return tr.parse_config({
        "architectures": ["LaspLinearLlamaForCausalLM"], "model_type": "lasp_linear_llama",
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "torch_dtype": "bfloat16",
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": len(layers),
        "num_attention_heads": heads, "head_dim": head_dim, "norm_type": "rms_norm", "rms_norm_eps": 1e-5,
        "max_position_embeddings": 1 << 20, "tie_word_embeddings": False, "layer_types": types,
        "layer_configs": configs,
    })


def draw(cfg, seed, tokens, mean_doc, init="0.02"):
    """init "0.02": every matrix N(0, 0.02); "program": the generated program's, N(0, 1/sqrt(in)) for a matrix
    [out][in] and the embedding [vocab][hidden] (src/model/tables.ts)."""
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in tr.expected_parameters(cfg).items():
        if name.endswith("norm.weight") or "layernorm" in name:
            weights[name] = torch.ones(shape)
        else:
            std = 0.02 if init == "0.02" else 1 / math.sqrt(shape[1])
            weights[name] = (torch.randn(shape, generator=g) * std).to(torch.bfloat16).float()
    ids = torch.randint(0, cfg.vocab, (1, tokens), generator=g)
    labels = torch.cat([ids[:, 1:], torch.full((1, 1), -1)], dim=1)
    ends = torch.zeros(1, tokens, dtype=torch.int32)
    t = -1
    while True:  # lengths uniform in [1, 2 mean - 1], as the program draws them
        t += 1 + int(torch.randint(0, 2 * mean_doc - 1, (1,), generator=g))
        if t >= tokens - 1:
            break
        ends[0, t] = 1
    return weights, ids, labels, ends


class Attention:
    """Wraps torch_reference's attention functions so that they read q, k, v rounded to bf16, as the C++ oracle's
    attention does; a probe's move (torch_reference.AttentionProbe) comes before that rounding."""

    def __init__(self):
        self.lin, self.soft = tr.linear_attention, tr.softmax_attention

    def install(self):
        rnd = tr.RoundBf16.apply
        tr.linear_attention = lambda q, k, v, *a, **kw: self.lin(rnd(q), rnd(k), rnd(v), *a, **kw)
        tr.softmax_attention = lambda q, k, v, *a, **kw: self.soft(rnd(q), rnd(k), rnd(v), *a, **kw)


def gradients(cfg, weights, ids, labels, ends, device, round_activations=False):
    same = tr.same_document(ends.long())
    params = {n: t.to(device).clone().requires_grad_(True) for n, t in weights.items()}
    total, count = tr.forward_sum(cfg, params, ids.to(device), labels.to(device), False, round_activations, same)
    (total / count).backward()
    return {n: p.grad.detach().double() for n, p in params.items()}


def rel(a, b):
    den = b.norm().item()
    return (a - b).norm().item() / den if den > 0 else (0.0 if a.norm().item() == 0 else math.inf)


def judge(err, spread):
    if err <= TOL:
        return "ok"
    return "ill" if spread > TOL and err <= FACTOR * spread else "FAIL"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--mean-doc", type=int, default=100)
    ap.add_argument("--probes", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--only", default="", help="run only the models whose label starts with this")
    ap.add_argument("--init", choices=["0.02", "program"], default="0.02", help="the weights' initial scale")
    ap.add_argument("--probe", choices=["qkv", "activations"], default="qkv",
                    help="what a probe moves: q, k, v (verify_model.cuh today) or every value kept in bf16")
    args = ap.parse_args()
    torch.manual_seed(0)
    Attention().install()
    models = {
        "L,S rms (like v-doc-sm-uly)": [("linear", "rms"), ("softmax", None)],
        "L,L rms (like v-doc-lasp2)": [("linear", "rms"), ("linear", "rms")],
        "L,L none (-nn twin)": [("linear", "none"), ("linear", "none")],
    }
    summary = {}
    for label, layers in models.items():
        if not label.startswith(args.only):
            continue
        cfg = config(layers, hidden=args.hidden, heads=args.heads, head_dim=args.head_dim)
        for seed in range(args.seeds):
            weights, ids, labels, ends = draw(cfg, 1000 + seed, args.tokens, args.mean_doc, args.init)
            ref = gradients(cfg, weights, ids, labels, ends, args.device)
            prog = gradients(cfg, weights, ids, labels, ends, args.device, round_activations=True)
            spread = {n: 0.0 for n in ref}
            probe = tr.AttentionProbe if args.probe == "qkv" else tr.ActivationProbe
            for p in range(args.probes):
                probe.generator = torch.Generator().manual_seed(7919 * (seed + 1) + p)
                moved = gradients(cfg, weights, ids, labels, ends, args.device)
                for n in ref:
                    spread[n] = max(spread[n], rel(moved[n], ref[n]))
            probe.generator = None
            verdicts = {n: judge(rel(prog[n], ref[n]), spread[n]) for n in ref}
            wrong_name = "model.layers.0.self_attn.q_proj.weight"
            wrong = judge(rel(prog[wrong_name] * 1.2, ref[wrong_name]), spread[wrong_name])
            worst = max(ref, key=lambda n: rel(prog[n], ref[n]))
            counts = {v: sum(1 for x in verdicts.values() if x == v) for v in ("ok", "ill", "FAIL")}
            print(f"{label:28s} seed {seed}: {counts['ok']} ok, {counts['ill']} ill-conditioned, {counts['FAIL']} FAIL;"
                  f" worst {worst} err {rel(prog[worst], ref[worst]):.2e} spread {spread[worst]:.2e};"
                  f" a 20% error in layer 0's Wq: {wrong}", flush=True)
            s = summary.setdefault(label, {"runs": 0, "failed": 0, "ill": 0, "caught": 0})
            s["runs"] += 1
            s["failed"] += counts["FAIL"] > 0
            s["ill"] += counts["ill"] > 0
            s["caught"] += wrong == "FAIL"
    print()
    for label, s in summary.items():
        print(f"{label:28s} {s['runs']} seeds: a correct program fails in {s['failed']}, passes as ill-conditioned in"
              f" {s['ill']}; the 20% error is caught in {s['caught']}")


if __name__ == "__main__":
    main()
