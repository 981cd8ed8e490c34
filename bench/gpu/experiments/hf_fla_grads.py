"""Which kernels' gradients are off: modeling_lasp.py's "exact" in bf16, "fla" in bf16 and "fla" in fp32, each
against "exact" in fp32, per parameter (max error over the fp32 gradient's largest value), on one model of
bench/gpu/hf-configs.mjs with hf_fla_check.py's random weights. On the GPU machine, from the repository root:
    PYTHONPATH=/tmp/fla python3 bench/gpu/experiments/hf_fla_grads.py CONFIGS_DIR [MODEL]
(MODEL default linear-maps-grouped).
"""
import os
import sys

import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hf_modeling_check as hf
import hf_fla_check as fc
from transformers import AutoModelForCausalLM
name = sys.argv[2] if len(sys.argv) > 2 else "linear-maps-grouped"
folder = os.path.join(sys.argv[1], name)
gen = torch.Generator().manual_seed(0)
config, cfg = fc.write_model(folder, gen)
ids = torch.randint(0, cfg.vocab, (2, 300), generator=gen).cuda()
grads, losses = {}, {}
for label, dtype, kernels in (("ref", torch.float32, "exact"), ("exact", torch.bfloat16, "exact"), ("fla", torch.bfloat16, "fla"), ("fla32", torch.float32, "fla")):
    m = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True, dtype=dtype, kernels=kernels).cuda().eval()
    out = m(input_ids=ids, labels=ids, use_cache=False)
    out.loss.backward()
    losses[label] = float(out.loss.detach())
    grads[label] = {k: p.grad.float() for k, p in m.named_parameters()}
print("losses", losses)
for k in grads["ref"]:
    r = grads["ref"][k]
    print(f"{k:45s} |ref| {float(r.abs().max()):.2e} exact {hf.rel(grads['exact'][k], r):.1e} fla {hf.rel(grads['fla'][k], r):.1e} fla32 {hf.rel(grads['fla32'][k], r):.1e} nan {bool(torch.isnan(grads['fla'][k]).any())}")
