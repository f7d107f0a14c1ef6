import type { Context, SQSBatchResponse } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createRulePath } from "../../local/rule-path.ts";
import { functionTimeoutFromEnvironment } from "../../local/stack.ts";

describe("the local function timeout", () => {
  const remainingTimeSeen = async (functionTimeoutMs?: number) => {
    const seen: number[] = [];
    const path = createRulePath({
      ...(functionTimeoutMs === undefined ? {} : { functionTimeoutMs }),
      handler: async (_event, context) => {
        seen.push((context as Context).getRemainingTimeInMillis());
        return { batchItemFailures: [] } satisfies SQSBatchResponse;
      },
    });
    path.enqueue("$aws/events/certificates/registered/ca", { n: 1 });
    await path.idle();
    await path.close();
    return seen;
  };

  it("is the remaining time the handler is told of: 60 s unless set", async () => {
    expect(await remainingTimeSeen()).toEqual([60_000]);
    expect(await remainingTimeSeen(8_000)).toEqual([8_000]);
  });

  it("reads JITR_LOCAL_FUNCTION_TIMEOUT_MS and refuses a figure outside Lambda's 1 s - 15 min", () => {
    expect(functionTimeoutFromEnvironment({})).toBeUndefined();
    expect(functionTimeoutFromEnvironment({ JITR_LOCAL_FUNCTION_TIMEOUT_MS: "10000" })).toBe(10_000);
    for (const bad of ["999", "900001", "1.5e3x", "abc", "2500.5"])
      expect(() => functionTimeoutFromEnvironment({ JITR_LOCAL_FUNCTION_TIMEOUT_MS: bad })).toThrow(
        /JITR_LOCAL_FUNCTION_TIMEOUT_MS must be whole milliseconds/,
      );
  });
});
