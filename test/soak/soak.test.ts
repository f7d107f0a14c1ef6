import { describe, expect, it } from "vitest";
import { formatViolations } from "../../bench/soak/check.ts";
import { runSoak } from "../../bench/soak/run.ts";

describe("soak (small)", () => {
  it("50 devices through injected IoT faults and a kill -9 of jitr local with a restart on the same data: every check holds", async () => {
    const result = await runSoak({
      devices: 50,
      seed: 1414,
      // The same backoff, four times faster, and a 10 s function timeout, so the run stays under a minute.
      timeScale: 0.25,
      functionTimeoutMs: 10_000,
      killAt: 0.3,
    });
    expect(result.killedAfter).toBeGreaterThan(0);
    expect(result.killedAfter).toBeLessThan(result.published);
    // The restarted stack saw the kill and checked the tables against their indexes.
    expect(result.indexesRepaired).toBeGreaterThanOrEqual(0);
    expect(result.published).toBe(result.reports.filter((r) => r.result === "published").length);
    expect(formatViolations(result.violations)).not.toContain("FAIL");
    expect(result.violations).toEqual([]);
    // Every check held, so nothing is kept for a look.
    expect(result.keptDataDir).toBeUndefined();
  }, 180_000);
});
