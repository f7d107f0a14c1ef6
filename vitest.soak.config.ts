import { defineConfig } from "vitest/config";

/**
 * The small soak (`npm run test:soak`): 50 devices, injected IoT faults, a kill -9 of `jitr local` and a
 * restart on the same data, then every check of `npm run soak`. Kept out of `npm test` while a kill between
 * a device's lot mark and its lot count can leave the count one short (see README "Soak").
 */
export default defineConfig({
  test: {
    include: ["test/soak/soak.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
