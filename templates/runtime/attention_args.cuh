// The named operands of the attention calls the program makes (kernels.h): one struct per call shape, its
// fields named as the schedule IR's operands (src/schedule/ops.ts), so a generated call reads
//   lasp::LinearIntraArgs args;
//   args.q = b.q; ...; args.piece = lasp::Piece{0, 512}; args.causal = true;
//   lasp::linear_intra(args, c.dims, c.tables.kLDecay, c.compute);
// Every field has a default: an optional state (P, G) or workspace left unset is nullptr, which the
// kernels read as "no such term" or "recompute". The shape the call runs at (dims, decays, stream) follows
// the struct as plain arguments.
#pragma once
#include "types.cuh"  // bf16, Piece, PieceMap, SlotList

namespace lasp {

// ---- Linear attention, one piece at a time (linear_attention.cuh); states fp32 [batch][heads][d][d].

// linear.state: M of the piece; kv_ws keeps its segment states for the walks after it.
struct LinearStateArgs {
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  float* m = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  float* flag = nullptr;  // with docs: fp32 [batch], 1 if a document ends inside the piece, else 0
  // Bidirectional layers with docs (set only by them): head = sum_{i <= f} k_i^T v_i, the piece's first document's
  // part (f: the piece's first end, its last row if none); m is then the last document's part (lam = 1).
  float* head = nullptr;
  float* kv_ws = nullptr;
};

// linear.intra (and linear.full, the whole sequence as one piece): the masked product inside the piece.
struct LinearIntraArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  bf16* o = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  bool causal = true;
  const float* kv_ws = nullptr;
};

// linear.inter: o += the prefix state's term.
struct LinearInterArgs {
  const bf16* q = nullptr;
  const float* p = nullptr;
  // Bidirectional layers with docs (set only by them, nullptr: no such term):
  // o_i += [i <= f] q_i p + [i > l] q_i after.
  const float* after = nullptr;
  bf16* o = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
};

// linear.forward_fused: linear.intra with the prefix state P added inside the walk (nullptr: none).
struct LinearForwardFusedArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const float* p = nullptr;
  const float* after = nullptr;  // bidirectional with docs: o_i += [i > l] q_i after (p: [i <= f] q_i p)
  bf16* o = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  bool causal = true;
  const float* kv_ws = nullptr;
};

// linear.grad_state: dM of the piece; qdo_ws keeps its segment states for the dK, dV walk.
struct LinearGradStateArgs {
  const bf16* q = nullptr;
  const bf16* dout = nullptr;
  float* dm = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  float* flag = nullptr;  // with docs: fp32 [batch], 1 if a document ends inside the piece, else 0
  // Bidirectional layers with docs (set only by them): tail = sum_{j > l} q_j^T do_j, the piece's last document's
  // part (l: the piece's last end, -1 if none); dm is then the first document's part sum_{i <= f} q_i^T do_i.
  float* tail = nullptr;
  float* qdo_ws = nullptr;
};

// linear.intra_backward (and linear.full_backward): dq, dk, dv of the piece, overwritten.
struct LinearIntraBackwardArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* dout = nullptr;
  bf16* dq = nullptr;
  bf16* dk = nullptr;
  bf16* dv = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  bool causal = true;
  const float* kv_ws = nullptr;
  const float* qdo_ws = nullptr;
};

// linear.dq_inter: dq += the prefix state's term.
struct LinearDqInterArgs {
  const bf16* dout = nullptr;
  const float* p = nullptr;
  // Bidirectional layers with docs: dq_i += [i <= f] do_i p^T + [i > l] do_i after^T.
  const float* after = nullptr;
  bf16* dq = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
};

// linear.dkdv_inter: dk, dv += the suffix state's terms.
struct LinearDkdvInterArgs {
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const float* g = nullptr;
  // Bidirectional layers with docs: dk_j += [j <= f] v_j before^T + [j > l] v_j g^T, dv_j += [j <= f] k_j before +
  // [j > l] k_j g.
  const float* before = nullptr;
  bf16* dk = nullptr;
  bf16* dv = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
};

// linear.backward_fused: linear.intra_backward with the P and G terms inside the walks (nullptr: none).
struct LinearBackwardFusedArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* dout = nullptr;
  const float* p = nullptr;
  const float* g = nullptr;
  // Bidirectional with docs: dq_i += [i > l] do_i after^T; dk_j += [j <= f] v_j before^T, dv_j += [j <= f] k_j before
  // (p reaches the rows i <= f, g the rows j > l).
  const float* after = nullptr;
  const float* before = nullptr;
  bf16* dq = nullptr;
  bf16* dk = nullptr;
  bf16* dv = nullptr;
  Piece piece{0, 0};
  Documents docs{};
  int position = 0;  // the piece's first row's global position (read with docs)
  bool causal = true;
  const float* kv_ws = nullptr;
  const float* qdo_ws = nullptr;
};

// ---- Softmax attention (softmax_attention.cuh, softmax_support.cuh, softmax_whole.cuh, softmax_gathered.cuh).

// softmax.block: this rank's queries against one block of keys; positions from the piece maps. o and lse
// are the fp32 partials the merge combines; o_out (bf16), when set, receives the normalised output instead.
struct SoftmaxBlockArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  float* o = nullptr;
  float* lse = nullptr;
  bf16* o_out = nullptr;
  PieceMap q_map{0, {0, 0}, {0, 0}, {0, 0}};
  PieceMap k_map{0, {0, 0}, {0, 0}, {0, 0}};
  bool causal = true;
  Documents docs{};  // rows at global positions (the piece maps; whole sequence: 0..)
};

// softmax.block_backward: adds one block's gradients into the fp32 accumulators dq, dk, dv.
struct SoftmaxBlockBackwardArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* o = nullptr;
  const float* lse = nullptr;
  const bf16* dout = nullptr;
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  PieceMap q_map{0, {0, 0}, {0, 0}, {0, 0}};
  PieceMap k_map{0, {0, 0}, {0, 0}, {0, 0}};
  bool causal = true;
  Documents docs{};  // rows at global positions (the piece maps; whole sequence: 0..)
};

// softmax.merge: o (bf16 [batch][rows][heads][head_dim]) and lse from the partials of the slots `sources`.
struct SoftmaxMergeArgs {
  const float* parts = nullptr;
  const float* part_lse = nullptr;
  SlotList sources{0, {}};
  bf16* o = nullptr;
  float* lse = nullptr;
  int batch = 0;
  int rows = 0;
  int heads = 0;
  int head_dim = 0;
};

// softmax.full: a whole sequence on one rank; lse in the backend's own layout (see kernels.h).
struct SoftmaxFullArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  bf16* o = nullptr;
  float* lse = nullptr;
  bool causal = true;
  Documents docs{};  // rows at global positions (the piece maps; whole sequence: 0..)
};

// softmax.full_backward: dq, dk, dv of a whole sequence, overwritten.
struct SoftmaxFullBackwardArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* o = nullptr;
  const float* lse = nullptr;
  const bf16* dout = nullptr;
  bf16* dq = nullptr;
  bf16* dk = nullptr;
  bf16* dv = nullptr;
  bool causal = true;
  Documents docs{};  // rows at global positions (the piece maps; whole sequence: 0..)
};

// softmax.gathered (LASP-2H after its AllGather): this rank's queries (its pieces, q_map) against the keys of the
// whole sequence in global order; o and lse final (no merge), lse in the backend's own layout (see kernels.h).
// k, v [batch][d.k_rows][kv_heads][head_dim], row i = token i, d.k_rows = the whole sequence; q and o the rank's
// local rows [batch][d.q_rows][heads][head_dim].
struct SoftmaxGatheredArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  bf16* o = nullptr;
  float* lse = nullptr;
  PieceMap q_map{0, {0, 0}, {0, 0}, {0, 0}};
  // Keys [0, key_rows) are all any query may see (causal: the end of the last piece; else d.k_rows); rows from
  // key_rows on are never read.
  int key_rows = 0;
  bool causal = true;
  Documents docs{};  // over global positions
};

// softmax.gathered_backward: dq (bf16, like q) overwritten; dk, dv fp32 [batch][d.k_rows][kv_heads][head_dim] in
// global order, every row overwritten (zeros where no query of this rank reaches).
struct SoftmaxGatheredBackwardArgs {
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  const bf16* o = nullptr;
  const float* lse = nullptr;
  const bf16* dout = nullptr;
  bf16* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  PieceMap q_map{0, {0, 0}, {0, 0}, {0, 0}};
  int key_rows = 0;
  bool causal = true;
  Documents docs{};  // over global positions
};

}  // namespace lasp
