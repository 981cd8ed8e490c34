import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts", "grammar/**/*.test.ts"],
    // CI has 2 cores; keep workers bounded so fuzz and property suites do not starve each other.
    maxWorkers: 2,
    // Test files share a worker's loaded modules instead of importing the compiler (chevrotain's 700 files
    // first) again for each: a fifth of the suite's CPU time. Tests restore what they change (vi.stubEnv).
    isolate: false,
    testTimeout: 60_000,
    // Finds nvcc once and reports when the nvcc tests are skipped (LASP_SKIP_NVCC=1, `npm run test:fast`).
    globalSetup: ["test/global-setup.ts"],
  },
});
