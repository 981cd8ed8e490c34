#!/usr/bin/env python3
"""Host-side model of gemm_kernel's synchronization (mlp_gemm.cuh), for review without a GPU.

Agents per CTA: the producer thread and the two consumer warpgroups, CM CTAs per cluster (1 or 2), run in
random interleavings. mbarriers keep a phase number and are waited on by parity only (as
mbarrier.try_wait.parity does), so a wait one phase early (ABA) passes and is then caught by the data check. TMA
writes land at random later times (multicast boxes into every CTA of the cluster, complete_tx on each one's
full barrier); a stage's wgmma reads are live from issue until the wgmma.wait_group that retires them. Named
barriers 1 and 2 are bar.sync (consumer whose turn it is) / bar.arrive (the other). Asserts: no deadlock, no TMA
write into a stage being read, every k-block sees its own data, every tile computed exactly once.
Mutations that must fail (checked with --mutants): no turn wait; empty count 4 instead of 4 * CM.
"""
import random
import sys

STAGES = 6
A_BYTES, BOX_BYTES = 16384, 8192


class MBar:
    def __init__(self, count):
        self.count, self.pend, self.tx, self.phase = count, count, 0, 0

    def _check(self):
        if self.pend == 0 and self.tx == 0:
            self.phase += 1
            self.pend = self.count

    def arrive(self):
        self.pend -= 1
        assert self.pend >= 0, "more arrivals than the count in one phase"
        self._check()

    def expect_tx(self, b):
        self.tx += b
        self.arrive()

    def complete_tx(self, b):
        self.tx -= b
        self._check()

    def done(self, parity):  # try_wait.parity: the phase with this parity has completed
        return (self.phase & 1) != parity


def coords(t, num_m, num_n, group=8):
    per = group * num_n
    g = t // per
    fm = g * group
    gs = min(num_m - fm, group)
    r = t - g * per
    return fm + r % gs, r // gs


def run(num_m, num_n, KT, max_units, CM, seed, no_turns=False, empty_count=None):
    rnd = random.Random(seed)
    sched_m = num_m // CM
    total = sched_m * num_n
    units = min(total, max_units)
    covered = set()
    for cl in range(units):  # clusters are independent: one at a time
        full = [[MBar(1) for _ in range(STAGES)] for _ in range(CM)]
        empty = [[MBar(empty_count or 4 * CM) for _ in range(STAGES)] for _ in range(CM)]
        content = [[[None] * 3 for _ in range(STAGES)] for _ in range(CM)]  # A, B box 0, B box 1
        reading = [[0] * STAGES for _ in range(CM)]
        inflight = []
        named = {}  # (cta, id) -> [arrived warpgroups]

        def producer(cta):
            st = ph = 0
            for u in range(cl, total, units):
                sm, tn = coords(u, sched_m, num_n)
                m = sm * CM + cta
                for kb in range(KT):
                    while not empty[cta][st].done(ph ^ 1):
                        yield
                    full[cta][st].expect_tx(A_BYTES + 2 * BOX_BYTES)
                    inflight.append((cta, st, 0, (m, kb), A_BYTES))
                    if CM == 1:
                        inflight.append((cta, st, 1, (tn, kb, 0), BOX_BYTES))
                        inflight.append((cta, st, 2, (tn, kb, 1), BOX_BYTES))
                    else:
                        for dst in range(CM):
                            inflight.append((dst, st, 1 + cta, (tn, kb, cta), BOX_BYTES))
                    st += 1
                    if st == STAGES:
                        st, ph = 0, ph ^ 1
                    yield

        def bar_sync(cta, bid):
            k = (cta, bid)
            named.setdefault(k, [0])[0] += 1
            while named[k][0] < 2:
                yield
            named[k][0] -= 2

        def bar_arrive(cta, bid):
            k = (cta, bid)
            named.setdefault(k, [0])[0] += 1
            assert named[k][0] <= 2, "two arrivals on one named barrier before its sync"

        def retire(cta, groups, keep):
            while len(groups) > keep:
                s2, e2 = groups.pop(0)
                assert content[cta][s2] == e2, "stage overwritten while wgmma read it"
                reading[cta][s2] -= 1

        def release(stage):
            for r in range(CM):
                for _ in range(4):  # lane 0 of each of the 4 warps, to every CTA of the cluster
                    empty[r][stage].arrive()

        def consumer(cta, c):
            ntiles = (total - cl + units - 1) // units if cl < total else 0
            groups = []
            for j in range(c, ntiles, 2):
                sm, tn = coords(cl + j * units, sched_m, num_n)
                tm = sm * CM + cta
                it0 = j * KT
                st, ph = it0 % STAGES, (it0 // STAGES) & 1
                if j > 0 and not no_turns:
                    yield from bar_sync(cta, 1 + c)
                prev = -1
                for kb in range(KT):
                    while not full[cta][st].done(ph):
                        yield
                    exp = [(tm, kb), (tn, kb, 0), (tn, kb, 1)]
                    assert content[cta][st] == exp, ("stale data", cta, st, content[cta][st], exp)
                    reading[cta][st] += 1
                    groups.append((st, exp))
                    yield
                    retire(cta, groups, 1)  # wgmma.wait_group 1
                    if prev >= 0:
                        release(prev)
                    prev = st
                    st += 1
                    if st == STAGES:
                        st, ph = 0, ph ^ 1
                if j + 1 < ntiles and not no_turns:
                    bar_arrive(cta, 1 + (1 - c))
                yield
                retire(cta, groups, 0)  # wgmma.wait_group 0
                release(prev)
                assert (tm, tn) not in covered, "tile computed twice"
                covered.add((tm, tn))
                yield

        live = []
        for cta in range(CM):
            live += [producer(cta), consumer(cta, 0), consumer(cta, 1)]
        idle = 0
        while live or inflight:
            if inflight and (not live or rnd.random() < 0.3):
                cta, st, part, val, b = inflight.pop(rnd.randrange(len(inflight)))
                assert reading[cta][st] == 0, "TMA writes a stage that wgmma is reading"
                content[cta][st][part] = val
                full[cta][st].complete_tx(b)
                idle = 0
                continue
            a = rnd.choice(live)
            try:
                next(a)
            except StopIteration:
                live.remove(a)
            idle += 1
            assert idle < 200000, "deadlock"
        for r in range(CM):  # nothing left half-done at exit
            for i in range(STAGES):
                assert full[r][i].pend == 1 and full[r][i].tx == 0, "full barrier left mid-phase"
    assert len(covered) == num_m * num_n, ("tiles missing", len(covered), num_m * num_n)


# (M-tiles, N-tiles, k-blocks): one tile; fewer k-blocks than stages; partial GROUP_M groups; 1B/8B-like ratios.
CASES = [(1, 2, 1), (10, 10, 5), (10, 5, 5), (18, 22, 16), (18, 11, 16), (4, 3, 7), (2, 2, 13), (16, 8, 32)]


def main():
    if "--mutants" in sys.argv:
        for kw, what in ((dict(no_turns=True), "no turn wait"), (dict(empty_count=4), "empty count 4, CM 2")):
            try:
                for s in range(5):
                    run(18, 11, 16, 3, 2 if "empty_count" in kw else 1, s, **kw)
                print("MUTANT NOT CAUGHT:", what)
                sys.exit(1)
            except AssertionError as e:
                print("mutant caught (%s): %s" % (what, str(e)[:80]))
    for nm, nn, kt in CASES:
        for CM in (1, 2):
            if nm % CM:
                continue
            for grid in (132 // CM, 7, 3, 1):
                for seed in range(3):
                    run(nm, nn, kt, grid, CM, seed)
        print("ok: %d x %d tiles, %d k-blocks" % (nm, nn, kt))
    print("sync model: all cases passed")


if __name__ == "__main__":
    main()
