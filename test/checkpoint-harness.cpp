// The host logic of templates/runtime/checkpoint.cuh driven from test/checkpoint.test.ts:
//   harness write RUN STEP WORLD KEEP HASH   a whole checkpoint: begin, ranks 1..W-1 forked as processes that
//                                            write their shards beside rank 0's, wait (the barrier), commit;
//                                            prints "wrote FOLDER", then "stale PATH" / "removed PATH" lines
//   harness begin RUN STEP                   begin only, then exit: a write interrupted before its commit
//   harness no-shard RUN STEP WORLD          begin, every shard but the last rank's, commit (which must refuse)
//   harness latest RUN                       "latest FOLDER step N", then "skipped WHY" lines
//   harness resume FOLDER HASH WORLD RANK    resume, read the model and shard RANK of WORLD, check their values
//   harness state-write FILE                 writes the trainer state below to FILE
//   harness state-read FILE                  reads FILE, prints its fields one per line
//   harness background RUN STEP WORLD KEEP HASH   the same checkpoint through checkpoint_writer.cuh: rank 0's
//                                            job started first, "waiting 1" and "early 0" while the other
//                                            ranks' shards are missing (WORLD > 1), then ranks 1..W-1 forked,
//                                            each with a writer of its own; "wrote FOLDER", "removed PATH"
//   harness background-sequence RUN          two checkpoints (steps 10, 20, keep 1) through one writer
//   harness in-place-sequence RUN            step 10 written in place (run_here, tensors from sources), then
//                                            step 20 on the writer's thread (keep 2): "busy" before and after
//   harness abandon RUN STEP                 rank 0's job of 2 ranks with its stop flag set: must not commit
//   harness background-missing RUN STEP      a job without begin's temporary folder: its error, exit 1
//   harness background-vanish RUN STEP       rank 0's job of 2 ranks, its temporary folder removed while it
//                                            waits for rank 1's shard: its error, exit 1
// The tensors and the trainer state are functions of (step, rank, world), so a read checks what was written.
// Errors go to stderr with exit code 1, as the program reports them.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <chrono>
#include <thread>

#include "checkpoint.cuh"
#include "checkpoint_writer.cuh"

namespace ck = lasp::checkpoint;
namespace st = lasp::safetensors;

namespace {

uint64_t number(const char* text) { return std::strtoull(text, nullptr, 10); }

int fail(const std::string& error) {
  std::fprintf(stderr, "%s\n", error.c_str());
  return 1;
}

/** The bf16 weights of step `step` (as 16-bit patterns), a [4, 3] embedding. */
std::vector<uint16_t> model_values(uint64_t step) {
  std::vector<uint16_t> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<uint16_t>(0x3F80 + (step % 64) * 16 + i);
  return v;
}

/** A rank's fp32 shard: master weights, then the two moments, 2 values each. */
std::vector<float> shard_values(uint64_t step, uint64_t rank) {
  std::vector<float> v(6);
  for (int i = 0; i < 6; ++i) v[i] = static_cast<float>(rank) * 100.f + static_cast<float>(step % 1000) + 0.5f * i;
  return v;
}

std::vector<st::TensorOut> shard_tensors(const std::vector<float>& v) {
  return {{"model.embed_tokens.weight", st::DType::F32, {2}, v.data()},
          {"exp_avg.model.embed_tokens.weight", st::DType::F32, {2}, v.data() + 2},
          {"exp_avg_sq.model.embed_tokens.weight", st::DType::F32, {2}, v.data() + 4}};
}

ck::TrainerState state_of(uint64_t step, uint64_t world, const std::string& hash) {
  ck::TrainerState s;
  s.step = step;
  s.tokens_seen = step * 4096;
  s.data_position = step * 2;
  s.seed = 1234;
  s.rng_state = 0xFEDCBA9876543210ull ^ step;
  s.world_size = world;
  s.schedule.kind = "cosine";
  s.schedule.lr = 3e-4;
  s.schedule.min_lr = 3e-5;
  s.schedule.warmup_steps = 10;
  s.schedule.total_steps = 1000;
  s.lasp_version = "0.1.0";
  s.spec_hash = hash;
  return s;
}

const char* kConfig = "{\"model_type\": \"llama\", \"hidden_size\": 3}\n";
// The model's text files as the program passes them: config.json and a modeling file beside it.
const std::vector<ck::TextFile> kTexts = {{"config.json", kConfig}, {"modeling_lasp.py", "# Written by lasp\n"}};

/** Writes ranks 1..world-1's shards from forked processes and rank 0's here; false when any rank failed. */
bool write_all_shards(const ck::Pending& p, uint64_t step, uint64_t world, uint64_t ranks, std::string* error) {
  std::vector<pid_t> children;
  for (uint64_t rank = 1; rank < ranks; ++rank) {
    const pid_t child = ::fork();
    if (child == 0) {
      // Another process, as another rank is: it knows only the run, the step and rank 0's pid.
      const ck::Pending mine = ck::pending_for(p.run, step, p.owner_pid);
      const std::vector<float> v = shard_values(step, rank);
      std::string why;
      if (!ck::write_shard(mine, rank, world, shard_tensors(v), &why)) {
        std::fprintf(stderr, "%s\n", why.c_str());
        ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  bool ok = true;
  for (pid_t child : children) {
    int status = 0;
    ok = ::waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  if (!ok) {
    *error = "a rank failed to write its shard";
    return false;
  }
  const std::vector<float> v = shard_values(step, 0);
  return ck::write_shard(p, 0, world, shard_tensors(v), error);
}

/** Rank `rank`'s job of the checkpoint of `step`; `v` and `model` hold its tensors' values. */
ck::Job job_of(const ck::Pending& p, uint64_t step, uint64_t rank, uint64_t world, uint64_t keep,
               const std::string& hash, const std::vector<float>& v, const std::vector<uint16_t>& model) {
  ck::Job job;
  job.pending = p;
  job.rank = rank;
  job.world = world;
  job.shard = shard_tensors(v);
  if (rank == 0) {
    job.commits = true;
    job.model = {{"model.embed_tokens.weight", st::DType::BF16, {4, 3}, model.data()}};
    job.texts = kTexts;
    job.state = state_of(step, world, hash);
    job.keep = keep;
  }
  return job;
}

/** Rank 0's outcome as the write mode prints it; exit code 1 with the error when it failed. */
int print_outcome(const ck::Outcome& out) {
  if (!out.ok) return fail(out.error);
  std::printf("wrote %s\n", out.result.folder.c_str());
  for (const std::string& s : out.result.removed) std::printf("removed %s\n", s.c_str());
  return 0;
}

void print_state(const ck::TrainerState& s) {
  std::printf("step %" PRIu64 "\ntokens_seen %" PRIu64 "\ndata_position %" PRIu64 "\nseed %" PRIu64
              "\nrng_state %016" PRIx64 "\nworld_size %" PRIu64 "\n",
              s.step, s.tokens_seen, s.data_position, s.seed, s.rng_state, s.world_size);
  std::printf("kind %s\nlr %.17g\nmin_lr %.17g\nwarmup_steps %" PRIu64 "\ntotal_steps %" PRIu64 "\n",
              s.schedule.kind.c_str(), s.schedule.lr, s.schedule.min_lr, s.schedule.warmup_steps,
              s.schedule.total_steps);
  std::printf("lasp_version %s\nspec_hash %s\n", s.lasp_version.c_str(), s.spec_hash.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1], path = argv[2];
  std::string error;

  if (mode == "write" && argc == 7) {
    const uint64_t step = number(argv[3]), world = number(argv[4]), keep = number(argv[5]);
    ck::Pending p;
    if (!ck::begin(path, step, &p, &error)) return fail(error);
    if (!write_all_shards(p, step, world, world, &error)) return fail(error);
    const std::vector<uint16_t> model = model_values(step);
    ck::CommitResult result;
    if (!ck::commit(p, {{"model.embed_tokens.weight", st::DType::BF16, {4, 3}, model.data()}}, kTexts,
                    state_of(step, world, argv[6]), keep, &result, &error))
      return fail(error);
    std::printf("wrote %s\n", result.folder.c_str());
    for (const std::string& s : p.removed_stale) std::printf("stale %s\n", s.c_str());
    for (const std::string& s : result.removed) std::printf("removed %s\n", s.c_str());
    return 0;
  }
  if (mode == "background" && argc == 7) {
    const uint64_t step = number(argv[3]), world = number(argv[4]), keep = number(argv[5]);
    ck::Pending p;
    if (!ck::begin(path, step, &p, &error)) return fail(error);
    const std::vector<float> v = shard_values(step, 0);
    const std::vector<uint16_t> model = model_values(step);
    ck::BackgroundWriter writer;
    writer.start(job_of(p, step, 0, world, keep, argv[6], v, model));
    ck::Outcome out;
    if (world > 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      std::printf("waiting %d\nearly %d\n", writer.poll(&out) ? 0 : 1, ck::detail::exists(p.folder) ? 1 : 0);
    }
    std::vector<pid_t> children;
    for (uint64_t rank = 1; rank < world; ++rank) {
      const pid_t child = ::fork();
      if (child == 0) {
        const std::vector<float> mine = shard_values(step, rank);
        ck::BackgroundWriter own;
        own.start(job_of(ck::pending_for(path, step, p.owner_pid), step, rank, world, keep, argv[6], mine, {}));
        const ck::Outcome done = own.wait();
        if (!done.ok) std::fprintf(stderr, "%s\n", done.error.c_str());
        ::_exit(done.ok ? 0 : 1);
      }
      children.push_back(child);
    }
    for (pid_t child : children) {
      int status = 0;
      if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail("a rank failed to write its shard");
    }
    out = writer.wait();
    std::printf("busy %d\n", writer.busy() ? 1 : 0);
    return print_outcome(out);
  }
  if (mode == "background-sequence" && argc == 3) {
    ck::BackgroundWriter writer;
    for (uint64_t step : {10, 20}) {
      ck::Pending p;
      if (!ck::begin(path, step, &p, &error)) return fail(error);
      const std::vector<float> v = shard_values(step, 0);
      const std::vector<uint16_t> model = model_values(step);
      writer.start(job_of(p, step, 0, 1, 1, "h", v, model));
      ck::Outcome out;
      while (!writer.poll(&out)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (print_outcome(out) != 0) return 1;
    }
    return 0;
  }
  if (mode == "in-place-sequence" && argc == 3) {
    // Step 10 in place (run_here, every tensor pulled from a source), step 20 on the thread: one writer.
    ck::BackgroundWriter writer;
    for (uint64_t step : {10, 20}) {
      ck::Pending p;
      if (!ck::begin(path, step, &p, &error)) return fail(error);
      const std::vector<float> v = shard_values(step, 0);
      const std::vector<uint16_t> model = model_values(step);
      ck::Job job = job_of(p, step, 0, 1, 2, "h", v, model);
      if (step == 10) {
        for (std::vector<st::TensorOut>* list : {&job.shard, &job.model})
          for (st::TensorOut& t : *list) {
            const unsigned char* bytes = static_cast<const unsigned char*>(t.data);
            t.data = nullptr;
            t.source = [bytes](uint64_t first, uint64_t n, void* dst) {
              std::memcpy(dst, bytes + first, n);
              return true;
            };
          }
        writer.run_here(std::move(job));
        std::printf("busy %d\n", writer.busy() ? 1 : 0);
      } else {
        writer.start(std::move(job));
      }
      ck::Outcome out;
      while (!writer.poll(&out)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (print_outcome(out) != 0) return 1;
    }
    std::printf("busy %d\n", writer.busy() ? 1 : 0);
    return 0;
  }
  if (mode == "abandon" && argc == 4) {
    const uint64_t step = number(argv[3]);
    ck::Pending p;
    if (!ck::begin(path, step, &p, &error)) return fail(error);
    const std::vector<float> v = shard_values(step, 0);
    const std::vector<uint16_t> model = model_values(step);
    const std::atomic<bool> stop{true};
    return print_outcome(ck::run_job(job_of(p, step, 0, 2, 0, "h", v, model), stop));
  }
  if (mode == "background-vanish" && argc == 4) {
    const uint64_t step = number(argv[3]);
    ck::Pending p;
    if (!ck::begin(path, step, &p, &error)) return fail(error);
    const std::vector<float> v = shard_values(step, 0);
    const std::vector<uint16_t> model = model_values(step);
    ck::BackgroundWriter writer;
    writer.start(job_of(p, step, 0, 2, 0, "h", v, model));
    // Once rank 0's own shard is written, the job waits for rank 1's: then the folder goes.
    while (!ck::detail::is_file(ck::shard_path(p.temp, 0, 2)))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!ck::detail::remove_tree(p.temp)) return fail("cannot remove " + p.temp);
    return print_outcome(writer.wait());
  }
  if (mode == "background-missing" && argc == 4) {
    const uint64_t step = number(argv[3]);
    const std::vector<float> v = shard_values(step, 0);
    const std::vector<uint16_t> model = model_values(step);
    ck::BackgroundWriter writer;
    writer.start(job_of(ck::pending_for(path, step, 1), step, 0, 1, 0, "h", v, model));
    return print_outcome(writer.wait());
  }
  if (mode == "begin" && argc == 4) {
    ck::Pending p;
    if (!ck::begin(path, number(argv[3]), &p, &error)) return fail(error);
    std::printf("temp %s\n", p.temp.c_str());
    return 0;
  }
  if (mode == "no-shard" && argc == 5) {
    const uint64_t step = number(argv[3]), world = number(argv[4]);
    ck::Pending p;
    if (!ck::begin(path, step, &p, &error)) return fail(error);
    if (!write_all_shards(p, step, world, world - 1, &error)) return fail(error);
    const std::vector<uint16_t> model = model_values(step);
    if (!ck::commit(p, {{"model.embed_tokens.weight", st::DType::BF16, {4, 3}, model.data()}}, kTexts,
                    state_of(step, world, "h"), 0, nullptr, &error))
      return fail(error);
    std::printf("committed without every shard\n");
    return 0;
  }
  if (mode == "latest") {
    ck::Found found;
    std::vector<std::string> skipped;
    const bool ok = ck::latest(path, &found, &error, &skipped);
    if (ok) std::printf("latest %s step %" PRIu64 "\n", found.folder.c_str(), found.step);
    for (const std::string& s : skipped) std::printf("skipped %s\n", s.c_str());
    return ok ? 0 : fail(error);
  }
  if (mode == "resume" && argc == 6) {
    const uint64_t world = number(argv[4]), rank = number(argv[5]);
    ck::TrainerState s;
    if (!ck::resume(path, argv[3], &s, &error)) return fail(error);
    std::vector<uint16_t> model(12, 0);
    std::vector<float> shard(6, 0.f);
    if (!st::read_file(ck::model_path(path), {{"model.embed_tokens.weight", st::DType::BF16, {4, 3}, model.data()}},
                       &error))
      return fail(error);
    std::vector<st::TensorIn> in = {{"model.embed_tokens.weight", st::DType::F32, {2}, shard.data()},
                                    {"exp_avg.model.embed_tokens.weight", st::DType::F32, {2}, shard.data() + 2},
                                    {"exp_avg_sq.model.embed_tokens.weight", st::DType::F32, {2}, shard.data() + 4}};
    if (!st::read_file(ck::shard_path(path, rank, world), in, &error)) return fail(error);
    if (model != model_values(s.step) || shard != shard_values(s.step, rank))
      return fail("the tensors read differ from those written at step " + std::to_string(s.step));
    print_state(s);
    return 0;
  }
  if (mode == "state-write") {
    ck::TrainerState s = state_of(123, 4, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    s.tokens_seen = 18446744073709551615ull;  // 2^64 - 1: read back exactly, not through a double
    s.schedule.kind = "linear";
    s.schedule.min_lr = 0.1 + 0.2;  // a double with no short decimal form
    if (!ck::detail::write_text(path, ck::trainer_state_json(s), &error)) return fail(error);
    return 0;
  }
  if (mode == "state-read") {
    ck::TrainerState s;
    if (!ck::read_trainer_state(path, &s, &error)) return fail(error);
    print_state(s);
    return 0;
  }
  return 2;
}
