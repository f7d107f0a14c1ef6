/**
 * Invariant I6: a device holding a place is counted in its lot exactly once, whatever retries, crashes or
 * races happen (the record's mark and the lot's count are written together, see domain/lot-place.ts).
 * Each crash point between two writes and each race is played deterministically over the in-memory
 * stores: a crash is an error thrown where the next write would be (nothing of the run's undo runs),
 * then the event is delivered again, as the queue does after a restart.
 */
import { describe, expect, it } from "vitest";
import { Admin } from "../../domain/admin/index.ts";
import { OutcomeUnknownError, StateConflictError } from "../../domain/errors.ts";
import { LOT_RELEASE_STALE_MS } from "../../domain/lot-place.ts";
import { provision } from "../../domain/provision.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { makeAdminWorld } from "../support/admin-fakes.ts";
import { CA_ID, eventFor, testCa } from "../support/world.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const SENSOR: PolicyMapping = { selector: "default", policy: { template: "sensor" }, version: 1 };
const crash = () => new Error("the process was killed");

type World = ReturnType<typeof makeAdminWorld>;

/** Devices allowed in lot L (a quota when given), with or without the default mapping. */
function lotWorld(deviceIds: string[], options: { maxDevices?: number; mapped?: boolean } = {}) {
  const { maxDevices, mapped = true } = options;
  return makeAdminWorld({
    mappings: mapped ? [SENSOR] : [],
    lots: [
      { lot: "L", provisionedCount: 0, version: 1, ...(maxDevices === undefined ? {} : { maxDevices }) },
    ],
    records: deviceIds.map((deviceId) => ({ deviceId, status: "allowed" as const, lot: "L", version: 1 })),
  });
}

const countOf = (world: World) => world.lots.lots.get("L")?.provisionedCount;

/** A certificate for the device, registered PENDING_ACTIVATION; its event. */
async function register(world: World, deviceId: string) {
  const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
  const certificateId = certificateIdOf(issued.certificatePem);
  world.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
  return { certificateId, event: eventFor(certificateId) };
}

/** Quarantines a certificate of each device (no mapping yet), then adds the mapping: ready to approve. */
async function quarantineThenMap(world: World, deviceIds: string[]) {
  const certificates = [];
  for (const deviceId of deviceIds) {
    const cert = await register(world, deviceId);
    expect(await provision(cert.event, world.deps)).toMatchObject({ outcome: "denied", reason: "no-policy" });
    certificates.push(cert);
  }
  world.mappings.mappings.set(SENSOR.selector, structuredClone(SENSOR));
  return certificates;
}

/** Runs `action` on the first call of `target[method]`, before the call itself. */
function beforeFirstCall(target: object, method: string, action: () => Promise<unknown>): void {
  const original: unknown = Reflect.get(target, method);
  if (typeof original !== "function") throw new Error(`${method} is not a method`);
  let done = false;
  const wrapped = async (...args: unknown[]) => {
    if (!done) {
      done = true;
      await action();
    }
    return original.apply(target, args);
  };
  Object.assign(target, { [method]: wrapped });
}

/**
 * Kills the runs that reach `target[method]`, for its first `times` calls: those calls never return, as
 * if the process died right there (nothing after them runs, no undo). Resolves once all were reached.
 */
function killAt(target: object, method: string, times = 1): Promise<void> {
  const original: unknown = Reflect.get(target, method);
  if (typeof original !== "function") throw new Error(`${method} is not a method`);
  return new Promise((reached) => {
    let kills = 0;
    const wrapped = (...args: unknown[]) => {
      if (kills >= times) return original.apply(target, args);
      kills += 1;
      if (kills === times) reached();
      return new Promise(() => undefined);
    };
    Object.assign(target, { [method]: wrapped });
  });
}

/** What a promise settled to: its value, or the error it rejected with. */
const settled = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => value,
    (error: unknown) => error,
  );

describe("concurrent approves", () => {
  it("three concurrent approves of each of three devices' quarantined certificate count three devices, not nine", async () => {
    // Prepare
    const devices = ["d1", "d2", "d3"];
    const world = lotWorld(devices, { mapped: false });
    const certificates = await quarantineThenMap(world, devices);
    const admin = new Admin(world.deps);

    // Act
    const results = await Promise.all(
      devices.flatMap((deviceId) => [1, 2, 3].map(() => settled(admin.devices.approve(ACTOR, deviceId)))),
    );

    // Assess
    expect(countOf(world)).toBe(3);
    for (const { certificateId } of certificates) expect(world.iot.statusOf(certificateId)).toBe("ACTIVE");
    for (const deviceId of devices) {
      expect(world.allowlist.records.get(deviceId)).toMatchObject({ lotCounted: "L" });
    }
    expect(
      results.filter((r) => (r as { outcome?: string }).outcome === "provisioned").length,
    ).toBeGreaterThan(2);
  });
});

describe("a crash between two writes, then the event delivered again", () => {
  it.each([
    {
      point: "after the binding claim, before the place is taken",
      store: "lots",
      method: "takePlace",
      count: 1,
    },
    { point: "after the count, while the plan executes", store: "iot", method: "createThing", count: 1 },
    {
      point: "after activation, before the binding completes",
      store: "allowlist",
      method: "completeBinding",
      count: 1,
    },
    { point: "after the binding completes, before the ledger", store: "ledger", method: "append", count: 1 },
  ] as const)("$point: counted exactly once", async ({ store, method, count }) => {
    // Prepare: a lot with room for one device exactly
    const world = lotWorld(["dev-1"], { maxDevices: 1 });
    const { event, certificateId } = await register(world, "dev-1");
    const target = { allowlist: world.allowlist, lots: world.lots, ledger: world.ledger, iot: world.iot }[
      store
    ];
    const killed = killAt(target, method);
    void provision(event, world.deps);
    await killed;

    // Act
    const replayed = await provision(event, world.deps);

    // Assess: the replay goes on (a full lot does not deny the device that holds its place)
    expect(replayed.outcome).toMatch(/provisioned|skipped/);
    expect(world.iot.statusOf(certificateId)).toBe("ACTIVE");
    expect(countOf(world)).toBe(count);
    expect(world.allowlist.records.get("dev-1")).toMatchObject({ lotCounted: "L", certificateId });
  });

  it("a burst of 40 lot devices, half of the runs killed while they execute, then all replayed: 40", async () => {
    // Prepare
    const devices = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
    const world = lotWorld(devices);
    const events = [];
    for (const deviceId of devices) events.push((await register(world, deviceId)).event);
    const killed = killAt(world.iot, "createThing", 20);
    const firstRuns = events.map((event) => settled(provision(event, world.deps)));
    await killed;
    await Promise.race([Promise.all(firstRuns), new Promise((resolve) => setTimeout(resolve, 200))]);

    // Act
    const replayed = await Promise.all(events.map((event) => provision(event, world.deps)));

    // Assess
    expect(replayed.filter((r) => r.outcome === "provisioned")).toHaveLength(20);
    expect(countOf(world)).toBe(40);
  });

  it("a place taken whose answer was lost (applied, then an error) is not taken again: the retry relies on the mark", async () => {
    // Prepare
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    const takePlace = world.lots.takePlace.bind(world.lots);
    let lost = false;
    world.lots.takePlace = async (mark) => {
      const taken = await takePlace(mark);
      if (lost) return taken;
      lost = true;
      throw new OutcomeUnknownError(`DynamoDB TransactWriteItems failed: InternalServerError (${taken})`);
    };

    // Act
    const first = await settled(provision(event, world.deps));
    const replayed = await provision(event, world.deps);

    // Assess
    expect(first).toBeInstanceOf(Error);
    expect(replayed.outcome).toBe("provisioned");
    expect(countOf(world)).toBe(1);
  });
});

describe("a full lot", () => {
  it("filled between the decision and the count: the mark is taken back and the device quarantined", async () => {
    // Prepare
    const world = lotWorld(["dev-1"], { maxDevices: 1 });
    const { event } = await register(world, "dev-1");
    beforeFirstCall(world.lots, "takePlace", async () => {
      const lot = world.lots.lots.get("L");
      if (lot) lot.provisionedCount = 1; // another device took the last place
    });

    // Act
    const result = await provision(event, world.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "denied", reason: "lot-quota-exceeded" });
    expect(countOf(world)).toBe(1);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotCounted");
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("certificateId");
  });

  it("two devices race for the last place: one is counted, the other quarantined; the count stays at the quota", async () => {
    // Prepare
    const world = lotWorld(["dev-1", "dev-2"], { maxDevices: 1 });
    const first = await register(world, "dev-1");
    const second = await register(world, "dev-2");

    // Act
    const results = await Promise.all([
      provision(first.event, world.deps),
      provision(second.event, world.deps),
    ]);

    // Assess
    expect(results.map((r) => r.outcome).sort()).toEqual(["denied", "provisioned"]);
    expect(results.find((r) => r.outcome === "denied")).toMatchObject({ reason: "lot-quota-exceeded" });
    expect(countOf(world)).toBe(1);
    const marked = ["dev-1", "dev-2"].filter((d) => world.allowlist.records.get(d)?.lotCounted === "L");
    expect(marked).toHaveLength(1);
  });

  it("a run relying on another run's mark fails closed when that place is given back meanwhile", async () => {
    // Prepare: another run of the same certificate took the place
    const world = lotWorld(["dev-1"], { maxDevices: 1 });
    const { event, certificateId } = await register(world, "dev-1");
    const record = world.allowlist.records.get("dev-1");
    if (record) Object.assign(record, { certificateId, lotCounted: "L" });
    const lot = world.lots.lots.get("L");
    if (lot) lot.provisionedCount = 1;
    beforeFirstCall(world.iot, "attachThingPrincipal", async () => {
      const place = { deviceId: "dev-1", lot: "L", boundTo: certificateId, releaseClaim: undefined };
      expect(await world.lots.givePlaceBack(place)).toBe(true);
    });

    // Act
    const result = await settled(provision(event, world.deps));

    // Assess
    expect(result).toBeInstanceOf(Error);
    expect(world.iot.statusOf(certificateId)).toBe("INACTIVE");
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("provisionedAt");
    expect(countOf(world)).toBe(0);
  });
});

describe("approve racing deprovision", () => {
  it.each([
    {
      when: "after the approve claimed the binding, before its place is taken",
      store: "lots",
      method: "takePlace",
    },
    { when: "while the approve executes", store: "iot", method: "attachThingPrincipal" },
    { when: "before the approve completes the binding", store: "allowlist", method: "completeBinding" },
  ] as const)("deprovision $when: nothing left counted", async ({ store, method }) => {
    // Prepare
    const world = lotWorld(["dev-1"], { mapped: false });
    const [cert] = await quarantineThenMap(world, ["dev-1"]);
    const admin = new Admin(world.deps);
    const target = { allowlist: world.allowlist, lots: world.lots, iot: world.iot }[store];
    let deprovisioned: unknown;
    beforeFirstCall(target, method, async () => {
      deprovisioned = await settled(admin.devices.deprovision(ACTOR, "dev-1"));
    });

    // Act
    await settled(admin.devices.approve(ACTOR, "dev-1"));

    // Assess
    expect(deprovisioned).toMatchObject({ deviceId: "dev-1", revoked: true });
    expect(countOf(world)).toBe(0);
    expect(world.iot.statusOf(cert?.certificateId ?? "")).toBe("REVOKED");
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotCounted");
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("certificateId");
  });

  it("a place taken after deprovision read the record is given back before the unbind", async () => {
    // Prepare: the approve's run takes the place just before deprovision unbinds
    const world = lotWorld(["dev-1"], { mapped: false });
    const [cert] = await quarantineThenMap(world, ["dev-1"]);
    const certificateId = cert?.certificateId ?? "";
    const record = world.allowlist.records.get("dev-1");
    if (record) record.certificateId = certificateId; // the approve's binding claim
    beforeFirstCall(world.allowlist, "unbind", async () => {
      expect(await world.lots.takePlace({ deviceId: "dev-1", certificateId, lot: "L" })).toBe("counted");
    });

    // Act
    const done = await new Admin(world.deps).devices.deprovision(ACTOR, "dev-1");

    // Assess
    expect(done.lotReleased).toBe("L");
    expect(countOf(world)).toBe(0);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotCounted");
  });

  it("a second deprovision while the first gives the place back: given back once, the other told", async () => {
    // Prepare
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    await provision(event, world.deps);
    const admin = new Admin(world.deps);
    let second: unknown;
    beforeFirstCall(world.lots, "givePlaceBack", async () => {
      second = await settled(admin.devices.deprovision(ACTOR, "dev-1"));
    });

    // Act
    const first = await settled(admin.devices.deprovision(ACTOR, "dev-1"));

    // Assess: the second ran whole inside the first; the first then found the place gone
    expect(second).toMatchObject({ lotReleased: "L" });
    expect(first).toBeInstanceOf(StateConflictError);
    expect(countOf(world)).toBe(0);
  });

  it("a failed provisioning and a deprovision undoing the same place give it back once", async () => {
    // Prepare: the run fails for good while the admin deprovisions the device
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    const admin = new Admin(world.deps);
    world.iot.failOn("attachThingPrincipal", () => new Error("AccessDeniedException"), 1);
    beforeFirstCall(world.allowlist, "releaseBinding", () =>
      settled(admin.devices.deprovision(ACTOR, "dev-1")),
    );
    beforeFirstCall(world.lots, "givePlaceBack", () => settled(admin.devices.deprovision(ACTOR, "dev-1")));

    // Act
    await settled(provision(event, world.deps));

    // Assess
    expect(countOf(world)).toBe(0);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotCounted");
  });
});

describe("a crash while deprovision gives the place back", () => {
  it.each([
    {
      point: "before the place is given back",
      arm: (world: World) => world.lots.failOn("givePlaceBack", crash, 1),
    },
    {
      point: "after the place is given back, before the unbind",
      arm: (world: World) => world.allowlist.failOn("unbind", crash, 1),
    },
  ])("$point: the retried deprovision leaves the count at zero", async ({ arm }) => {
    // Prepare
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    await provision(event, world.deps);
    const admin = new Admin(world.deps);
    arm(world);
    const crashed = await settled(admin.devices.deprovision(ACTOR, "dev-1"));

    // Act
    const retried = await admin.devices.deprovision(ACTOR, "dev-1");

    // Assess
    expect(crashed).toBeInstanceOf(Error);
    expect(retried).toMatchObject({ deviceId: "dev-1" });
    expect(countOf(world)).toBe(0);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotCounted");
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("certificateId");
  });
});

describe("a release claim left by an earlier version (three writes, stopped half way)", () => {
  it("is answered as busy while fresh, and given back over once stale", async () => {
    // Prepare
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    await provision(event, world.deps);
    const record = world.allowlist.records.get("dev-1");
    if (record) record.lotReleaseStartedAt = world.clock.now().toISOString();
    const admin = new Admin(world.deps);

    // Act
    const fresh = await settled(admin.devices.deprovision(ACTOR, "dev-1"));
    world.clock.set(new Date(world.clock.now().getTime() + LOT_RELEASE_STALE_MS));
    const stale = await admin.devices.deprovision(ACTOR, "dev-1");

    // Assess
    expect(fresh).toBeInstanceOf(StateConflictError);
    expect(stale).toMatchObject({ deviceId: "dev-1", lotReleased: "L" });
    expect(countOf(world)).toBe(0);
    expect(world.allowlist.records.get("dev-1")).not.toHaveProperty("lotReleaseStartedAt");
  });
});

describe("admin writes and the lot place", () => {
  it("an admin update keeps the place; a body naming it is refused", async () => {
    // Prepare
    const world = lotWorld(["dev-1"]);
    const { event } = await register(world, "dev-1");
    await provision(event, world.deps);
    const admin = new Admin(world.deps);

    // Act
    await admin.allowlist.put(ACTOR, "dev-1", { lot: "L", note: "moved" }, { version: 1 });
    const forged = settled(admin.allowlist.put(ACTOR, "dev-1", { lotCounted: "other" }, { version: 2 }));

    // Assess
    expect(world.allowlist.records.get("dev-1")).toMatchObject({ lotCounted: "L", note: "moved" });
    expect(await forged).toMatchObject({ name: "ValidationError" });
  });

  it("removing a record gives its place back first", async () => {
    // Prepare: a place left on an unbound record (a run that failed after another run's crash)
    const world = lotWorld(["dev-1"]);
    const record = world.allowlist.records.get("dev-1");
    if (record) record.lotCounted = "L";
    const lot = world.lots.lots.get("L");
    if (lot) lot.provisionedCount = 1;

    // Act
    await new Admin(world.deps).allowlist.remove(ACTOR, "dev-1", 1);

    // Assess
    expect(world.allowlist.records.has("dev-1")).toBe(false);
    expect(countOf(world)).toBe(0);
  });
});
