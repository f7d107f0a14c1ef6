/** The job runner over an in-memory jobs table: slices, crash and resume, leases, cancel, budgets, failures. */
import { describe, expect, it } from "vitest";
import { TransientError } from "../../../domain/errors.ts";
import { JobRunner } from "../../../domain/jobs/runner.ts";
import type { Job, JobBudget, JobKind, JobStep } from "../../../domain/jobs/types.ts";
import { FakeClock } from "../../support/fakes.ts";
import { MemoryJobStore } from "../../support/job-fakes.ts";

/** Counts from the cursor to `total`, `per` units a slice, noting every unit it did. */
class Counter implements JobKind {
  readonly kind = "count";
  readonly did: number[] = [];
  /** Called at the start of each slice (to crash, cancel or spend time there). */
  before: (slice: number, budget: JobBudget) => Promise<void> = async () => undefined;
  slices = 0;

  constructor(
    private readonly total: number,
    private readonly per: number,
  ) {}

  async step(_job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep> {
    this.slices += 1;
    await this.before(this.slices, budget);
    const from = cursor === undefined ? 0 : Number(cursor);
    const to = Math.min(this.total, from + this.per);
    for (let unit = from; unit < to; unit++) this.did.push(unit);
    const done = to === this.total;
    return { cursor: String(to), progress: { done: to, total: this.total }, done, result: { counted: to } };
  }
}

const never = new Promise<never>(() => undefined);

function world(kind: JobKind) {
  const clock = new FakeClock();
  const store = new MemoryJobStore();
  const now = clock.now().toISOString();
  const job: Job = {
    id: "job-1",
    kind: kind.kind,
    state: "queued",
    params: {},
    progress: { done: 0 },
    startedBy: "admin",
    createdAt: now,
    updatedAt: now,
    version: 1,
  };
  void store.create(job);
  const runner = (owner: string) =>
    new JobRunner({ store, kinds: [kind], clock, owner, leaseMs: 60_000, sliceMs: 10_000 });
  return { clock, store, runner };
}

describe("job runner", () => {
  it("runs slices from the saved cursor until the job is done, saving progress and result", async () => {
    // Prepare
    const kind = new Counter(10, 3);
    const { store, runner } = world(kind);

    // Act
    const outcome = await runner("w1").run("job-1", 60_000);

    // Assess
    expect(outcome).toBe("ended");
    const job = await store.get("job-1");
    expect(job).toMatchObject({
      state: "succeeded",
      progress: { done: 10, total: 10 },
      result: { counted: 10 },
    });
    expect(job?.lease).toBeUndefined();
    expect(kind.did).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(kind.slices).toBe(4);
  });

  it("resumes a crashed worker's job from its last saved cursor once its lease expires", async () => {
    // Prepare: the first worker dies in its third slice (the step never returns)
    const kind = new Counter(10, 3);
    const { clock, store, runner } = world(kind);
    kind.before = async (slice) => {
      if (slice === 3) await never;
    };
    void runner("w1").run("job-1", 60_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    kind.before = async () => undefined;

    // Act: another worker comes while the lease lives, then after it expired
    const whileLeased = await runner("w2").run("job-1", 60_000);
    await clock.sleep(60_001);
    const afterExpiry = await runner("w2").run("job-1", 60_000);

    // Assess: the units of the two saved slices are not done again
    expect(whileLeased).toBe("busy");
    expect(afterExpiry).toBe("ended");
    expect(kind.did).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await store.get("job-1")).toMatchObject({ state: "succeeded", progress: { done: 10 } });
  });

  it("stops a worker whose lease expired and was taken over: its save loses and writes nothing", async () => {
    // Prepare: w1's second slice outlasts its lease; w2 takes the job over meanwhile
    const kind = new Counter(6, 3);
    const { clock, store, runner } = world(kind);
    let release: () => void = () => undefined;
    kind.before = async (slice) => {
      if (slice === 2) await new Promise<void>((resolve) => (release = resolve));
    };
    const first = runner("w1").run("job-1", 600_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    kind.before = async () => undefined;
    await clock.sleep(60_001);
    const second = await runner("w2").run("job-1", 60_000);

    // Act
    release();
    const stale = await first;

    // Assess
    expect(second).toBe("ended");
    expect(stale).toBe("ended");
    expect(await store.get("job-1")).toMatchObject({ state: "succeeded", result: { counted: 6 } });
  });

  it("stops at the next save when the job is cancelled, and leaves it cancelled", async () => {
    // Prepare: an admin cancels during the second slice
    const kind = new Counter(10, 2);
    const { store, runner } = world(kind);
    kind.before = async (slice) => {
      if (slice !== 2) return;
      const job = await store.get("job-1");
      if (job) await store.update({ ...job, state: "cancelled", version: job.version + 1 }, job.version);
    };

    // Act
    const outcome = await runner("w1").run("job-1", 60_000);
    const again = await runner("w1").run("job-1", 60_000);

    // Assess
    expect(outcome).toBe("ended");
    expect(again).toBe("ended");
    expect(kind.slices).toBe(2);
    expect(await store.get("job-1")).toMatchObject({ state: "cancelled", progress: { done: 2 } });
  });

  it("gives the job back (queued, no lease, cursor saved) when the time budget is spent", async () => {
    // Prepare: each slice takes 4 s of a 10 s budget
    const kind = new Counter(10, 2);
    const { clock, store, runner } = world(kind);
    kind.before = async () => clock.sleep(4_000);

    // Act
    const first = await runner("w1").run("job-1", 10_000);
    const saved = await store.get("job-1");
    const second = await runner("w2").run("job-1", 60_000);

    // Assess
    expect(first).toBe("again");
    expect(saved).toMatchObject({ state: "queued", cursor: "6", progress: { done: 6 } });
    expect(saved?.lease).toBeUndefined();
    expect(second).toBe("ended");
    expect(kind.did).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("fails the job on a permanent error, and gives the lease back on a transient one for a retry", async () => {
    // Prepare
    const kind = new Counter(10, 5);
    const { store, runner } = world(kind);
    kind.before = async (slice) => {
      if (slice === 2) throw new TransientError("throttled");
      if (slice === 3) throw new Error("the file is gone");
    };

    // Act
    const transient = runner("w1").run("job-1", 60_000);
    await expect(transient).rejects.toThrow("throttled");
    const afterTransient = await store.get("job-1");
    const outcome = await runner("w2").run("job-1", 60_000);

    // Assess
    expect(afterTransient).toMatchObject({ state: "running", cursor: "5" });
    expect(afterTransient?.lease).toBeUndefined();
    expect(outcome).toBe("ended");
    expect(await store.get("job-1")).toMatchObject({
      state: "failed",
      error: expect.stringContaining("the file is gone"),
    });
  });
});
