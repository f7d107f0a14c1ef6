import { describe, expect, it } from "vitest";
import { decide } from "../../domain/decide.ts";
import { JitrError, ProvisioningError, TransientError } from "../../domain/errors.ts";
import { execute } from "../../domain/execute.ts";
import { plan } from "../../domain/plan.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { FakeClock, FakeIot } from "../support/fakes.ts";
import { allowed, eventFor } from "../support/world.ts";

const CERT = "a".repeat(64);
const ARN = `arn:aws:iot:us-east-1:123456789012:cert/${CERT}`;
const mapping: PolicyMapping = {
  selector: "default",
  policy: { template: "per-device-sensor" },
  thingType: "Sensor",
  thingGroups: ["fleet"],
  version: 1,
};

function setup(mappingOverride: PolicyMapping = mapping) {
  const iot = new FakeIot();
  iot.addCertificate(CERT, "pem", "c".repeat(64));
  iot.thingTypes.set("Sensor", { deprecated: false });
  iot.thingGroups.set("fleet", new Set());
  const clock = new FakeClock(new Date("2026-06-01T12:00:00Z"));
  const decision = decide({
    event: eventFor(CERT),
    certificate: {
      fingerprint: CERT,
      subject: "",
      issuer: "",
      subjectAttributes: {},
      commonName: "dev-1",
      sanUris: [],
      sanDnsNames: [],
      notBefore: new Date("2026-01-01T00:00:00Z"),
      notAfter: new Date("2027-01-01T00:00:00Z"),
    },
    deviceId: "dev-1",
    record: allowed("dev-1", { attributes: { site: "north" } }),
    boundCertificate: undefined,
    lot: undefined,
    mappings: [mappingOverride],
    now: clock.now(),
    settings: { region: "us-east-1", accountId: "123456789012", policyPrefix: "jitr-" },
  });
  if (decision.outcome !== "allow") throw new Error(decision.detail);
  const thePlan = plan(decision, { certificateId: CERT, certificateArn: ARN });
  const deps = { iot, clock, retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 } };
  return { iot, clock, thePlan, deps, policyName: decision.policy?.policyName ?? "" };
}

describe("plan", () => {
  it("orders the steps: type, thing, groups, policy, attach policy, attach thing, activate last", () => {
    const { thePlan } = setup();
    expect(thePlan.steps.map((s) => s.kind)).toEqual([
      "checkThingType",
      "createThing",
      "addThingToGroup",
      "ensurePolicy",
      "attachPolicy",
      "attachThing",
      "activateCertificate",
    ]);
  });
});

describe("execute", () => {
  it("provisions through the IoT port in order, activating the certificate last", async () => {
    // Prepare
    const { iot, thePlan, deps, policyName } = setup();
    // Act
    const report = await execute(thePlan, deps);
    // Assess
    expect(iot.methods()).toEqual([
      "describeThingType",
      "createThing",
      "addThingToThingGroup",
      "getPolicy",
      "createPolicy",
      "attachPolicy",
      "attachThingPrincipal",
      "updateCertificateStatus",
    ]);
    expect(iot.statusOf(CERT)).toBe("ACTIVE");
    expect(iot.things.get("dev-1")).toEqual({
      thingName: "dev-1",
      thingTypeName: "Sensor",
      attributes: { site: "north" },
    });
    expect(iot.thingGroups.get("fleet")?.has("dev-1")).toBe(true);
    expect(iot.policyTargets.get(policyName)?.has(ARN)).toBe(true);
    expect(iot.thingPrincipals.get("dev-1")?.has(ARN)).toBe(true);
    expect(Object.keys(report.timings)).toContain("activateCertificate");
  });

  it.each([
    ["describeThingType", "checkThingType"],
    ["createThing", "createThing"],
    ["addThingToThingGroup", "addThingToGroup"],
    ["createPolicy", "ensurePolicy"],
    ["attachPolicy", "attachPolicy"],
    ["attachThingPrincipal", "attachThing"],
    ["updateCertificateStatus", "activateCertificate"],
  ] as const)(
    "a permanent failure in %s undoes the run and leaves the certificate not ACTIVE",
    async (method, step) => {
      // Prepare
      const { iot, thePlan, deps, policyName } = setup();
      iot.failOn(method, () => new JitrError("AccessDenied"));
      // Act
      const error = await execute(thePlan, deps).catch((e: unknown) => e);
      // Assess
      expect(error).toBeInstanceOf(ProvisioningError);
      expect((error as ProvisioningError).step).toBe(step);
      expect(iot.statusOf(CERT)).toBe("PENDING_ACTIVATION");
      expect(iot.things.has("dev-1")).toBe(false);
      expect(iot.thingGroups.get("fleet")?.size).toBe(0);
      expect(iot.policies.has(policyName)).toBe(false);
      expect(iot.policyTargets.get(policyName)?.size ?? 0).toBe(0);
      expect(iot.thingPrincipals.get("dev-1")?.size ?? 0).toBe(0);
    },
  );

  it("a missing thing type or group fails clearly, with nothing left behind", async () => {
    const { iot, thePlan, deps } = setup();
    iot.thingTypes.clear();
    await expect(execute(thePlan, deps)).rejects.toThrow("thing type Sensor does not exist");
    const second = setup();
    second.iot.thingGroups.clear();
    await expect(execute(second.thePlan, second.deps)).rejects.toThrow(/thing group fleet/);
    expect(second.iot.things.size).toBe(0);
  });

  it("retries a transient error with growing backoff and succeeds", async () => {
    const { iot, clock, thePlan, deps } = setup();
    iot.failOn("attachPolicy", () => new TransientError("ThrottlingException"), 2);
    await execute(thePlan, deps);
    expect(iot.statusOf(CERT)).toBe("ACTIVE");
    expect(iot.methods().filter((m) => m === "attachPolicy")).toHaveLength(3);
    expect(clock.sleeps).toHaveLength(2);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(100);
    expect(clock.sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(clock.sleeps[1]).toBeLessThanOrEqual(200);
  });

  it("a transient error that outlasts the retries is a failure, undone like any other", async () => {
    const { iot, thePlan, deps } = setup();
    iot.failOn("attachThingPrincipal", () => new TransientError("ThrottlingException"));
    await expect(execute(thePlan, deps)).rejects.toThrow(ProvisioningError);
    expect(iot.methods().filter((m) => m === "attachThingPrincipal")).toHaveLength(3);
    expect(iot.statusOf(CERT)).toBe("PENDING_ACTIVATION");
    expect(iot.things.size).toBe(0);
  });

  it("an undo that fails transiently is retried like any call, and reported once the retries run out", async () => {
    // Prepare
    const { iot, thePlan, deps } = setup();
    iot.failOn("updateCertificateStatus", () => new JitrError("AccessDenied"));
    iot.failOn("detachThingPrincipal", () => new TransientError("ThrottlingException"), 1);
    iot.failOn("detachPolicy", () => new TransientError("ThrottlingException"));

    // Act
    const error = await execute(thePlan, deps).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ProvisioningError);
    expect(error).toMatchObject({ message: expect.stringMatching(/undo incomplete: detach policy /) });
    expect(iot.methods().filter((m) => m === "detachThingPrincipal")).toHaveLength(2);
    expect(iot.methods().filter((m) => m === "detachPolicy")).toHaveLength(3);
    expect(iot.thingPrincipals.get("dev-1")?.size ?? 0).toBe(0);
  });

  it("brings an existing thing to the wanted configuration and keeps it on undo", async () => {
    const { iot, thePlan, deps } = setup();
    iot.things.set("dev-1", { thingName: "dev-1", attributes: { old: "yes" } });
    iot.failOn("updateCertificateStatus", () => new JitrError("AccessDenied"));
    await expect(execute(thePlan, deps)).rejects.toThrow(ProvisioningError);
    expect(iot.methods()).toContain("updateThing");
    expect(iot.things.get("dev-1")).toEqual({
      thingName: "dev-1",
      thingTypeName: "Sensor",
      attributes: { site: "north" },
    });
  });

  it("keeps a shared policy whose document is unchanged, and versions one that changed", async () => {
    const shared: PolicyMapping = { selector: "default", policy: { template: "sensor" }, version: 1 };
    const first = setup(shared);
    const ensure = first.thePlan.steps.find((s) => s.kind === "ensurePolicy");
    if (ensure?.kind !== "ensurePolicy") throw new Error("the plan ensures no policy");
    await first.iot.createPolicy("jitr-sensor", JSON.stringify(JSON.parse(ensure.document), null, 2));
    await execute(first.thePlan, first.deps);
    expect(first.iot.policies.get("jitr-sensor")?.versions).toHaveLength(1);

    const second = setup(shared);
    second.iot.policies.set("jitr-sensor", {
      versions: [1, 2, 3, 4, 5].map((n) => ({
        id: String(n),
        document: `{"v":${n}}`,
        createdAt: new Date(n * 1000),
      })),
      defaultId: "1",
    });
    await execute(second.thePlan, second.deps);
    const versions = second.iot.policies.get("jitr-sensor");
    // the oldest non-default version (2) was pruned; the new one is the default
    expect(versions?.versions.map((v) => v.id)).toEqual(["1", "3", "4", "5", "6"]);
    expect(versions?.defaultId).toBe("6");
  });

  it("a shared policy created by this run is kept on undo (other devices may use it)", async () => {
    const { iot, thePlan, deps } = setup({ selector: "default", policy: { template: "sensor" }, version: 1 });
    iot.failOn("attachThingPrincipal", () => new JitrError("AccessDenied"));
    await expect(execute(thePlan, deps)).rejects.toThrow(ProvisioningError);
    expect(iot.policies.has("jitr-sensor")).toBe(true);
    expect(iot.policyTargets.get("jitr-sensor")?.size).toBe(0);
  });

  it("a certificate already attached to its own thing provisions again without a second attachment", async () => {
    // Prepare: an earlier run attached the certificate, then stopped before activation
    const { iot, thePlan, deps } = setup();
    await iot.createThing({ thingName: "dev-1", thingTypeName: "Sensor", attributes: { site: "north" } });
    await iot.attachThingPrincipal("dev-1", ARN);
    // Act
    await execute(thePlan, deps);
    // Assess
    expect(iot.statusOf(CERT)).toBe("ACTIVE");
    expect([...iot.thingPrincipals].filter(([, arns]) => arns.has(ARN)).map(([name]) => name)).toEqual([
      "dev-1",
    ]);
  });

  it("a certificate attached to another thing fails closed: no second attachment, undone, not ACTIVE", async () => {
    // Prepare: the certificate is attached to another device's thing
    const { iot, thePlan, deps, policyName } = setup();
    await iot.createThing({ thingName: "victim-1", attributes: {} });
    await iot.attachThingPrincipal("victim-1", ARN);
    // Act
    const error = await execute(thePlan, deps).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ProvisioningError);
    expect((error as ProvisioningError).step).toBe("attachThing");
    expect((error as Error).message).toMatch(/attached to thing victim-1/);
    expect(iot.methods().filter((m) => m === "attachThingPrincipal")).toHaveLength(2);
    expect(iot.statusOf(CERT)).toBe("PENDING_ACTIVATION");
    expect(iot.things.has("dev-1")).toBe(false);
    expect(iot.policyTargets.get(policyName)?.size ?? 0).toBe(0);
    expect(iot.thingPrincipals.get("victim-1")?.has(ARN)).toBe(true);
  });

  it("a mapping naming an existing policy only checks and attaches it", async () => {
    const { iot, thePlan, deps } = setup({
      selector: "default",
      policy: { policyName: "Legacy" },
      version: 1,
    });
    await expect(execute(thePlan, deps)).rejects.toThrow("policy Legacy does not exist");
    const ok = setup({ selector: "default", policy: { policyName: "Legacy" }, version: 1 });
    await ok.iot.createPolicy("Legacy", '{"Version":"2012-10-17","Statement":[]}');
    await execute(ok.thePlan, ok.deps);
    expect(ok.iot.policyTargets.get("Legacy")?.has(ARN)).toBe(true);
    expect(iot.statusOf(CERT)).toBe("PENDING_ACTIVATION");
  });
});

describe("known shared policies", () => {
  it("skips re-checking a shared policy seen with the same document, until the entry expires", async () => {
    const { KnownPolicies } = await import("../../domain/known-policies.ts");
    const shared: PolicyMapping = { selector: "default", policy: { template: "sensor" }, version: 1 };
    const first = setup(shared);
    const known = new KnownPolicies(first.clock, 60_000);
    await execute(first.thePlan, { ...first.deps, knownPolicies: known });
    expect(first.iot.methods()).toContain("getPolicy");

    const second = setup(shared);
    second.iot.policies.set(
      "jitr-sensor",
      structuredClone(first.iot.policies.get("jitr-sensor") ?? { versions: [], defaultId: "" }),
    );
    await execute(second.thePlan, { ...second.deps, clock: first.clock, knownPolicies: known });
    expect(second.iot.methods()).not.toContain("getPolicy");

    await first.clock.sleep(60_001);
    const third = setup(shared);
    third.iot.policies.set(
      "jitr-sensor",
      structuredClone(first.iot.policies.get("jitr-sensor") ?? { versions: [], defaultId: "" }),
    );
    await execute(third.thePlan, { ...third.deps, clock: first.clock, knownPolicies: known });
    expect(third.iot.methods()).toContain("getPolicy");
  });

  it("never caches a per-device policy", async () => {
    const { KnownPolicies } = await import("../../domain/known-policies.ts");
    const a = setup();
    const known = new KnownPolicies(a.clock);
    await execute(a.thePlan, { ...a.deps, knownPolicies: known });
    const b = setup();
    await execute(b.thePlan, { ...b.deps, knownPolicies: known });
    expect(b.iot.methods()).toContain("getPolicy");
  });
});
