// GPU check of linear_attention.cuh's document path across walk plans (issue 19): the SM count decides how a
// piece is cut into walk segments and groups, so run-documents.sh runs this with several LASP_SM_RESERVE values
// (few SMs left: group > 1). bench/gpu/linear_documents_model.py is the same path as a float64 model (no GPU).
// Build: nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Itemplates/runtime \
//          -o linear_documents_segments bench/gpu/linear_documents_segments.cu
// Run:   for r in 0 100 124 128 131; do LASP_SM_RESERVE=$r ./linear_documents_segments 128; done (and 64)
// One rank holds the whole sequence as W pieces (piece t at rows t*C, global position t*C). Per piece: the state
// calls (with workspaces and flags), then P_t, G_t by the contract's affine scan on the host, then every forward
// and backward variant (fused with / without workspaces, split intra + inter), each compared with an fp64
// dense oracle of the masked definition. Also: with documents but no end at all, every output equals the
// no-document call's bit for bit (except dM of the piece at position 0, which the contract zeroes).
#include "linear_attention.cuh"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

using lasp::bf16;

static std::mt19937_64 rng(12345);
static float bfr(float x) { return __bfloat162float(__float2bfloat16(x)); }

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) { CUDA_CHECK(cudaMalloc(&p, n * sizeof(T))); CUDA_CHECK(cudaMemset(p, 0, n * sizeof(T))); }
  ~Dev() { cudaFree(p); }
};
static void up(Dev<bf16>& d, const std::vector<float>& h) {
  std::vector<bf16> t(h.size());
  for (size_t i = 0; i < h.size(); ++i) t[i] = __float2bfloat16(h[i]);
  CUDA_CHECK(cudaMemcpy(d.p, t.data(), t.size() * sizeof(bf16), cudaMemcpyHostToDevice));
}
template <class T>
static void up_raw(Dev<T>& d, const std::vector<T>& h) {
  CUDA_CHECK(cudaMemcpy(d.p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
static std::vector<float> down(const Dev<bf16>& d) {
  std::vector<bf16> t(d.n);
  CUDA_CHECK(cudaMemcpy(t.data(), d.p, d.n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> h(d.n);
  for (size_t i = 0; i < d.n; ++i) h[i] = __bfloat162float(t[i]);
  return h;
}
static std::vector<float> down(const Dev<float>& d) {
  std::vector<float> h(d.n);
  CUDA_CHECK(cudaMemcpy(h.data(), d.p, d.n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}

static int failures = 0;
static void check(const char* what, const std::vector<float>& got, const std::vector<double>& ref, double tol) {
  double num = 0, den = 1e-6;
  size_t worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double e = std::fabs(got[i] - ref[i]);
    if (e > num) { num = e; worst = i; }
    den = std::max(den, std::fabs(ref[i]));
  }
  const bool ok = num / den <= tol;
  std::printf("%-40s max err %.3e / max %.3e = %.2e %s\n", what, num, den, num / den, ok ? "ok" : "FAIL");
  if (!ok) {
    std::printf("   worst at %zu: got %g want %g\n", worst, got[worst], ref[worst]);
    ++failures;
  }
}

int main(int argc, char** argv) {
  const int d = argc > 1 ? std::atoi(argv[1]) : 128;
  const int B = 2, H = 2, W = 4, C = 8 * 64, N = W * C;
  const float lam_h[2] = {0.995f, 1.0f};  // one decayed head, one without decay
  lasp::LinearDims dims{B, N, H, d};
  const size_t act = (size_t)B * N * H * d, st = (size_t)B * H * d * d;
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> q(act), k(act), v(act), dout(act);
  for (auto* x : {&q, &k, &v, &dout})
    for (auto& e : *x) e = bfr(u(rng) * 0.5f);
  // Documents: batch row 0 short random documents (many ends inside blocks, at block and piece edges),
  // batch row 1 long ones.
  std::vector<int> ends((size_t)B * N, 0), first((size_t)B * N), last((size_t)B * N);
  for (int t = 0; t < N; ++t) ends[t] = (rng() % 40 == 0) || t == 63 || t == 64 || t == C - 1 || t == 2 * C;
  for (int t = 0; t < N; ++t) ends[N + t] = (t == 700 || t == 1500);
  for (int b = 0; b < B; ++b) {
    int s = 0;
    for (int t = 0; t < N; ++t) { first[b * N + t] = s; if (ends[b * N + t]) s = t + 1; }
    int nx = N;
    for (int t = N - 1; t >= 0; --t) { if (ends[b * N + t]) nx = t; last[b * N + t] = nx; }
  }

  Dev<bf16> dq_(act), dk_(act), dv_(act), dd_(act), o(act), gq(act), gk(act), gv(act);
  up(dq_, q); up(dk_, k); up(dv_, v); up(dd_, dout);
  Dev<float> lam(H);
  up_raw(lam, std::vector<float>(lam_h, lam_h + H));
  Dev<int> dends((size_t)B * N), dfirst((size_t)B * N), dlast((size_t)B * N);
  up_raw(dends, ends); up_raw(dfirst, first); up_raw(dlast, last);
  lasp::Documents docs;
  docs.ends = dends.p; docs.first = dfirst.p; docs.last = dlast.p; docs.seq_len = N;

  // ---- fp64 oracle of the masked definition, whole sequence
  std::vector<double> O(act, 0), DQ(act, 0), DK(act, 0), DV(act, 0);
  auto at = [&](int b, int t, int h) { return (((size_t)b * N + t) * H + h) * d; };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i)
        for (int j = first[b * N + i]; j <= i; ++j) {
          const double w = std::pow((double)lam_h[h], i - j);
          double qk = 0, dv = 0;
          for (int c = 0; c < d; ++c) { qk += (double)q[at(b, i, h) + c] * k[at(b, j, h) + c]; dv += (double)dout[at(b, i, h) + c] * v[at(b, j, h) + c]; }
          for (int c = 0; c < d; ++c) {
            O[at(b, i, h) + c] += w * qk * v[at(b, j, h) + c];
            DQ[at(b, i, h) + c] += w * dv * k[at(b, j, h) + c];
            DK[at(b, j, h) + c] += w * dv * q[at(b, i, h) + c];
            DV[at(b, j, h) + c] += w * qk * dout[at(b, i, h) + c];
          }
        }

  // ---- state calls per piece
  const size_t wsb = lasp::linear_state_workspace_bytes(dims, C);
  std::vector<Dev<float>*> M, dM, kvws, qdows, fM, fdM;
  cudaStream_t s = 0;
  for (int t = 0; t < W; ++t) {
    M.push_back(new Dev<float>(st)); dM.push_back(new Dev<float>(st));
    kvws.push_back(new Dev<float>(wsb / 4)); qdows.push_back(new Dev<float>(wsb / 4));
    fM.push_back(new Dev<float>(B)); fdM.push_back(new Dev<float>(B));
    lasp::LinearStateArgs a; a.k = dk_.p; a.v = dv_.p; a.m = M[t]->p; a.piece = {t * C, C}; a.docs = docs;
    a.position = t * C; a.flag = fM[t]->p; a.kv_ws = kvws[t]->p;
    lasp::linear_state(a, dims, lam.p, s);
    lasp::LinearGradStateArgs g; g.q = dq_.p; g.dout = dd_.p; g.dm = dM[t]->p; g.piece = {t * C, C}; g.docs = docs;
    g.position = t * C; g.flag = fdM[t]->p; g.qdo_ws = qdows[t]->p;
    lasp::linear_grad_state(g, dims, lam.p, s);
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  // contract's M, dM, flags
  for (int t = 0; t < W; ++t) {
    const int pos = t * C;
    std::vector<double> Mr(st, 0), dMr(st, 0);
    std::vector<float> fr(B);
    for (int b = 0; b < B; ++b) {
      bool any = false;
      for (int r = 0; r < C; ++r) any = any || ends[b * N + pos + r];
      fr[b] = any ? 1.f : 0.f;
      for (int h = 0; h < H; ++h)
        for (int r = 0; r < C; ++r) {
          const int j = pos + r;
          double* m = &Mr[((size_t)b * H + h) * d * d];
          double* dm = &dMr[((size_t)b * H + h) * d * d];
          if (last[b * N + j] >= pos + C) {
            const double w = std::pow((double)lam_h[h], C - 1 - r);
            for (int x = 0; x < d; ++x) for (int y = 0; y < d; ++y) m[x * d + y] += w * k[at(b, j, h) + x] * v[at(b, j, h) + y];
          }
          if (first[b * N + j] < pos) {
            const double w = std::pow((double)lam_h[h], r + 1);
            for (int x = 0; x < d; ++x) for (int y = 0; y < d; ++y) dm[x * d + y] += w * q[at(b, j, h) + x] * dout[at(b, j, h) + y];
          }
        }
    }
    char name[64];
    // The state kernels round the decay-weighted operand to bf16 before the MMA (scale2): errors reach about
    // 1.4e-3 of the largest entry (H100), so the bound sits above that rounding; the outputs below catch the masks.
    const double state_tol = 5e-3;
    std::snprintf(name, sizeof name, "M piece %d", t); check(name, down(*M[t]), Mr, state_tol);
    std::snprintf(name, sizeof name, "dM piece %d", t); check(name, down(*dM[t]), dMr, state_tol);
    std::vector<double> frd(fr.begin(), fr.end());
    std::snprintf(name, sizeof name, "flag(M) piece %d", t); check(name, down(*fM[t]), frd, 0);
    std::snprintf(name, sizeof name, "flag(dM) piece %d", t); check(name, down(*fdM[t]), frd, 0);
  }
  // P_t, G_t by the affine scan over pieces (fp32 states, as the program's prefix op would)
  std::vector<std::vector<float>> Ph(W, std::vector<float>(st, 0.f)), Gh(W, std::vector<float>(st, 0.f));
  for (int t = 1; t < W; ++t) {
    auto m = down(*M[t - 1]); auto f = down(*fM[t - 1]);
    for (size_t e = 0; e < st; ++e) {
      const int b = (int)(e / ((size_t)H * d * d)), h = (int)(e / ((size_t)d * d) % H);
      const float c = f[b] != 0.f ? 0.f : std::pow(lam_h[h], (float)C);
      Ph[t][e] = c * Ph[t - 1][e] + m[e];
    }
  }
  for (int t = W - 2; t >= 0; --t) {
    auto m = down(*dM[t + 1]); auto f = down(*fdM[t + 1]);
    for (size_t e = 0; e < st; ++e) {
      const int b = (int)(e / ((size_t)H * d * d)), h = (int)(e / ((size_t)d * d) % H);
      const float c = f[b] != 0.f ? 0.f : std::pow(lam_h[h], (float)C);
      Gh[t][e] = c * Gh[t + 1][e] + m[e];
    }
  }
  std::vector<Dev<float>*> P, G;
  for (int t = 0; t < W; ++t) { P.push_back(new Dev<float>(st)); G.push_back(new Dev<float>(st)); up_raw(*P[t], Ph[t]); up_raw(*G[t], Gh[t]); }

  const double tol = 2e-2;  // bf16 outputs
  for (int variant = 0; variant < 3; ++variant) {  // 0 fused, 1 fused with workspaces, 2 split
    for (int t = 0; t < W; ++t) {
      const lasp::Piece pc{t * C, C};
      const float* kv = variant == 1 ? kvws[t]->p : nullptr;
      const float* qd = variant == 1 ? qdows[t]->p : nullptr;
      if (variant < 2) {
        lasp::LinearForwardFusedArgs f; f.q = dq_.p; f.k = dk_.p; f.v = dv_.p; f.p = t > 0 ? P[t]->p : nullptr; f.o = o.p;
        f.piece = pc; f.docs = docs; f.position = t * C; f.kv_ws = kv;
        lasp::linear_forward_fused(f, dims, lam.p, s);
        lasp::LinearBackwardFusedArgs bw; bw.q = dq_.p; bw.k = dk_.p; bw.v = dv_.p; bw.dout = dd_.p;
        bw.p = t > 0 ? P[t]->p : nullptr; bw.g = t < W - 1 ? G[t]->p : nullptr; bw.dq = gq.p; bw.dk = gk.p; bw.dv = gv.p;
        bw.piece = pc; bw.docs = docs; bw.position = t * C; bw.kv_ws = kv; bw.qdo_ws = qd;
        lasp::linear_backward_fused(bw, dims, lam.p, s);
      } else {
        lasp::LinearIntraArgs ia; ia.q = dq_.p; ia.k = dk_.p; ia.v = dv_.p; ia.o = o.p; ia.piece = pc; ia.docs = docs;
        ia.position = t * C; ia.kv_ws = kvws[t]->p;
        lasp::linear_intra(ia, dims, lam.p, s);
        lasp::LinearInterArgs ie; ie.q = dq_.p; ie.p = P[t]->p; ie.o = o.p; ie.piece = pc; ie.docs = docs; ie.position = t * C;
        lasp::linear_inter(ie, dims, lam.p, s);
        lasp::LinearIntraBackwardArgs ib; ib.q = dq_.p; ib.k = dk_.p; ib.v = dv_.p; ib.dout = dd_.p; ib.dq = gq.p; ib.dk = gk.p;
        ib.dv = gv.p; ib.piece = pc; ib.docs = docs; ib.position = t * C;
        lasp::linear_intra_backward(ib, dims, lam.p, s);
        lasp::LinearDqInterArgs dqi; dqi.dout = dd_.p; dqi.p = P[t]->p; dqi.dq = gq.p; dqi.piece = pc; dqi.docs = docs; dqi.position = t * C;
        lasp::linear_dq_inter(dqi, dims, lam.p, s);
        lasp::LinearDkdvInterArgs dki; dki.k = dk_.p; dki.v = dv_.p; dki.g = G[t]->p; dki.dk = gk.p; dki.dv = gv.p; dki.piece = pc;
        dki.docs = docs; dki.position = t * C;
        lasp::linear_dkdv_inter(dki, dims, lam.p, s);
      }
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    const char* vn[3] = {"fused", "fused+ws", "split"};
    char name[64];
    std::snprintf(name, sizeof name, "o  (%s)", vn[variant]); check(name, down(o), O, tol);
    std::snprintf(name, sizeof name, "dq (%s)", vn[variant]); check(name, down(gq), DQ, tol);
    std::snprintf(name, sizeof name, "dk (%s)", vn[variant]); check(name, down(gk), DK, tol);
    std::snprintf(name, sizeof name, "dv (%s)", vn[variant]); check(name, down(gv), DV, tol);
  }

  // ---- documents without any end: bit-identical to the call without documents (one piece at position C)
  {
    Dev<int> z((size_t)B * N), zf((size_t)B * N), zl((size_t)B * N);
    up_raw(zl, std::vector<int>((size_t)B * N, N));  // first = 0, last = N everywhere
    lasp::Documents one; one.ends = z.p; one.first = zf.p; one.last = zl.p; one.seq_len = N;
    const lasp::Piece pc{C, C};
    Dev<float> m1(st), m2(st), g1(st), g2(st);
    Dev<bf16> o1(act), o2(act), a1(act), a2(act), b1(act), b2(act), c1(act), c2(act);
    for (int pass = 0; pass < 2; ++pass) {
      lasp::Documents dd = pass ? one : lasp::Documents{};
      lasp::LinearStateArgs a; a.k = dk_.p; a.v = dv_.p; a.m = (pass ? m2 : m1).p; a.piece = pc; a.docs = dd; a.position = C;
      lasp::linear_state(a, dims, lam.p, s);
      lasp::LinearGradStateArgs g; g.q = dq_.p; g.dout = dd_.p; g.dm = (pass ? g2 : g1).p; g.piece = pc; g.docs = dd; g.position = C;
      lasp::linear_grad_state(g, dims, lam.p, s);
      lasp::LinearForwardFusedArgs f; f.q = dq_.p; f.k = dk_.p; f.v = dv_.p; f.p = P[1]->p; f.o = (pass ? o2 : o1).p; f.piece = pc;
      f.docs = dd; f.position = C;
      lasp::linear_forward_fused(f, dims, lam.p, s);
      lasp::LinearBackwardFusedArgs bw; bw.q = dq_.p; bw.k = dk_.p; bw.v = dv_.p; bw.dout = dd_.p; bw.p = P[1]->p; bw.g = G[1]->p;
      bw.dq = (pass ? a2 : a1).p; bw.dk = (pass ? b2 : b1).p; bw.dv = (pass ? c2 : c1).p; bw.piece = pc; bw.docs = dd; bw.position = C;
      lasp::linear_backward_fused(bw, dims, lam.p, s);
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    auto same = [&](const char* what, const std::vector<float>& x, const std::vector<float>& y) {
      const bool ok = std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
      std::printf("%-40s %s\n", what, ok ? "bit-identical" : "DIFFERS");
      if (!ok) ++failures;
    };
    same("no end: M", down(m1), down(m2));
    same("no end: dM", down(g1), down(g2));
    same("no end: o", down(o1), down(o2));
    same("no end: dq", down(a1), down(a2));
    same("no end: dk", down(b1), down(b2));
    same("no end: dv", down(c1), down(c2));
  }
  std::printf("%s (d=%d, SMs used %d)\n", failures ? "FAILED" : "ALL OK", d, lasp::detail::num_sms());
  return failures ? 1 : 0;
}
