#!/usr/bin/env python3
"""Host-side model of the epilogues' element mapping in mlp_gemm.cuh, for review without a GPU.

Each of the 128 consumer threads (4 warps x 32 lanes) holds the wgmma m64nNk16 fp32 accumulator fragment: d[i]
of m64 half h is tile row h*64 + 16*warp + lane/4 + 8*((i%4)/2), column 8*(i/4) + 2*(lane%4) + i%2 (the layout
templates/runtime/softmax_attention.cuh's GPU-verified epilogues use). The model runs pack_blocks and
quad_transpose (the same selects and xor-shuffles, lane by lane) and the address arithmetic of epilogue_store,
epilogue_swiglu_fwd and epilogue_swiglu_bwd, and asserts that every output element is written exactly once,
with the accumulator of its own (row, column) (forward: gate and up of the same column, H at that column).
"""


def quad_transpose(V):  # V[lane] = 4 values; mirrors mlpgemm::quad_transpose
    s0, s1, k0, k1 = {}, {}, {}, {}
    for L in range(32):
        v, a0 = V[L], L & 1
        s0[L], s1[L] = (v[0], v[2]) if a0 else (v[1], v[3])
        k0[L], k1[L] = (v[1], v[3]) if a0 else (v[0], v[2])
    y = {}
    for L in range(32):
        a0, r0, r1 = L & 1, s0[L ^ 1], s1[L ^ 1]
        y[L] = (r0 if a0 else k0[L], k0[L] if a0 else r0, r1 if a0 else k1[L], k1[L] if a0 else r1)
    t0, t1, m0, m1 = {}, {}, {}, {}
    for L in range(32):
        a1 = L & 2
        y00, y01, y10, y11 = y[L]
        t0[L], t1[L] = (y00, y01) if a1 else (y10, y11)
        m0[L], m1[L] = (y10, y11) if a1 else (y00, y01)
    out = []
    for L in range(32):
        a1, q0, q1 = L & 2, t0[L ^ 2], t1[L ^ 2]
        out.append([q0 if a1 else m0[L], q1 if a1 else m1[L], m0[L] if a1 else q0, m1[L] if a1 else q1])
    return out


def acc_rc(w, lane, i):
    return 16 * w + 8 * ((i % 4) // 2) + lane // 4, 8 * (i // 4) + 2 * (lane % 4) + (i % 2)


def pack_blocks(w, h, j0, rs):  # per lane: 4 bf16 pairs, each as the (tile row, tile col) of its two values
    V = []
    for L in range(32):
        v = []
        for jj in range(4):
            i0 = 4 * (j0 + jj) + 2 * rs
            (r0, c0), (r1, c1) = acc_rc(w, L, i0), acc_rc(w, L, i0 + 1)
            v.append(((h * 64 + r0, c0), (h * 64 + r1, c1)))
        V.append(v)
    return V


def check_store():
    written = {}
    for w in range(4):
        for h in range(2):
            for rs in range(2):
                for j0 in range(0, 16, 4):
                    V = quad_transpose(pack_blocks(w, h, j0, rs))
                    for L in range(32):
                        g, tq = L >> 2, L & 3
                        row, col0 = h * 64 + w * 16 + g + rs * 8, 8 * (j0 + tq)
                        for s in range(4):
                            for e in range(2):
                                dst = (row, col0 + 2 * s + e)
                                assert dst not in written
                                written[dst] = V[L][s][e]
    assert len(written) == 128 * 128 and all(k == v for k, v in written.items())
    print("epilogue_store: every element once, from its own accumulator")


def check_fwd(F=640, tn=3):
    gu, hw = {}, {}
    for w in range(4):
        for h in range(2):
            for rs in range(2):
                for j0 in (0, 4):
                    G = quad_transpose(pack_blocks(w, h, j0, rs))
                    U = quad_transpose(pack_blocks(w, h, 8 + j0, rs))
                    for L in range(32):
                        g, tq = L >> 2, L & 3
                        row, col = h * 64 + w * 16 + g + rs * 8, tn * 64 + 8 * (j0 + tq)
                        for s in range(4):
                            for e in range(2):
                                c = col + 2 * s + e
                                assert G[L][s][e] == (row, c - tn * 64)  # gate: tile columns 0..63
                                assert U[L][s][e] == (row, 64 + c - tn * 64)  # up: tile columns 64..127
                                for k in ((row, c), (row, F + c)):
                                    assert k not in gu
                                    gu[k] = 1
                                assert (row, c) not in hw
                                hw[(row, c)] = 1
    assert len(gu) == 128 * 128 and len(hw) == 128 * 64
    print("epilogue_swiglu_fwd: GU gate/up and H columns paired and complete")


def check_bwd():
    seen = set()
    for w in range(4):
        for h in range(2):
            for rs in range(2):
                for b in range(4):
                    D = quad_transpose(pack_blocks(w, h, 4 * b, rs))
                    for L in range(32):
                        g, tq = L >> 2, L & 3
                        row = h * 64 + w * 16 + g + rs * 8
                        for s in range(4):
                            for e in range(2):
                                c = 8 * (4 * b + tq) + 2 * s + e  # the g/u load and dg/du store column
                                assert D[L][s][e] == (row, c)
                                assert (row, c) not in seen
                                seen.add((row, c))
    assert len(seen) == 128 * 128
    print("epilogue_swiglu_bwd: d, g, u, dg, du of the same element in each thread, all elements once")


if __name__ == "__main__":
    check_store()
    check_fwd()
    check_bwd()
