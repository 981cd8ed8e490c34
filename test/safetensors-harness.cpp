// The host logic of templates/runtime/safetensors.cuh driven from test/safetensors.test.ts:
//   harness write FILE            writes the three tensors below (and __metadata__ {"format": "pt"})
//   harness write-ids FILE        writes token ids and labels as I32 (what --save-grads adds to gradients)
//   harness write-sourced FILE [fail]   the same tensors, the first and last given by sources read through a
//                                 5-byte staging buffer (pieces that split elements); `fail`: the last source
//                                 fails on its second piece. Prints the pieces asked for, then "wrote 3 tensors"
//   harness read FILE [VARIANT]   reads FILE expecting them, checks the values, prints "ok N tensors";
//                                 VARIANT changes what is expected: shape, dtype, missing, fewer
//   harness read-part FILE NAME FIRST COUNT   check_file, then read_elements: prints the elements (F32 as
//                                 numbers, BF16 as their 16 bits in hex)
//   harness read-bf16 FILE NAME [masters]   the three tensors expected as BF16 with F32 taken too
//                                 (--load-weights' check), then read_bf16 of NAME whole: prints its BF16 bits in
//                                 hex; `masters`: with the low halves kept, "hi:lo" each
//   harness read-shards PATH [VARIANT]   the same three tensors through safetensors_shards.cuh (a file, a
//                                 Hugging Face index or a folder), each read from its file; prints
//                                 "ok 3 tensors from N files" and the index read, if any
// Errors go to stderr with exit code 1, as the program reports a wrong --load-weights file.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "safetensors.cuh"
#include "safetensors_shards.cuh"

namespace st = lasp::safetensors;

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1], path = argv[2], variant = argc > 3 ? argv[3] : "ok";
  // Known bit patterns: bf16 values as their 16 bits, f32 values exactly representable.
  std::vector<uint16_t> embed(12), up(10);
  for (int i = 0; i < 12; ++i) embed[i] = static_cast<uint16_t>(0x3F80 + i);
  for (int i = 0; i < 10; ++i) up[i] = static_cast<uint16_t>(0x4000 + 3 * i);
  std::vector<float> norm = {1.5f, -2.25f, 0.125f};
  std::string error;

  if (mode == "write-ids") {
    const std::vector<int32_t> ids = {0, 7, 128255, 3, 3, 1}, labels = {7, 128255, 3, 3, 1, -1};
    const std::vector<st::TensorOut> tensors = {
        {"input_ids", st::DType::I32, {2, 3}, ids.data()},
        {"labels", st::DType::I32, {2, 3}, labels.data()},
    };
    if (!st::write_file(path, tensors, {{"loss", "11.5"}}, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    std::vector<int32_t> back(6, 0);
    if (!st::read_file(path, {{"input_ids", st::DType::I32, {2, 3}, back.data()}, {"labels", st::DType::I32, {2, 3}, back.data()}},
                       &error) ||
        back != labels) {
      std::fprintf(stderr, "I32 round trip: %s\n", error.c_str());
      return 1;
    }
    std::printf("wrote %zu tensors\n", tensors.size());
    return 0;
  }

  if (mode == "write-sourced") {
    const bool fail = variant == "fail";
    std::string asked;
    auto source_of = [&](const void* data, bool may_fail) {
      return [&asked, data, may_fail, fail, calls = 0](uint64_t first, uint64_t bytes, void* dst) mutable {
        asked += std::to_string(first) + "+" + std::to_string(bytes) + " ";
        if (may_fail && fail && ++calls == 2) return false;
        std::memcpy(dst, static_cast<const unsigned char*>(data) + first, bytes);
        return true;
      };
    };
    const std::vector<st::TensorOut> tensors = {
        {"model.embed_tokens.weight", st::DType::BF16, {4, 3}, nullptr, source_of(embed.data(), false)},
        {"model.layers.0.mlp.up_proj.weight", st::DType::BF16, {2, 5}, up.data()},
        {"model.norm.weight", st::DType::F32, {3}, nullptr, source_of(norm.data(), true)},
    };
    const bool ok = st::write_file(path, tensors, {{"format", "pt"}}, &error, 5);
    std::printf("%s\n", asked.c_str());
    if (!ok) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    std::printf("wrote %zu tensors\n", tensors.size());
    return 0;
  }

  if (mode == "write") {
    const std::vector<st::TensorOut> tensors = {
        {"model.embed_tokens.weight", st::DType::BF16, {4, 3}, embed.data()},
        {"model.layers.0.mlp.up_proj.weight", st::DType::BF16, {2, 5}, up.data()},
        {"model.norm.weight", st::DType::F32, {3}, norm.data()},
    };
    if (!st::write_file(path, tensors, {{"format", "pt"}}, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    std::printf("wrote %zu tensors\n", tensors.size());
    return 0;
  }

  if (mode == "read-bf16" && (argc == 4 || argc == 5)) {
    st::Header header;
    const std::vector<st::TensorIn> all = {
        {"model.embed_tokens.weight", st::DType::BF16, {4, 3}, nullptr, true},
        {"model.layers.0.mlp.up_proj.weight", st::DType::BF16, {2, 5}, nullptr, true},
        {"model.norm.weight", st::DType::BF16, {3}, nullptr, true},
    };
    const std::string name = argv[3];
    uint64_t count = 0;
    for (const st::TensorIn& t : all)
      if (t.name == name) count = t.shape.size() == 2 ? t.shape[0] * t.shape[1] : t.shape[0];
    const bool masters = argc == 5 && std::string(argv[4]) == "masters";
    std::vector<uint16_t> bits(count), low(count, 0xdead);
    std::vector<float> scratch(3);  // smaller than a tensor: the F32 read goes in pieces
    if (!st::check_file(path, all, &header, &error) ||
        !st::read_bf16(path, header, name, 0, count, bits.data(), scratch, &error, masters ? low.data() : nullptr)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    for (uint64_t i = 0; i < count; ++i) {
      std::printf("%s%04x", i ? " " : "", bits[i]);
      if (masters) std::printf(":%04x", low[i]);
    }
    std::printf("\n");
    return 0;
  }

  if (mode == "read-part" && argc == 6) {
    st::Header header;
    const std::vector<st::TensorIn> all = {
        {"model.embed_tokens.weight", st::DType::BF16, {4, 3}, nullptr},
        {"model.layers.0.mlp.up_proj.weight", st::DType::BF16, {2, 5}, nullptr},
        {"model.norm.weight", st::DType::F32, {3}, nullptr},
    };
    const std::string name = argv[3];
    const uint64_t first = std::strtoull(argv[4], nullptr, 10), count = std::strtoull(argv[5], nullptr, 10);
    std::vector<unsigned char> bytes(count * 4 + 1);
    if (!st::check_file(path, all, &header, &error) ||
        !st::read_elements(path, header, name, first, count, bytes.data(), &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    for (uint64_t i = 0; i < count; ++i) {
      if (name == "model.norm.weight") {
        float v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        std::printf("%s%g", i ? " " : "", v);
      } else {
        uint16_t v;
        std::memcpy(&v, bytes.data() + 2 * i, 2);
        std::printf("%s%04x", i ? " " : "", v);
      }
    }
    std::printf("\n");
    return 0;
  }
  std::vector<uint16_t> embed_in(12, 0), up_in(10, 0);
  std::vector<float> norm_in(3, 0.f);
  std::vector<st::TensorIn> expected = {
      {"model.embed_tokens.weight", st::DType::BF16, {4, 3}, embed_in.data()},
      {"model.layers.0.mlp.up_proj.weight", st::DType::BF16, {2, 5}, up_in.data()},
      {"model.norm.weight", st::DType::F32, {3}, norm_in.data()},
  };
  if (variant == "shape") expected[0].shape = {3, 4};
  if (variant == "dtype") expected[2].dtype = st::DType::BF16;
  if (variant == "missing") expected.push_back({"lm_head.weight", st::DType::BF16, {4, 3}, embed_in.data()});
  if (variant == "fewer") expected.pop_back();
  if (mode == "read-shards") {
    st::Shards shards;
    if (!st::open_shards(path, expected, &shards, &error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
    for (const st::TensorIn& t : expected) {
      const std::string* file = nullptr;
      const st::Header* header = nullptr;
      uint64_t count = 1;
      for (int64_t d : t.shape) count *= (uint64_t)d;
      if (!shards.find(t.name, &file, &header) || !st::read_elements(*file, *header, t.name, 0, count, t.data, &error)) {
        std::fprintf(stderr, "%s\n", error.empty() ? ("no file has " + t.name).c_str() : error.c_str());
        return 1;
      }
    }
    if (embed_in != embed || up_in != up || std::memcmp(norm_in.data(), norm.data(), sizeof(float) * 3) != 0) {
      std::fprintf(stderr, "the values read differ from the values written\n");
      return 1;
    }
    std::printf("ok %zu tensors from %zu files%s%s\n", expected.size(), shards.paths.size(),
                shards.index.empty() ? "" : " of ", shards.index.c_str());
    return 0;
  }
  st::Header header;
  if (!st::read_file(path, expected, &error, &header)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  if (embed_in != embed || up_in != up || std::memcmp(norm_in.data(), norm.data(), sizeof(float) * 3) != 0) {
    std::fprintf(stderr, "the values read differ from the values written\n");
    return 1;
  }
  std::printf("ok %zu tensors", header.tensors.size());
  for (const auto& kv : header.metadata) std::printf(" %s=%s", kv.first.c_str(), kv.second.c_str());
  std::printf("\n");
  return 0;
}
