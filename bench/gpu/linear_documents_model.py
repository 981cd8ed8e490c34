# A float64 model of linear_attention.cuh's document path, kernel by kernel (same tests, same thresholds, same
# loop structure; the block size B is a parameter so that small sequences have many blocks), checked against the
# dense masked definition for random documents, pieces, segment plans, decays (the definition in
# templates/runtime/types.cuh's Documents and docs/DOCUMENTS.md). No GPU: `python3 linear_documents_model.py SEED N`.
import numpy as np
import random, sys

def ranges(ends):
    N = len(ends)
    first = [0] * N; last = [N] * N
    start = 0
    for t in range(N):
        first[t] = start
        if ends[t]: start = t + 1
    nxt = N
    for t in range(N - 1, -1, -1):
        if ends[t]: nxt = t
        last[t] = nxt
    return first, last

class Docs:
    def __init__(self, ends):
        self.ends = ends; self.first, self.last = ranges(ends); self.N = len(ends)

# ---- device helpers (block of B tokens at global g0)
def block_reach(dc, g0): return dc.last[g0] - g0
def block_tail(dc, g0, B):
    return B if dc.ends[g0 + B - 1] else max(dc.first[g0 + B - 1] - g0, 0)
def block_head(dc, g0): return dc.last[g0 - 1] - g0 if g0 > 0 else -1

# ---- segment_state_kernel (DOCS): x, y [C][d] of the piece; returns the aggregate of segment seg (M[x][y])
def segment_state(x, y, seg, seg_len, C, lam, B, dc, position, reverse):
    start = seg * seg_len; nb = min(seg_len, C - start) // B
    d = x.shape[1]
    acc = np.zeros((d, d))
    for step in range(nb):
        blk = nb - 1 - step if reverse else step
        g0 = position + start + blk * B
        lo, hi = 0, B - 1
        if reverse: hi = block_reach(dc, g0)
        else: lo = block_tail(dc, g0, B)
        ymask = np.ones(B)
        if (hi < B) if reverse else (lo > 0):
            for r in range(B):
                if r < lo or r > hi: ymask[r] = 0
            acc[:] = 0
        else:
            acc *= lam ** B
        for jj in range(B):
            j = start + blk * B + jj
            w = lam ** (jj + 1) if reverse else lam ** (B - 1 - jj)
            acc += w * ymask[jj] * np.outer(x[j], y[j])
    return acc

# ---- segment_scan_kernel (DOCS)
def segment_scan(ws, nseg, seg_len, C, lam, reverse, write_prefix, want_total, base, dc, position):
    run = np.zeros_like(ws[0]); out = list(ws)
    bv = base if base is not None else np.zeros_like(ws[0])
    for i in range(nseg):
        s = nseg - 1 - i if reverse else i
        ln = min(seg_len, C - s * seg_len)
        dcy = lam ** ln
        g0 = position + s * seg_len
        if dc.last[g0] < g0 + ln: dcy = 0.0
        has = want_total or (s > 0 if reverse else s < nseg - 1)
        m = ws[s] if has else np.zeros_like(run)
        if write_prefix:
            w = 0.0 if base is None else lam ** ((C - (s * seg_len + ln)) if reverse else s * seg_len)
            if base is not None:
                gs = position + s * seg_len; ge = gs + ln; gend = position + C
                reaches = (ge == gend or dc.last[ge] >= gend) if reverse else (position > 0 and dc.last[position - 1] >= gs)
                if not reaches: w = 0.0
            out[s] = run + w * bv
        run = dcy * run + m
    total = None
    if want_total:
        sc = 1.0
        if reverse and (position == 0 or dc.ends[position - 1]): sc = 0.0
        total = sc * run
    return out, total

# ---- group_scan_kernel (DOCS)
def group_scan(agg, nf, fine_len, group, nw, C, lam, reverse, base, dc, position):
    walk_len = group * fine_len
    pre = [None] * nw
    run = np.zeros_like(agg[0]); bv = base if base is not None else np.zeros_like(agg[0])
    for i in range(nf):
        f = nf - 1 - i if reverse else i
        sw = f // group
        write = (f % group == group - 1 or f == nf - 1) if reverse else f % group == 0
        if write:
            w = 0.0
            if base is not None:
                w = lam ** ((C - min((sw + 1) * walk_len, C)) if reverse else sw * walk_len)
                gs = position + sw * walk_len; ge = position + min((sw + 1) * walk_len, C); gend = position + C
                reaches = (ge == gend or dc.last[ge] >= gend) if reverse else (position > 0 and dc.last[position - 1] >= gs)
                if not reaches: w = 0.0
            pre[sw] = run + w * bv
        flen = min(fine_len, C - f * fine_len)
        dcy = lam ** flen
        g0 = position + f * fine_len
        if dc.last[g0] < g0 + flen: dcy = 0.0
        run = dcy * run + agg[f]
    return pre

# ---- walk_forward_kernel (DOCS): o[i] for the segment's rows; S kept as S[k dim][v dim]
def walk_forward(q, k, v, o, prefix, seg, seg_len, C, lam, B, dc, position):
    start = seg * seg_len; nb = min(seg_len, C - start) // B
    d = q.shape[1]
    S = prefix.copy() if prefix is not None else np.zeros((d, d))
    for blk in range(nb):
        g0 = position + start + blk * B
        head = block_head(dc, g0); tail = block_tail(dc, g0, B)
        for ii in range(B):
            i = start + blk * B + ii
            fi = dc.first[g0 + ii] - g0
            acc = np.zeros(d)
            for jj in range(B):
                if jj <= ii and jj >= fi:
                    j = start + blk * B + jj
                    acc += lam ** (ii - jj) * np.dot(q[i], k[j]) * v[j]
            inter = q[i] @ S * lam ** (ii + 1) if ii <= head else np.zeros(d)
            o[i] = acc + inter
        if tail > 0: S = np.zeros((d, d))
        else: S = S * lam ** B
        for jj in range(B):
            if jj >= tail:
                j = start + blk * B + jj
                S += lam ** (B - 1 - jj) * np.outer(k[j], v[j])

# ---- walk_backward_kernel (DOCS): dk, dv of the segment; R[k dim][v dim] = sum q^T do
def walk_backward(q, k, v, do, dk, dv, suffix, seg, seg_len, C, lam, B, dc, position):
    start = seg * seg_len; nb = min(seg_len, C - start) // B
    d = q.shape[1]
    R = suffix.copy() if suffix is not None else np.zeros((d, d))
    for step in range(nb):
        blk = nb - 1 - step
        g0 = position + start + blk * B
        lb = [dc.last[g0 + r] for r in range(B)]
        for jj in range(B):
            j = start + blk * B + jj
            lj = lb[jj] - g0
            f = lam ** (B - 1 - jj) if lb[jj] - g0 >= B else 0.0
            a_v = f * (k[j] @ R)       # dv_j += K R
            a_k = f * (v[j] @ R.T)     # dk_j += V R^T
            for ii in range(B):
                if ii >= jj and ii <= lj:
                    i = start + blk * B + ii
                    w = lam ** (ii - jj)
                    a_v += w * np.dot(k[j], q[i]) * do[i]
                    a_k += w * np.dot(v[j], do[i]) * q[i]
            dv[j] = a_v; dk[j] = a_k
        reach = lb[0] - g0
        c = 0.0 if reach < B else lam ** B
        R = R * c
        for ii in range(B):
            if ii <= reach:
                i = start + blk * B + ii
                R += lam ** (ii + 1) * np.outer(q[i], do[i])

# ---- apply_state_kernel (DOCS), modes 1 and 2; TRANS reads S^T
def apply(x, S, out, C, lam, mode, dc, position, trans):
    ge = position + C - 1
    lo, hi = 0, C - 1
    if mode == 1: hi = block_head(dc, position)
    else: lo = C if dc.ends[ge] else dc.first[ge] - position
    M = S.T if trans else S
    for i in range(C):
        s = lam ** (i + 1) if mode == 1 else lam ** (C - 1 - i)
        if lo <= i <= hi: out[i] = out[i] + s * (x[i] @ M)

def piece_flag(dc, position, C):
    return 1.0 if C > 0 and dc.last[position] < position + C else 0.0

# ---- host launchers
def state_total(x, y, C, lam, B, dc, position, reverse, plan, keep):
    nseg, seg_len = plan
    ws = [segment_state(x, y, s, seg_len, C, lam, B, dc, position, reverse) for s in range(nseg)]
    _, total = segment_scan(ws, nseg, seg_len, C, lam, reverse, False, True, None, dc, position)
    if keep is not None: keep[:] = ws
    return total

def walk_forward_host(q, k, v, C, lam, B, dc, position, base, base_trans, plan):
    nseg, seg_len = plan
    o = np.zeros_like(q)
    prefixed = nseg > 1 or base is not None
    ws = [np.zeros((q.shape[1],) * 2) for _ in range(nseg)]
    if nseg > 1:
        for s in range(nseg - 1): ws[s] = segment_state(k, v, s, seg_len, C, lam, B, dc, position, False)
    pre = None
    if prefixed:
        b = None if base is None else (base.T if base_trans else base)
        pre, _ = segment_scan(ws, nseg, seg_len, C, lam, False, True, False, b, dc, position)
    for s in range(nseg): walk_forward(q, k, v, o, pre[s] if pre else None, s, seg_len, C, lam, B, dc, position)
    return o

def walk_forward_shared_host(q, k, v, C, lam, B, dc, position, base, base_trans, agg, agg_trans, fine, group):
    nf, fine_len = fine
    nw = (nf + group - 1) // group; walk_len = group * fine_len
    o = np.zeros_like(q)
    pre = None
    if nw > 1 or base is not None:
        # the kernel scans agg as stored (agg_trans: transposed) and reads base transposed iff base_trans != agg_trans
        b = None if base is None else (base.T if (base_trans != agg_trans) else base)
        pre = group_scan(agg, nf, fine_len, group, nw, C, lam, False, b, dc, position)
        if agg_trans: pre = [p.T for p in pre]  # the walk reads them transposed
    for s in range(nw): walk_forward(q, k, v, o, pre[s] if pre else None, s, walk_len, C, lam, B, dc, position)
    return o

def walk_backward_host(q, k, v, do, C, lam, B, dc, position, base, plan):
    nseg, seg_len = plan
    dk = np.zeros_like(q); dv = np.zeros_like(q)
    prefixed = nseg > 1 or base is not None
    ws = [np.zeros((q.shape[1],) * 2) for _ in range(nseg)]
    for s in range(1, nseg): ws[s] = segment_state(q, do, s, seg_len, C, lam, B, dc, position, True)
    suf = None
    if prefixed: suf, _ = segment_scan(ws, nseg, seg_len, C, lam, True, True, False, base, dc, position)
    for s in range(nseg): walk_backward(q, k, v, do, dk, dv, suf[s] if suf else None, s, seg_len, C, lam, B, dc, position)
    return dk, dv

def walk_backward_shared_host(q, k, v, do, C, lam, B, dc, position, base, agg, fine, group):
    nf, fine_len = fine
    nw = (nf + group - 1) // group; walk_len = group * fine_len
    dk = np.zeros_like(q); dv = np.zeros_like(q)
    suf = None
    if nw > 1 or base is not None: suf = group_scan(agg, nf, fine_len, group, nw, C, lam, True, base, dc, position)
    for s in range(nw): walk_backward(q, k, v, do, dk, dv, suf[s] if suf else None, s, walk_len, C, lam, B, dc, position)
    return dk, dv

# ---- dense definitions (contract), whole sequence
def dense(q, k, v, do, lam, dc):
    N, d = q.shape
    o = np.zeros_like(q); dq = np.zeros_like(q); dk = np.zeros_like(q); dv = np.zeros_like(q)
    for i in range(N):
        for j in range(dc.first[i], i + 1):
            w = lam ** (i - j)
            o[i] += w * np.dot(q[i], k[j]) * v[j]
            dq[i] += w * np.dot(do[i], v[j]) * k[j]
            dk[j] += w * np.dot(do[i], v[j]) * q[i]
            dv[j] += w * np.dot(q[i], k[j]) * do[i]
    return o, dq, dk, dv

def dense_piece(q, k, v, do, lam, dc, pos, C):
    d = q.shape[1]
    o = np.zeros((C, d)); dq = np.zeros((C, d)); dk = np.zeros((C, d)); dv = np.zeros((C, d))
    for i in range(pos, pos + C):
        for j in range(max(dc.first[i], pos), i + 1):
            w = lam ** (i - j)
            o[i - pos] += w * np.dot(q[i], k[j]) * v[j]
            dq[i - pos] += w * np.dot(do[i], v[j]) * k[j]
            dk[j - pos] += w * np.dot(do[i], v[j]) * q[i]
            dv[j - pos] += w * np.dot(q[i], k[j]) * do[i]
    return o, dq, dk, dv

def rand_plan(C, B, rng):
    nblocks = C // B
    nseg = rng.randint(1, nblocks)
    per = (nblocks + nseg - 1) // nseg
    nseg = (nblocks + per - 1) // per
    return (nseg, per * B)

def trial(rng, B, W, blocks_per_piece, d=2):
    C = B * blocks_per_piece; N = W * C
    kind = rng.random()
    ends = [0] * N
    if kind < 0.3:   # short documents
        for t in range(N): ends[t] = 1 if rng.random() < 0.3 else 0
    elif kind < 0.6:
        for t in range(N): ends[t] = 1 if rng.random() < 2.0 / B else 0
    elif kind < 0.8:  # ends at piece / block edges
        for t in range(N):
            if (t + 1) % B == 0 and rng.random() < 0.3: ends[t] = 1
            if t % B == 0 and rng.random() < 0.3: ends[t] = 1
    else:
        for t in range(N): ends[t] = 1 if rng.random() < 0.02 else 0
    dc = Docs(ends)
    lam = rng.choice([1.0, 0.9, 0.97, 0.5])
    npr = np.random.default_rng(rng.randint(0, 1 << 30))
    q, k, v, do = (npr.standard_normal((N, d)) for _ in range(4))
    O, DQ, DK, DV = dense(q, k, v, do, lam, dc)
    # states and flags per piece, contract-level scans
    Ms, dMs, flags, kvws, qdows, fines = [], [], [], [], [], []
    for t in range(W):
        pos = t * C; sl = slice(pos, pos + C)
        fine = rand_plan(C, B, rng); fines.append(fine)
        kw = [None] * fine[0]; qw = [None] * fine[0]
        Ms.append(state_total(k[sl], v[sl], C, lam, B, dc, pos, False, fine, kw))
        dMs.append(state_total(q[sl], do[sl], C, lam, B, dc, pos, True, fine, qw))
        kvws.append(kw); qdows.append(qw)
        flags.append(piece_flag(dc, pos, C))
        # the contract's M, dM
        Mc = sum((lam ** (C - 1 - jl) * np.outer(k[pos + jl], v[pos + jl]) for jl in range(C) if dc.last[pos + jl] >= pos + C), np.zeros((d, d)))
        dMc = sum((lam ** (il + 1) * np.outer(q[pos + il], do[pos + il]) for il in range(C) if dc.first[pos + il] < pos), np.zeros((d, d)))
        assert np.allclose(Ms[-1], Mc, atol=1e-9), ('M', t)
        assert np.allclose(dMs[-1], dMc, atol=1e-9), ('dM', t)
        assert flags[-1] == (1.0 if any(ends[pos:pos + C]) else 0.0)
    P = [np.zeros((d, d))]
    for t in range(1, W):
        c = 0.0 if flags[t - 1] else lam ** C
        P.append(c * P[t - 1] + Ms[t - 1])
    G = [None] * W; G[W - 1] = np.zeros((d, d))
    for t in range(W - 2, -1, -1):
        c = 0.0 if flags[t + 1] else lam ** C
        G[t] = c * G[t + 1] + dMs[t + 1]
    err = 0.0
    for t in range(W):
        pos = t * C; sl = slice(pos, pos + C)
        Pt = P[t] if t > 0 or rng.random() < 0.5 else None
        Gt = G[t] if t < W - 1 or rng.random() < 0.5 else None
        plan = rand_plan(C, B, rng)
        fine = fines[t]; nf = fine[0]; group = rng.randint(1, nf)
        # fused forward: recompute and shared
        o1 = walk_forward_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, Pt, False, plan)
        o2 = walk_forward_shared_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, Pt, False, kvws[t], False, fine, group)
        # split: intra + inter
        o3 = walk_forward_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, None, False, plan)
        apply(q[sl], P[t], o3, C, lam, 1, dc, pos, False)
        # backward fused (dq walk = forward walk with do, v, k and P^T)
        dq1 = walk_forward_host(do[sl], v[sl], k[sl], C, lam, B, dc, pos, Pt, True, plan)
        dq2 = walk_forward_shared_host(do[sl], v[sl], k[sl], C, lam, B, dc, pos, Pt, True, kvws[t], True, fine, group)
        dk1, dv1 = walk_backward_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, Gt, plan)
        dk2, dv2 = walk_backward_shared_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, Gt, qdows[t], fine, group)
        # split backward
        dq3 = walk_forward_host(do[sl], v[sl], k[sl], C, lam, B, dc, pos, None, True, plan)
        apply(do[sl], P[t], dq3, C, lam, 1, dc, pos, True)
        dk3, dv3 = walk_backward_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, None, plan)
        apply(v[sl], G[t], dk3, C, lam, 2, dc, pos, True)
        apply(k[sl], G[t], dv3, C, lam, 2, dc, pos, False)
        # an arbitrary P and G: intra of the piece alone plus the contract's inter terms
        Pr = npr.standard_normal((d, d)); Gr = npr.standard_normal((d, d))
        ends_p = [0] * N; ends_p[pos - 1 if pos > 0 else 0] = 0
        io, idq, idk, idv = dense_piece(q, k, v, do, lam, dc, pos, C)
        for i in range(C):
            if dc.first[pos + i] < pos:
                io[i] += lam ** (i + 1) * (q[pos + i] @ Pr); idq[i] += lam ** (i + 1) * (do[pos + i] @ Pr.T)
            if dc.last[pos + i] >= pos + C:
                idk[i] += lam ** (C - 1 - i) * (v[pos + i] @ Gr.T); idv[i] += lam ** (C - 1 - i) * (k[pos + i] @ Gr)
        o4 = walk_forward_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, Pr, False, plan)
        o5 = walk_forward_shared_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, Pr, False, kvws[t], False, fine, group)
        o6 = walk_forward_host(q[sl], k[sl], v[sl], C, lam, B, dc, pos, None, False, plan)
        apply(q[sl], Pr, o6, C, lam, 1, dc, pos, False)
        dq4 = walk_forward_host(do[sl], v[sl], k[sl], C, lam, B, dc, pos, Pr, True, plan)
        dq5 = walk_forward_shared_host(do[sl], v[sl], k[sl], C, lam, B, dc, pos, Pr, True, kvws[t], True, fine, group)
        dk4, dv4 = walk_backward_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, Gr, plan)
        dk5, dv5 = walk_backward_shared_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, Gr, qdows[t], fine, group)
        dk6, dv6 = walk_backward_host(q[sl], k[sl], v[sl], do[sl], C, lam, B, dc, pos, None, plan)
        apply(v[sl], Gr, dk6, C, lam, 2, dc, pos, True)
        apply(k[sl], Gr, dv6, C, lam, 2, dc, pos, False)
        for name, got, want in [('o P fused', o4, io), ('o P shared', o5, io), ('o P split', o6, io),
                                ('dq P fused', dq4, idq), ('dq P shared', dq5, idq),
                                ('dk G fused', dk4, idk), ('dk G shared', dk5, idk), ('dk G split', dk6, idk),
                                ('dv G fused', dv4, idv), ('dv G shared', dv5, idv), ('dv G split', dv6, idv),
                                ('o fused', o1, O[sl]), ('o shared', o2, O[sl]), ('o split', o3, O[sl]),
                                ('dq fused', dq1, DQ[sl]), ('dq shared', dq2, DQ[sl]), ('dq split', dq3, DQ[sl]),
                                ('dk fused', dk1, DK[sl]), ('dk shared', dk2, DK[sl]), ('dk split', dk3, DK[sl]),
                                ('dv fused', dv1, DV[sl]), ('dv shared', dv2, DV[sl]), ('dv split', dv3, DV[sl])]:
            e = np.max(np.abs(got - want)) if got.size else 0.0
            if not (e < 1e-8):
                print('FAIL', name, 'piece', t, 'B', B, 'W', W, 'C', C, 'lam', lam, 'err', e, 'plan', plan, 'fine', fine, 'group', group)
                print('ends', ''.join(map(str, ends)))
                sys.exit(1)
            err = max(err, e)
    return err

if __name__ == '__main__':
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    worst = 0.0
    for it in range(n):
        B = rng.choice([2, 4, 8])
        W = rng.randint(1, 4)
        bpp = rng.randint(1, 6)
        worst = max(worst, trial(rng, B, W, bpp))
    print('ok', n, 'trials, worst abs err', worst)
