import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The scale proof runs on its own: `npm run test:scale` (vitest.scale.config.ts).
    exclude: [...configDefaults.exclude, "test/scale/**"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
