import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts", "grammar/**/*.test.ts"],
    // CI has 2 cores; keep workers bounded so fuzz and property suites do not starve each other.
    maxWorkers: 2,
    testTimeout: 60_000,
  },
});
