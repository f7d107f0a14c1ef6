/**
 * How a device waits before it tries to connect again, and a seeded random source so a run can be replayed.
 */

export type RetryPattern = "backoff" | "fixed";

/** Firmware-like retries as AWS advises: exponential from 1 s with full jitter, capped at 60 s. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 60_000;
/** The naive alternative: every 10 s. */
export const FIXED_DELAY_MS = 10_000;

/** The delay before attempt `attempt + 1`, after `attempt` (1-based) failed. */
export function retryDelayMs(pattern: RetryPattern, attempt: number, random: () => number): number {
  if (pattern === "fixed") return FIXED_DELAY_MS;
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
