// The learning rate of each optimizer step and the gradient-clipping factor: the host-side scalars that the
// AdamW step (adamw.cuh) takes as inputs. The settings are the spec's (grammar/README.md "Training"): `lr`,
// `warmup_steps`, `lr_schedule` cosine | linear | constant, `min_lr` (absolute), `grad_clip` (0 = off).
//
// Design choices:
// - Steps count from 1 to `steps`, the number the run logs and AdamW's bias correction uses.
// - Warmup as llm.c does it (karpathy/llm.c llmc/schedulers.h get_learning_rate, called from train_gpt2.cu's
//   loop with its 0-based `step`: lr * (step + 1) / warmup_iterations): step k <= W gets lr * k / W, a line
//   through 0 that reaches `lr` at step W (the schema's "rises linearly from 0 to lr"), so no step trains at
//   rate 0. With W = 0 there is no warmup.
// - Decay over the remaining steps k = W+1 .. steps with ratio r = (k - W) / (steps - W): cosine
//   min + (lr - min) * (1 + cos(pi r)) / 2, linear lr - (lr - min) * r. Unlike llm.c, whose ratio
//   (step - W) / (steps - W) on the 0-based step stops one step short of min_lr, the last step here gets
//   min_lr exactly, as the schema's `min_lr` ("the learning rate at the last step") says; at r = 0 (step W)
//   both formulas give lr, so warmup and decay meet without a jump. `constant` ignores min_lr.
// - Computed in double and rounded once by the caller to the float the kernel takes.
// - The clip factor is PyTorch's clip_grad_norm_: min(1, clip / (norm + 1e-6)) of the global norm, 1 when
//   clip is 0. A non-finite norm is the caller's to catch first (the run stops there): here it gives 0 or NaN.
// - Host code only, plain C++17 (no CUDA header): tested with g++ (test/lr-schedule.test.ts). Settings are
//   checked by `check`, which returns a sentence (empty when they are valid), as token_files.cuh does.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace lasp {

enum LrScheduleKind { kLrCosine, kLrLinear, kLrConstant };

struct LrSchedule {
  LrScheduleKind kind = kLrCosine;
  double lr = 3e-4;      // the peak, reached at step warmup
  double min_lr = 3e-5;  // the rate at step `steps` (cosine, linear)
  int64_t warmup = 0;    // steps of linear warmup
  int64_t steps = 1;     // optimizer steps of the run
};

namespace lr_schedule {

constexpr double kPi = 3.14159265358979323846;
// PyTorch's clip_grad_norm_ adds this to the norm, so a zero gradient gives a finite factor.
constexpr double kClipEpsilon = 1e-6;

inline std::string number(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

// Why the settings are unusable, or "" when they are valid.
inline std::string check(const LrSchedule& s) {
  if (s.steps < 1) return "lr schedule: steps " + std::to_string(s.steps) + " must be at least 1";
  if (s.warmup < 0 || s.warmup > s.steps)
    return "lr schedule: warmup " + std::to_string(s.warmup) + " must be between 0 and steps " +
           std::to_string(s.steps);
  if (!(s.lr > 0) || !std::isfinite(s.lr)) return "lr schedule: lr " + number(s.lr) + " must be positive";
  if (s.kind != kLrConstant && (!(s.min_lr >= 0) || s.min_lr > s.lr))
    return "lr schedule: min_lr " + number(s.min_lr) + " must be between 0 and lr " + number(s.lr);
  return "";
}

}  // namespace lr_schedule

// The learning rate of step k (1 <= k <= steps) of a schedule that passed lr_schedule::check; a step outside
// the run is clamped into it (a resumed run past its end keeps min_lr rather than extrapolating).
inline double lr_at(const LrSchedule& s, int64_t k) {
  if (k < 1) k = 1;
  if (k > s.steps) k = s.steps;
  if (k <= s.warmup) return s.lr * static_cast<double>(k) / static_cast<double>(s.warmup);
  if (s.kind == kLrConstant) return s.lr;
  const double r = static_cast<double>(k - s.warmup) / static_cast<double>(s.steps - s.warmup);
  if (s.kind == kLrLinear) return s.lr - (s.lr - s.min_lr) * r;
  return s.min_lr + (s.lr - s.min_lr) * 0.5 * (1.0 + std::cos(lr_schedule::kPi * r));
}

// The factor the gradients are multiplied by, from the global sum of squares over every shard.
inline double clip_factor(double norm_squared, double clip) {
  if (clip == 0) return 1.0;
  const double f = clip / (std::sqrt(norm_squared) + lr_schedule::kClipEpsilon);
  if (std::isnan(f)) return f;  // stays NaN, so the caller's finiteness check cannot miss it
  return f < 1.0 ? f : 1.0;
}

}  // namespace lasp
