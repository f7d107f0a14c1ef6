import { describe, expect, it } from "vitest";
import { TransientError, ValidationError } from "../../domain/errors.ts";
import { retrying, retryingEach, withRetry } from "../../domain/retry.ts";
import { FakeClock } from "../support/fakes.ts";

const policy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 };

/** A port whose `read` fails transiently `failures` times, then answers. */
class FlakyStore {
  calls = 0;
  constructor(private failures: number) {}
  async read(key: string): Promise<string> {
    this.calls++;
    if (this.calls <= this.failures) throw new TransientError("throttled");
    return `value of ${key}`;
  }
  async reject(): Promise<never> {
    this.calls++;
    throw new ValidationError("bad input", []);
  }
  readonly label = "store";
}

describe("withRetry", () => {
  it("retries transient errors with growing delays, then answers", async () => {
    // Prepare
    const clock = new FakeClock();
    const store = new FlakyStore(2);
    // Act
    const value = await withRetry(
      () => store.read("a"),
      policy,
      clock,
      () => 1,
    );
    // Assess
    expect(value).toBe("value of a");
    expect(clock.sleeps).toEqual([100, 200]);
  });

  it("gives up after the policy's attempts and rethrows the last error", async () => {
    const clock = new FakeClock();
    const store = new FlakyStore(5);
    await expect(withRetry(() => store.read("a"), policy, clock)).rejects.toBeInstanceOf(TransientError);
    expect(store.calls).toBe(3);
  });
});

describe("retrying (a port with every call retried)", () => {
  it("retries each method call of the port and keeps its `this`", async () => {
    // Prepare
    const clock = new FakeClock();
    const store = new FlakyStore(2);
    const port = retrying(store, policy, clock);
    // Act
    const value = await port.read("b");
    // Assess
    expect(value).toBe("value of b");
    expect(store.calls).toBe(3);
    expect(clock.sleeps).toHaveLength(2);
  });

  it("does not retry a permanent error, and leaves non-function members as they are", async () => {
    const clock = new FakeClock();
    const store = new FlakyStore(0);
    const port = retrying(store, policy, clock);
    await expect(port.reject()).rejects.toBeInstanceOf(ValidationError);
    expect(store.calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
    expect(port.label).toBe("store");
  });
});

describe("retryingEach (several ports at once)", () => {
  it("gives each port, under its own name, with every call retried", async () => {
    // Prepare
    const clock = new FakeClock();
    const first = new FlakyStore(1);
    const second = new FlakyStore(2);
    // Act
    const ports = retryingEach({ first, second }, policy, clock);
    const values = [await ports.first.read("x"), await ports.second.read("y")];
    // Assess
    expect(values).toEqual(["value of x", "value of y"]);
    expect([first.calls, second.calls]).toEqual([2, 3]);
  });
});
