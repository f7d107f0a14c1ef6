import { isTransient } from "./errors.ts";
import type { ClockPort } from "./ports.ts";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 3_000 };

/** Runs `fn`, retrying transient errors with exponential backoff and jitter (half the delay random). */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  clock: ClockPort,
  random: () => number = Math.random,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isTransient(error) || attempt >= policy.attempts) throw error;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await clock.sleep(Math.round(ceiling * (0.5 + random() / 2)));
    }
  }
}

/** Async methods of a port, each of which may be retried. */
type Retryable<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => Promise<R> : T[K];
};

/**
 * The same port with every method call run through `withRetry`: one retrying wrapper instead of a
 * closure around each call. Only for calls that are safe to repeat (reads, and writes that are
 * idempotent or conditional).
 */
export function retrying<T extends object>(port: T, policy: RetryPolicy, clock: ClockPort): Retryable<T> {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => withRetry(() => value.apply(target, args), policy, clock);
    },
  }) as Retryable<T>;
}

/** Each of several ports with every call retried (see `retrying`), keyed as given. */
export function retryingEach<T extends Record<string, object>>(
  ports: T,
  policy: RetryPolicy,
  clock: ClockPort,
): { [K in keyof T]: Retryable<T[K]> } {
  const entries = Object.entries(ports).map(([name, port]) => [name, retrying(port, policy, clock)]);
  return Object.fromEntries(entries) as { [K in keyof T]: Retryable<T[K]> };
}
