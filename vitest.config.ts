import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The scale proof runs on its own: `npm run test:scale` (vitest.scale.config.ts); so does the small
    // soak, `npm run test:soak` (vitest.soak.config.ts).
    exclude: [...configDefaults.exclude, "test/scale/**", "test/soak/soak.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
