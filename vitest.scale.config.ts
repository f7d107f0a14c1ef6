import { defineConfig } from "vitest/config";

/** The scale proof (`npm run test:scale`): too slow for `npm test`, run once by CI after it. */
export default defineConfig({
  test: {
    include: ["test/scale/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    // 200,000 lines take about 9 minutes on one idle core; a loaded CI machine takes longer.
    testTimeout: 2_400_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
