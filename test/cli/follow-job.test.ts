/** `followJob` (jobs wait, import --job, backup, restore): a poll without an answer is asked again, an answer is final. */
import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AdminClient, type ApiResponse } from "../../api/client.ts";
import { followJob } from "../../cli/job-follow.ts";

const ID = "0b8f5c0e-1f1a-4c1e-9a49-1d2c3b4a5f60";
const job = (state: string) => ({
  id: ID,
  kind: "import",
  state,
  params: {},
  progress: { done: 1, total: 1 },
  startedBy: "me",
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  version: 2,
});

const answer = (status: number, body: unknown): ApiResponse => ({
  status,
  headers: {},
  text: async () => JSON.stringify(body),
  chunks: async function* () {
    yield JSON.stringify(body);
  },
});

/** A client whose transport plays the given outcomes in turn: an answer, or a failure to reach the API. */
function scripted(outcomes: (ApiResponse | Error)[]) {
  let calls = 0;
  const client = new AdminClient<Readable>({
    baseUrl: "http://127.0.0.1:1",
    transport: async () => {
      calls += 1;
      const next = outcomes.shift();
      if (next === undefined) throw new Error("no more outcomes");
      if (next instanceof Error) throw next;
      return next;
    },
  });
  return { client, calls: () => calls };
}

describe("followJob", () => {
  it("asks again when a poll gets no answer (a socket hang up), then follows the job to its end", async () => {
    // Prepare
    const hangUp = new Error("cannot reach the admin API at http://127.0.0.1:1: socket hang up");
    const api = scripted([answer(200, job("running")), hangUp, hangUp, answer(200, job("succeeded"))]);

    // Act
    const ended = await followJob(api.client, ID, 1);

    // Assess
    expect(ended.state).toBe("succeeded");
    expect(api.calls()).toBe(4);
  });

  it("stops at the API's own answer, and after five polls in a row without one", async () => {
    // Prepare
    const gone = scripted([answer(404, { error: { code: "NotFound", message: `no job ${ID}` } })]);
    const down = scripted(Array.from({ length: 8 }, () => new Error("connect ECONNREFUSED")));

    // Act
    const [notFound, unreachable] = await Promise.all([
      followJob(gone.client, ID, 1).catch((e: unknown) => e),
      followJob(down.client, ID, 1).catch((e: unknown) => e),
    ]);

    // Assess
    expect(notFound).toMatchObject({ status: 404, message: `no job ${ID}` });
    expect(gone.calls()).toBe(1);
    expect(unreachable).toMatchObject({ message: "connect ECONNREFUSED" });
    expect(down.calls()).toBe(6);
  });
});
