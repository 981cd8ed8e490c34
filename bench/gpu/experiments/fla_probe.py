"""fla's chunk_simple_gla with bf16 operands against a dense fp64 reference (o, dq, dk, dv: max error over the
largest value), for the three layer settings of bench/gpu/hf-configs.mjs's linear-maps-grouped and a plain one:
random N(0, 1) inputs through each feature map, B 2, T 300, 4 heads of 64. On the GPU machine, with fla's wheels
installed in /tmp/fla (queue.sh's hffla does that): PYTHONPATH=/tmp/fla python3 bench/gpu/experiments/fla_probe.py
"""
import math, torch, torch.nn.functional as F
from fla.ops.simple_gla import chunk_simple_gla
torch.manual_seed(0)
B, T, H, d = 2, 300, 4, 64
maps = {"elu_plus_one": lambda x: F.elu(x) + 1.0, "silu": F.silu, "relu": F.relu, "identity": lambda x: x}
def dense(q, k, v, lam):  # fp64, [B,T,H,d]
    i = torch.arange(T, dtype=torch.float64, device=q.device)
    dist = i[:, None] - i[None, :]
    D = torch.where(dist >= 0, lam[:, None, None] ** dist.clamp(min=0), torch.zeros((), dtype=torch.float64, device=q.device))
    s = torch.einsum("bihd,bjhd->bhij", q, k) * D[None]
    return torch.einsum("bhij,bjhd->bihd", s, v)
rel = lambda a, b: float((a.double() - b).abs().max() / b.abs().max())
for fm, decay in (("elu_plus_one", [0.9] * 4), ("silu", [0.7788007830714049, 0.9394130628134758, 0.9844964370054085, 0.9961013694701175]), ("relu", [1.0] * 4), ("identity", [1.0] * 4)):
    x = [torch.randn(B, T, H, d, device="cuda") for _ in range(3)]
    q, k = maps[fm](x[0]).bfloat16(), maps[fm](x[1]).bfloat16()
    v = x[2].bfloat16()
    do = torch.randn(B, T, H, d, device="cuda").bfloat16()
    lam = torch.tensor(decay, dtype=torch.float64, device="cuda")
    qr, kr, vr = (t.double().requires_grad_(True) for t in (q, k, v))
    o_ref = dense(qr, kr, vr, lam); o_ref.backward(do.double())
    qf, kf, vf = (t.clone().requires_grad_(True) for t in (q, k, v))
    o, _ = chunk_simple_gla(qf, kf, vf, g_gamma=torch.log(lam).float(), scale=1.0)
    o.backward(do)
    print(f"{fm:13s} decay {decay[0]:.3f}..: o {rel(o, o_ref):.1e}  dq {rel(qf.grad, qr.grad):.1e}  dk {rel(kf.grad, kr.grad):.1e}  dv {rel(vf.grad, vr.grad):.1e}  |o| {float(o_ref.abs().max()):.1f}")
