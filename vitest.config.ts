import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Test files spawn servers, child processes and real models; on a 2-core CI machine running them one at a time
    // keeps each test's own deadlines meaningful.
    fileParallelism: false,
  },
});
