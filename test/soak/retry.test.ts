import { describe, expect, it } from "vitest";
import { retryDelayMs, seededRandom } from "../../bench/devices/retry.ts";

describe("device retry patterns", () => {
  it("backoff: full jitter under a ceiling that doubles from 1 s and stops at 60 s", () => {
    const top = () => 0.999_999;
    expect(
      [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => Math.ceil(retryDelayMs("backoff", n, top) / 1000)),
    ).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
    expect(retryDelayMs("backoff", 5, () => 0)).toBe(0);
    expect(retryDelayMs("backoff", 3, () => 0.5)).toBe(2_000);
  });

  it("fixed: 10 s whatever the attempt", () => {
    expect([1, 2, 9].map((n) => retryDelayMs("fixed", n, Math.random))).toEqual([10_000, 10_000, 10_000]);
  });

  it("the seeded source replays and stays in [0, 1)", () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const draws = Array.from({ length: 1000 }, () => a());
    expect(draws).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(draws).size).toBeGreaterThan(990);
    expect(seededRandom(43)()).not.toBe(draws[0]);
  });
});
