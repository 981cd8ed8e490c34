// Runs once per `vitest run`, before any test file: finds nvcc once for every worker, and says plainly when
// the nvcc tests are skipped (`npm run test:fast`, or no CUDA toolkit), at the start and again beside the
// summary, so a green run without them is never mistaken for a full one. Drops nvcc compiles that no run has
// used for 14 days from the cache (test/nvcc-cache.ts).
import type { TestProject } from "vitest/node";
import { pruneNvccCache } from "./nvcc-cache.js";
import { detectNvcc, nvccCacheRoot } from "./nvcc-toolchain.js";

export default function setup(project: TestProject): () => void {
  const nvcc = detectNvcc();
  project.provide("nvcc", nvcc);
  if (nvcc.available) pruneNvccCache(nvccCacheRoot(), 14);
  const notice = `\nnvcc tests SKIPPED: ${nvcc.reason}. The generated CUDA was not compiled; run \`npm test\` for that.\n`;
  if (!nvcc.available) process.stdout.write(notice);
  return () => {
    if (!nvcc.available) process.stdout.write(notice);
  };
}
