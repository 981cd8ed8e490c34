// Weights and gradients on disk: `--save-weights FILE` and `--load-weights FILE` (safetensors, Hugging Face
// Llama names and PyTorch shapes, bf16, with config.json beside; a load also takes Hugging Face's sharded
// checkpoints, safetensors_shards.cuh), and `--save-grads FILE` in verify mode
// (the same names in fp32, with the step's tokens, targets and loss) for bench/gpu/torch_reference.py.
//
// Design choices:
// - kParameters is the file's table of contents: its rows are the catalogue's names and shapes in Hugging
//   Face's order, so a file is the weights' allocation copied row by row, and a tied LM head is stored once,
//   as model.embed_tokens.weight (transformers ties it on load).
// - Rank 0 writes; every rank reads (the weights are replicated). A file is checked whole (names, dtypes,
//   shapes: safetensors.cuh) before any weight changes; a wrong file is the user's to fix: the sentence, exit 2.
// - config.json (and modeling_lasp.py where config.json names it) goes beside the weights unless such a file
//   that lasp did not write is there: that one is the user's, and the program stops before writing anything.
// - The tokens saved are every data replica's whole sequences, [data x batch][seq_len], made on the device
//   from the seed as each rank makes its own (tokens.cuh); labels[b][p] is what position p predicts (-1: nothing).
#pragma once
#include <cuda_runtime.h>  // copies
#include <algorithm>       // std::copy
#include <cstdio>          // messages
#include <cstdlib>         // std::exit
#include "checkpoint.cuh"  // TextFile
#include "hf_files.h"      // modeling_lasp.py's and the tokenizer's texts
#include "model_files.cuh" // a tokenizer's folder; which files beside the weights lasp may replace
#include <string>
#include <vector>
#include "kernels.h"       // synthetic_tokens
#include "report.cuh"      // emit, say
#include "safetensors.cuh" // the file format
#include "safetensors_shards.cuh"  // --load-weights of a sharded checkpoint
#include "step_documents.cuh"  // the replicas' documents for the reference
#include "state.cuh"       // State

namespace lasp {

namespace weights_io {

// A weight's shape, as the compiler wrote it into its row.
inline std::vector<int64_t> dims(const TensorSpec& t) { return std::vector<int64_t>(t.dims, t.dims + t.rank); }

[[noreturn]] inline void fail(const std::string& message) { fail_input(message); }

inline std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Writes `bytes` to `path` atomically (a temporary file, fsync'ed, then renamed); stops the program if it cannot.
inline void write_file_bytes(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string((long)::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (f != nullptr) ok = (std::fflush(f) == 0) && (::fsync(::fileno(f)) == 0) && ok, std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
}

}  // namespace weights_io

// The model's files beside its weights: config.json, modeling_lasp.py where config.json's auto_map names it (a
// plain Llama has none), and the spec's tokenizer: `tokenizer bytes`' files, or those of `tokenizer "FOLDER"`
// (--tokenizer overrides the folder), read when called.
inline std::vector<checkpoint::TextFile> model_texts(const Options& opt) {
  std::vector<checkpoint::TextFile> texts = {{"config.json", program::kHfConfig}};
  if (program::kHfModeling[0] != '\0') texts.push_back({program::kHfModelingName, program::kHfModeling});
  for (const program::HfFile* f = program::kTokenizerFiles; f->name != nullptr; ++f)
    texts.push_back({f->name, f->text});
  const std::string folder = opt.tokenizer.empty() ? program::kTokenizerFolder : opt.tokenizer;
  if (!folder.empty()) {
    std::vector<checkpoint::TextFile> files;
    std::string error;
    if (!model_files::tokenizer_folder(folder, &files, &error)) weights_io::fail(error);
    for (checkpoint::TextFile& f : files) texts.push_back(std::move(f));
  }
  return texts;
}

namespace weights_io {

// Writes the model's text files beside `weights_path`, each atomically; stops before writing any of them when
// one is there that lasp did not write (a user's config.json, modeling_lasp.py or tokenizer is left alone).
inline void write_model_texts(const Options& opt, const std::string& weights_path) {
  const std::string folder = folder_of(weights_path);
  const std::vector<checkpoint::TextFile> texts = model_texts(opt);
  for (const checkpoint::TextFile& t : texts)
    if (!model_files::may_replace(folder, t))
      fail(folder + "/" + t.name +
           " exists and lasp did not write it: it is left alone; save the weights into another folder");
  for (const checkpoint::TextFile& t : texts) write_file_bytes(folder + "/" + t.name, t.text);
}

// count elements into device memory at `device` through `staging`, a piece at a time: read(done, n, host) fills
// host[0, n) with elements [done, done + n) (false: it could not, the sentence is the caller's).
template <typename T, typename Read>
inline bool staged(T* device, size_t count, std::vector<T>& staging, Read read) {
  for (size_t done = 0; done < count; done += staging.size()) {
    const size_t n = std::min(staging.size(), count - done);
    if (!read(done, n, staging.data())) return false;
    CUDA_CHECK(cudaMemcpy(device + done, staging.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  return true;
}

}  // namespace weights_io

// A tensor's bytes read straight from the GPU, a piece at a time (a checkpoint written without a host copy).
inline safetensors::ByteSource device_source(const void* device) {
  return [device](uint64_t first, uint64_t bytes, void* dst) {
    return cudaMemcpy(dst, static_cast<const char*>(device) + first, bytes, cudaMemcpyDeviceToHost) == cudaSuccess;
  };
}

// The weights as safetensors tensors (Hugging Face names, bf16): copied from the GPU into `host` (room for
// parameter_elements), or with `host` null read from the GPU as they are written.
inline std::vector<safetensors::TensorOut> weight_tensors(const State& st, bf16* host) {
  const ModelTables& m = st.model;
  if (host != nullptr)
    CUDA_CHECK(cudaMemcpy(host, st.params.base, m.parameter_elements * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<safetensors::TensorOut> tensors;
  for (int r = 0; r < m.parameter_count; r++) {
    const size_t at = m.parameters[r].offset;
    tensors.push_back({m.parameters[r].name, safetensors::DType::BF16, weights_io::dims(m.parameters[r]),
                       host != nullptr ? host + at : nullptr,
                       host != nullptr ? nullptr : device_source(st.params.base + at)});
  }
  return tensors;
}

inline std::vector<safetensors::TensorOut> weight_tensors(const State& st, std::vector<bf16>& host) {
  host.resize(st.model.parameter_elements);
  return weight_tensors(st, host.data());
}

// The weights to `path` (and config.json beside it), from rank 0.
inline void save_weights(State& st, const std::string& path) {
  if (st.layout.rank != 0) return;
  const ModelTables& m = st.model;
  std::vector<bf16> host;
  const std::vector<safetensors::TensorOut> tensors = weight_tensors(st, host);
  weights_io::write_model_texts(st.opt, path);
  std::string error;
  if (!safetensors::write_file(path, tensors, {{"format", "pt"}}, &error)) weights_io::fail(error);
  emit("weights", "\"saved\":%s,\"tensors\":%d", json_string(path).c_str(), m.parameter_count);
  const bool modeling = program::kHfModeling[0] != '\0';
  say("saved %d weight tensors to %s (config.json%s%s beside it)\n", m.parameter_count, path.c_str(),
      modeling ? " and " : "", modeling ? program::kHfModelingName : "");
}

// Elements [first, first + count) of tensor `name` of the checked file `path` into device memory at `device`,
// through `staging` (a rank never holds a whole tensor in host memory); false, with the sentence in *error, when
// the file cannot be read.
template <typename T>
inline bool read_to_device(const std::string& path, const safetensors::Header& header, const std::string& name,
                           size_t first, size_t count, T* device, std::vector<T>& staging, std::string* error) {
  return weights_io::staged(device, count, staging, [&](size_t done, size_t n, T* host) {
    return safetensors::read_elements(path, header, name, first + done, n, host, error);
  });
}

// The weights from `path` (a file, a Hugging Face index or a folder: safetensors_shards.cuh) on every rank,
// after every file is checked against the model. BF16 tensors are read as they are, F32 ones (a model saved in
// fp32) rounded to nearest even, as PyTorch's cast to bfloat16 rounds, and F16 ones (float16) the same after
// widening to fp32 exactly; with `keep_masters` (train mode, before the optimizer exists) an F32 or F16 file's
// values are kept whole instead: the weights are their high halves and
// st.loaded_low their low halves, which make_optimizer takes as the fp32 masters' (master_weights.cuh). Each
// tensor goes through a 64 MiB staging buffer, so a rank never holds the whole model in host memory (eight ranks
// of an 8B model would hold 128 GB); the low halves, where kept, are 2 bytes a parameter of host memory until the
// optimizer takes them.
inline void load_weights(State& st, const std::string& path, bool keep_masters = false) {
  const ModelTables& m = st.model;
  std::vector<safetensors::TensorIn> expected;
  for (int r = 0; r < m.parameter_count; r++)
    expected.push_back(
        {m.parameters[r].name, safetensors::DType::BF16, weights_io::dims(m.parameters[r]), nullptr, true});
  std::string error;
  safetensors::Shards shards;
  if (!safetensors::open_shards(path, expected, &shards, &error)) weights_io::fail(error);
  std::vector<uint16_t> staging((size_t)32 << 20);
  std::vector<float> scratch;
  int f32_tensors = 0, f16_tensors = 0;
  st.loaded_low.clear();
  for (int r = 0; r < m.parameter_count; r++) {
    const std::string& name = m.parameters[r].name;
    const std::string* file = nullptr;
    const safetensors::Header* header = nullptr;
    if (!shards.find(name, &file, &header)) weights_io::fail(path + " has no tensor `" + name + "`");
    const safetensors::DType dtype = safetensors::dtype_of(*header, name);
    f32_tensors += dtype == safetensors::DType::F32;
    f16_tensors += dtype == safetensors::DType::F16;
    // Only F32 and F16 tensors have low halves to keep: the plane is made at the first (BF16 tensors and padding 0).
    if (dtype != safetensors::DType::BF16 && keep_masters && st.loaded_low.empty())
      st.loaded_low.assign(m.parameter_elements, 0);
    uint16_t* device = reinterpret_cast<uint16_t*>(st.params[r]);  // bf16's bits
    uint16_t* low = st.loaded_low.empty() ? nullptr : st.loaded_low.data() + (st.params[r] - st.params.base);
    if (!weights_io::staged(device, m.parameters[r].elements, staging, [&](size_t done, size_t n, uint16_t* host) {
          return safetensors::read_bf16(*file, *header, name, done, n, host, scratch, &error,
                                        low == nullptr ? nullptr : low + done);
        }))
      weights_io::fail(error);
  }
  emit("weights", "\"loaded\":%s,\"tensors\":%d,\"files\":%d,\"f32_tensors\":%d,\"f16_tensors\":%d",
       json_string(path).c_str(), m.parameter_count, (int)shards.paths.size(), f32_tensors, f16_tensors);
  const char* wide = f16_tensors == 0 ? "F32" : f32_tensors == 0 ? "F16" : "F32 and F16";
  char how[128] = "";
  if (f32_tensors + f16_tensors > 0)
    std::snprintf(how, sizeof how, st.loaded_low.empty() ? "; its %s tensors rounded to BF16"
                                                         : "; its %s tensors kept whole as the fp32 master weights (BF16 "
                                                           "for the products)",
                  wide);
  say("loaded %d weight tensors from %s (%d file%s)%s\n", m.parameter_count, path.c_str(), (int)shards.paths.size(),
      shards.paths.size() == 1 ? "" : "s", how);
}

// The step's weight gradients (summed over every rank), tokens, labels (and where documents end) and loss to
// `path`, from rank 0.
inline void save_grads(State& st, const std::string& path, double loss) {
  if (st.layout.rank != 0) return;
  const ModelTables& m = st.model;
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> host(m.parameter_elements);
  CUDA_CHECK(cudaMemcpy(host.data(), st.grads.base, host.size() * sizeof(float), cudaMemcpyDeviceToHost));
  // Every replica's whole sequences, as each rank makes its pieces of them.
  const int64_t rows = (int64_t)program::kDataParallel * program::kBatch, n = program::kSeqLen;
  std::vector<int> ids((size_t)(rows * n)), labels((size_t)(rows * n));
  std::vector<int> ends(program::kStepDocuments ? (size_t)(rows * n) : 0);
  int *d_ids = nullptr, *d_labels = nullptr;
  CUDA_CHECK(cudaMalloc(&d_ids, (size_t)program::kBatch * n * sizeof(int)));
  CUDA_CHECK(cudaMalloc(&d_labels, (size_t)program::kBatch * n * sizeof(int)));
  DocumentBuffers documents;  // each replica's, drawn as its ranks draw them (state.cuh)
  if (program::kStepDocuments) alloc_documents(documents, program::kBatch, (int)n);
  for (int r = 0; r < program::kDataParallel; r++) {
    synthetic_tokens(d_ids, d_labels, program::kBatch, (int)n, program::kWholeSequence, n, program::kVocab, st.opt.seed + r,
                     program::kMaskedObjective, program::kMaskRate, st.ctx.compute);
    if (program::kRealSeqLen < program::kSeqLen)
      drop_padding_targets(d_labels, program::kBatch, (int)n, program::kWholeSequence, program::kRealSeqLen, st.ctx.compute);
    const size_t at = (size_t)r * program::kBatch * n, count = (size_t)program::kBatch * n;
    CUDA_CHECK(cudaMemcpyAsync(ids.data() + at, d_ids, count * sizeof(int), cudaMemcpyDeviceToHost, st.ctx.compute));
    CUDA_CHECK(cudaMemcpyAsync(labels.data() + at, d_labels, count * sizeof(int), cudaMemcpyDeviceToHost, st.ctx.compute));
    if (program::kStepDocuments) {
      draw_documents(documents, program::kDocumentLength, (int)program::kRealSeqLen, st.opt.seed,
                     (uint64_t)r * program::kBatch, st.ctx.compute);
      std::copy(documents.ends.begin(), documents.ends.end(), ends.begin() + (std::ptrdiff_t)at);
    }
    CUDA_CHECK(cudaStreamSynchronize(st.ctx.compute));
  }
  free_documents(documents);
  CUDA_CHECK(cudaFree(d_ids));
  CUDA_CHECK(cudaFree(d_labels));
  const float loss32 = (float)loss;
  std::vector<safetensors::TensorOut> tensors;
  for (int r = 0; r < m.parameter_count; r++)
    tensors.push_back({m.parameters[r].name, safetensors::DType::F32, weights_io::dims(m.parameters[r]),
                       host.data() + m.parameters[r].offset});
  tensors.push_back({"input_ids", safetensors::DType::I32, {rows, n}, ids.data()});
  tensors.push_back({"labels", safetensors::DType::I32, {rows, n}, labels.data()});
  // Where documents end (packed documents, or a padded seq_len's padding): torch_reference.py runs each alone.
  if (program::kStepDocuments) tensors.push_back({"doc_ends", safetensors::DType::I32, {rows, n}, ends.data()});
  tensors.push_back({"loss", safetensors::DType::F32, {1}, &loss32});
  char loss_text[40];
  std::snprintf(loss_text, sizeof loss_text, "%.17g", loss);
  std::string error;
  if (!safetensors::write_file(path, tensors, {{"format", "pt"}, {"loss", loss_text}}, &error)) weights_io::fail(error);
  emit("gradients", "\"saved\":%s,\"tensors\":%d,\"loss\":%.17g", json_string(path).c_str(), m.parameter_count,
       loss);
  say("saved %d gradient tensors, the tokens and the loss to %s\n", m.parameter_count, path.c_str());
}

}  // namespace lasp
