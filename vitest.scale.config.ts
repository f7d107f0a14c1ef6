import { defineConfig } from "vitest/config";

/** The scale proof (`npm run test:scale`): too slow for `npm test`, run once by CI after it. */
export default defineConfig({
  test: {
    include: ["test/scale/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 900_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
