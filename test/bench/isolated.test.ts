import { describe, expect, it } from "vitest";
import { runIsolated } from "../../bench/isolated.ts";

describe("npm run bench: a measurement in a process of its own", () => {
  it("brings back the child's figures", async () => {
    // Act
    const figures = await runIsolated({
      kind: "service",
      options: { certificates: 4, duplicatesPerCertificate: 1, factor: 1, deadlineMs: 60_000 },
    });
    // Assess
    expect(figures).toMatchObject({
      factor: 1,
      certificates: 4,
      events: 8,
      decided: 4,
      lost: 0,
      stuckPending: 0,
    });
    expect(figures.ceiling).toBeGreaterThan(0);
  }, 120_000);

  it("fails with the child's error when the measurement throws", async () => {
    // Act
    const run = runIsolated({
      kind: "service",
      options: { certificates: 4, duplicatesPerCertificate: 1, factor: 0, deadlineMs: 60_000 },
    });
    // Assess
    await expect(run).rejects.toThrow(/service measurement failed: .*factor must be a positive number/i);
  }, 120_000);
});
