// The optimizer's arithmetic (adamw.cuh, master_weights.cuh, grad_norm.cuh) on the host, through the same __host__ __device__
// functions the kernels run, driven from test/optimizer-host.test.ts. No kernel runs: the harness needs nvcc but
// no GPU. Numbers go out as the hex of their bits, so the test reads them exactly.
//   harness adamw < INPUT        INPUT: "n steps beta1 beta2 eps wd", the table's rows "rows off,len,decay ...",
//                                n lines "w m v" (w the fp32 master, split into the bf16 weight and its low
//                                half), then per step "lr clip t" and a line of n gradients; prints per step
//                                and element "w m v bf16" (hex bits; w joined again from the two halves)
//   harness master HEX...        each fp32 (bits in hex) split and joined: prints "hi lo joined" (hex bits)
//   harness constants LR B1 B2 EPS WD CLIP T   adamw_step_constants (or its refusal)
//   harness shard-table BEGIN END off,len,decay ...   the rows cut to the shard, then the check of them
//   harness check-table N off,len,decay ...           adamw_check_table's verdict ("ok" or the sentence)
//   harness range-decay BASE LEN off,len,decay ...    range_decay: the flag [BASE, BASE + LEN) shares, or -1
//   harness norm < INPUT         INPUT: n then n floats; prints the blocks, the scratch bytes, the sum (hex)
//   harness refuse-adamw WHAT    adamw_step / adamw_upload_table refusing (exits with the header's message)
//   harness adamw-choice         what LASP_ADAMW asks for: "auto" or "plain" (or exits 2 with the choices)
//   harness refuse-norm WHAT     grad_norm_squared refusing
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "adamw.cuh"
#include "grad_norm.cuh"

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

uint64_t bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

uint16_t bits(lasp::bf16 h) {
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

std::vector<lasp::DecayRow> parse_rows(int argc, char** argv, int from) {
  std::vector<lasp::DecayRow> rows;
  for (int i = from; i < argc; ++i) {
    unsigned long long off = 0, len = 0;
    int decay = 0;
    if (std::sscanf(argv[i], "%llu,%llu,%d", &off, &len, &decay) != 3) std::exit(2);
    rows.push_back(lasp::DecayRow{(size_t)off, (size_t)len, decay});
  }
  return rows;
}

int adamw_steps() {
  size_t n = 0;
  int steps = 0;
  double beta1, beta2, eps, wd;
  if (std::scanf("%zu %d %lf %lf %lf %lf", &n, &steps, &beta1, &beta2, &eps, &wd) != 6) return 2;
  char word[16];
  int count = 0;
  if (std::scanf("%15s %d", word, &count) != 2 || std::strcmp(word, "rows") != 0) return 2;
  std::vector<lasp::DecayRow> rows;
  for (int i = 0; i < count; ++i) {
    unsigned long long off, len;
    int decay;
    if (std::scanf(" %llu,%llu,%d", &off, &len, &decay) != 3) return 2;
    rows.push_back(lasp::DecayRow{(size_t)off, (size_t)len, decay});
  }
  const std::string problem = lasp::adamw_check_table(rows, n);
  if (!problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 2;
  }
  std::vector<float> w(n), m(n), v(n), g(n);
  std::vector<lasp::bf16> hi(n);
  std::vector<uint16_t> lo(n);
  for (size_t i = 0; i < n; ++i)
    if (std::scanf("%f %f %f", &w[i], &m[i], &v[i]) != 3) return 2;
  for (size_t i = 0; i < n; ++i) lasp::master_split(w[i], &hi[i], &lo[i]);
  for (int s = 0; s < steps; ++s) {
    double lr, clip;
    long long t;
    if (std::scanf("%lf %lf %lld", &lr, &clip, &t) != 3) return 2;
    for (size_t i = 0; i < n; ++i)
      if (std::scanf("%f", &g[i]) != 1) return 2;
    const lasp::AdamwConstants c = lasp::adamw_step_constants({lr, beta1, beta2, eps, wd, clip, (int64_t)t});
    lasp::adamw_reference(hi.data(), lo.data(), m.data(), v.data(), g.data(), n, rows, c);
    for (size_t i = 0; i < n; ++i)
      std::printf("%08x %08x %08x %04x\n", bits(lasp::master_join(hi[i], lo[i])), bits(m[i]), bits(v[i]), bits(hi[i]));
  }
  return 0;
}

int master(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    const uint32_t u = (uint32_t)std::strtoul(argv[i], nullptr, 16);
    float w;
    std::memcpy(&w, &u, 4);
    lasp::bf16 hi;
    uint16_t lo = 0;
    lasp::master_split(w, &hi, &lo);
    std::printf("%04x %04x %08x\n", bits(hi), lo, bits(lasp::master_join(hi, lo)));
  }
  return 0;
}

int norm() {
  size_t n = 0;
  if (std::scanf("%zu", &n) != 1) return 2;
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    if (std::scanf("%f", &x[i]) != 1) return 2;
  std::printf("%d %zu %016llx\n", lasp::grad_norm::blocks_for(n), lasp::grad_norm_scratch_bytes(n),
              (unsigned long long)bits(lasp::grad_norm_reference(x.data(), n)));
  return 0;
}

// Pointers the refusals never dereference: the checks exit before any launch.
float* fake(uintptr_t address) { return reinterpret_cast<float*>(address); }

int refuse_adamw(const std::string& what) {
  const lasp::AdamwSettings good{1e-3, 0.9, 0.95, 1e-8, 0.1, 1.0, 1};
  lasp::AdamwShard shard{reinterpret_cast<lasp::bf16*>(0x5000), reinterpret_cast<uint16_t*>(0x1000), fake(0x2000),
                         fake(0x3000), fake(0x4000), 64};
  const lasp::DecayRow row{0, 64, 1};
  lasp::AdamwTable table{&row, 1, 64};
  lasp::AdamwSettings settings = good;
  if (what == "step") settings.step = 0;
  else if (what == "beta") settings.beta2 = 1.0;
  else if (what == "clip") settings.clip_scale = 0.0;
  else if (what == "lr") settings.lr = -1.0;
  else if (what == "table-size") table.elements = 60;
  else if (what == "align") shard.m = fake(0x2004);
  else if (what == "null") shard.grad = nullptr;
  else if (what == "upload") {
    lasp::adamw_upload_table({{0, 32, 1}, {40, 24, 0}}, 64);
    return 0;
  } else return 2;
  lasp::adamw_step(shard, table, settings, 0);
  return 0;
}

int refuse_norm(const std::string& what) {
  double slot = 0;
  if (what == "scratch") lasp::grad_norm_squared(fake(0x1000), 1 << 20, &slot, &slot, sizeof(double), 0);
  else if (what == "null") lasp::grad_norm_squared(nullptr, 10, &slot, &slot, sizeof(double), 0);
  else return 2;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "adamw") return adamw_steps();
  if (mode == "norm") return norm();
  if (mode == "master") return master(argc, argv);
  if (mode == "constants" && argc == 9) {
    const lasp::AdamwConstants c = lasp::adamw_step_constants(
        {std::atof(argv[2]), std::atof(argv[3]), std::atof(argv[4]), std::atof(argv[5]), std::atof(argv[6]),
         std::atof(argv[7]), std::atoll(argv[8])});
    std::printf("%08x %08x %08x %08x %08x %08x %08x %08x\n", bits(c.clip_scale), bits(c.one_minus_beta1),
                bits(c.beta2), bits(c.one_minus_beta2), bits(c.decay_factor), bits(c.step_size), bits(c.sqrt_bc2),
                bits(c.eps));
    return 0;
  }
  if (mode == "shard-table" && argc >= 4) {
    const size_t begin = std::strtoull(argv[2], nullptr, 10), end = std::strtoull(argv[3], nullptr, 10);
    const std::vector<lasp::DecayRow> cut = lasp::adamw_shard_table(parse_rows(argc, argv, 4), begin, end);
    for (const lasp::DecayRow& r : cut) std::printf("%zu,%zu,%d ", r.offset, r.elements, r.decay);
    const std::string problem = lasp::adamw_check_table(cut, end - begin);
    std::printf("| %s\n", problem.empty() ? "ok" : problem.c_str());
    return 0;
  }
  if (mode == "check-table" && argc >= 3) {
    const std::string problem =
        lasp::adamw_check_table(parse_rows(argc, argv, 3), std::strtoull(argv[2], nullptr, 10));
    std::printf("%s\n", problem.empty() ? "ok" : problem.c_str());
    return 0;
  }
  if (mode == "range-decay" && argc >= 4) {
    const std::vector<lasp::DecayRow> rows = parse_rows(argc, argv, 4);
    std::printf("%d\n", lasp::adamw::range_decay(rows.data(), (int)rows.size(), std::strtoull(argv[2], nullptr, 10),
                                                  std::strtoull(argv[3], nullptr, 10)));
    return 0;
  }
  if (mode == "refuse-adamw" && argc > 2) return refuse_adamw(argv[2]);
  if (mode == "adamw-choice") {
    std::printf("%s\n", lasp::adamw::plain_requested() ? "plain" : "auto");
    return 0;
  }
  if (mode == "refuse-norm" && argc > 2) return refuse_norm(argv[2]);
  return 2;
}
