import { describe, expect, it } from "vitest";
import { JitrError, ProvisioningError } from "../../domain/errors.ts";
import { provision, UNIDENTIFIED_DEVICE } from "../../domain/provision.ts";
import type { RegisteredEvent } from "../../domain/types.ts";
import { issueCertificate } from "../../pki/certificates.ts";
import { groupArn } from "../support/fakes.ts";
import { allowed, defaultMapping, makeWorld, testCa } from "../support/world.ts";

const arnOf = (id: string) => `arn:aws:iot:us-east-1:123456789012:cert/${id}`;

describe("provision", () => {
  it("provisions an allowlisted device: thing and policy attached, certificate ACTIVE, binding and ledger written (I1)", async () => {
    // Prepare
    const world = makeWorld({
      records: [allowed("dev-1", { attributes: { site: "north" } })],
      mappings: [defaultMapping],
    });
    const { event } = await world.register("dev-1");
    // Act
    const result = await provision(event, world.deps);
    // Assess
    expect(result).toMatchObject({
      outcome: "provisioned",
      deviceId: "dev-1",
      thingName: "dev-1",
      policyName: "jitr-sensor",
    });
    const arn = arnOf(event.certificateId);
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(world.iot.thingPrincipals.get("dev-1")?.has(arn)).toBe(true);
    expect(world.iot.policyTargets.get("jitr-sensor")?.has(arn)).toBe(true);
    expect(world.iot.methods().at(-1)).toBe("updateCertificateStatus");
    const record = await world.allowlist.get("dev-1");
    expect(record).toMatchObject({
      certificateId: event.certificateId,
      thingName: "dev-1",
      policyName: "jitr-sensor",
    });
    expect(record?.provisionedAt).toBeDefined();
    expect(world.ledger.entries).toHaveLength(1);
    expect(world.ledger.entries[0]).toMatchObject({
      kind: "provisioned",
      deviceId: "dev-1",
      certificateId: event.certificateId,
      mappingSelector: "default",
    });
  });

  it("provisions a device whose rights come through a thing group alone: I1 holds through the thing's group", async () => {
    // Prepare
    const world = makeWorld({
      records: [allowed("dev-1")],
      mappings: [
        {
          selector: "default",
          groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }],
          version: 2,
        },
      ],
    });
    world.iot.thingGroups.set("fleet", new Set());
    const { event } = await world.register("dev-1");
    // Act
    const result = await provision(event, world.deps);
    // Assess: ACTIVE, thing attached, the selected policy on one of its thing's groups and none on the certificate
    const arn = arnOf(event.certificateId);
    expect(result).toMatchObject({ outcome: "provisioned", policyName: undefined });
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(world.iot.thingPrincipals.get("dev-1")?.has(arn)).toBe(true);
    expect(world.iot.thingGroups.get("fleet")?.has("dev-1")).toBe(true);
    expect(world.iot.policyTargets.get("jitr-sensor")).toEqual(new Set([groupArn("fleet")]));
    expect(await world.iot.listAttachedPolicies(arn)).toEqual([]);
    const record = await world.allowlist.get("dev-1");
    expect(record).not.toHaveProperty("policyName");
    expect(world.ledger.entries.at(-1)).toMatchObject({
      kind: "provisioned",
      groupPolicies: [{ group: "fleet", policyName: "jitr-sensor" }],
    });
    expect(world.ledger.entries.at(-1)).not.toHaveProperty("policyName");
  });

  it("quarantines missing-reference on the first attempt when a group whose own policies are the rights holds none", async () => {
    // Prepare
    const world = makeWorld({
      records: [allowed("dev-1")],
      mappings: [{ selector: "default", groupPolicies: [{ group: "bare" }], version: 1 }],
    });
    world.iot.thingGroups.set("bare", new Set());
    const { event } = await world.register("dev-1");
    // Act
    const result = await provision(event, world.deps);
    // Assess
    expect(result).toMatchObject({ outcome: "denied", reason: "missing-reference" });
    expect(world.iot.statusOf(event.certificateId)).toBe("INACTIVE");
    expect(world.iot.things.has("dev-1")).toBe(false);
  });

  it.each([
    ["not allowlisted", [], "not-allowlisted", "INACTIVE"],
    ["blocked", [allowed("dev-1", { status: "blocked" })], "blocked", "REVOKED"],
    ["wrong CA", [allowed("dev-1", { caCertificateId: "d".repeat(64) })], "wrong-ca", "REVOKED"],
    [
      "outside window",
      [allowed("dev-1", { notAfter: "2000-01-01T00:00:00Z" })],
      "entry-not-valid-now",
      "INACTIVE",
    ],
    [
      "fingerprint pinned",
      [allowed("dev-1", { certificateFingerprint: "0".repeat(64) })],
      "fingerprint-mismatch",
      "REVOKED",
    ],
  ] as const)(
    "denies %s: certificate %s, nothing created, one ledger entry (I2, I3)",
    async (_name, records, reason, status) => {
      const world = makeWorld({ records: [...records], mappings: [defaultMapping] });
      const { event } = await world.register("dev-1");
      const result = await provision(event, world.deps);
      expect(result).toMatchObject({ outcome: "denied", reason, certificateStatus: status });
      expect(world.iot.statusOf(event.certificateId)).toBe(status);
      expect(world.iot.things.size).toBe(0);
      expect(world.iot.policies.size).toBe(0);
      expect(world.ledger.entries).toEqual([
        expect.objectContaining({ kind: "denied", reason, deviceId: "dev-1" }),
      ]);
    },
  );

  it("denies a certificate that cannot be read, or names no valid device id, as invalid-device-id (REVOKED)", async () => {
    const world = makeWorld({ mappings: [defaultMapping] });
    const garbage = world.registerPem(
      "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----",
      "1".repeat(64),
    );
    const badChars = (await world.register("dev 1/ümlaut")).event;
    const tooLong = (await world.register("x".repeat(129))).event;
    for (const event of [garbage, badChars, tooLong]) {
      const result = await provision(event, world.deps);
      expect(result).toMatchObject({
        outcome: "denied",
        reason: "invalid-device-id",
        certificateStatus: "REVOKED",
      });
      expect(world.iot.statusOf(event.certificateId)).toBe("REVOKED");
    }
    expect(world.iot.things.size).toBe(0);
    expect(world.ledger.entries.map((e) => e.deviceId)).toEqual([
      UNIDENTIFIED_DEVICE,
      UNIDENTIFIED_DEVICE,
      UNIDENTIFIED_DEVICE,
    ]);
  });

  it("an expired certificate is revoked even when allowlisted", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register({
      subject: { CN: "dev-1" },
      notBefore: new Date("2020-01-01T00:00:00Z"),
      notAfter: new Date("2021-01-01T00:00:00Z"),
    });
    expect(await provision(event, world.deps)).toMatchObject({
      outcome: "denied",
      reason: "certificate-expired",
    });
    expect(world.iot.statusOf(event.certificateId)).toBe("REVOKED");
  });

  it("a rendered policy over the size limit quarantines the device as no-policy and creates nothing", async () => {
    const statement = {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: `arn:aws:iot:*:*:topic/${"t".repeat(200)}`,
    };
    const mapping = {
      selector: "default",
      policy: { document: { Version: "2012-10-17", Statement: Array(12).fill(statement) } },
      version: 1,
    };
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [mapping] });
    const { event } = await world.register("dev-1");
    const result = await provision(event, world.deps);
    expect(result).toMatchObject({ outcome: "denied", reason: "no-policy", certificateStatus: "INACTIVE" });
    expect(world.iot.methods()).toEqual(["describeCertificate", "updateCertificateStatus"]);
  });

  it("a duplicate event makes no second side effect", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    await provision(event, world.deps);
    const callsAfterFirst = world.iot.calls.length;
    const second = await provision(event, world.deps);
    expect(second).toMatchObject({ outcome: "skipped" });
    expect(world.iot.methods().slice(callsAfterFirst)).toEqual(["describeCertificate"]);
    expect(world.ledger.entries).toHaveLength(1);
  });

  it("two certificates for one device processed concurrently: exactly one becomes ACTIVE (I4)", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const a = (await world.register("dev-1")).event;
    const b = (await world.register("dev-1")).event;
    const results = await Promise.all([provision(a, world.deps), provision(b, world.deps)]);
    const statuses = [world.iot.statusOf(a.certificateId), world.iot.statusOf(b.certificateId)];
    expect(statuses.filter((s) => s === "ACTIVE")).toHaveLength(1);
    expect(statuses.filter((s) => s === "REVOKED")).toHaveLength(1);
    expect(results.map((r) => r.outcome).sort()).toEqual(["denied", "provisioned"]);
    expect(results.find((r) => r.outcome === "denied")).toMatchObject({ reason: "already-provisioned" });
    const winner = results.find((r) => r.outcome === "provisioned")?.certificateId;
    expect((await world.allowlist.get("dev-1"))?.certificateId).toBe(winner);
  });

  it("a clone of a provisioned device (rotation reject) is revoked as already-provisioned", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const first = (await world.register("dev-1")).event;
    await provision(first, world.deps);
    const clone = (await world.register("dev-1")).event;
    expect(await provision(clone, world.deps)).toMatchObject({
      outcome: "denied",
      reason: "already-provisioned",
    });
    expect(world.iot.statusOf(first.certificateId)).toBe("ACTIVE");
    expect(world.iot.statusOf(clone.certificateId)).toBe("REVOKED");
  });

  it("rotation replace provisions the new certificate, then revokes and detaches the old one", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { rotation: "replace" })],
      mappings: [defaultMapping],
    });
    const old = (await world.register("dev-1")).event;
    await provision(old, world.deps);
    const fresh = (await world.register("dev-1")).event;
    const result = await provision(fresh, world.deps);
    expect(result).toMatchObject({ outcome: "provisioned", replaced: old.certificateId, warnings: [] });
    expect(world.iot.statusOf(fresh.certificateId)).toBe("ACTIVE");
    expect(world.iot.statusOf(old.certificateId)).toBe("REVOKED");
    expect([...(world.iot.thingPrincipals.get("dev-1") ?? [])]).toEqual([arnOf(fresh.certificateId)]);
    expect(world.iot.policyTargets.get("jitr-sensor")?.has(arnOf(old.certificateId))).toBe(false);
    expect((await world.allowlist.get("dev-1"))?.certificateId).toBe(fresh.certificateId);
  });

  it("rotation allow-multiple keeps both certificates ACTIVE", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { rotation: "allow-multiple" })],
      mappings: [defaultMapping],
    });
    const one = (await world.register("dev-1")).event;
    const two = (await world.register("dev-1")).event;
    await provision(one, world.deps);
    await provision(two, world.deps);
    expect([world.iot.statusOf(one.certificateId), world.iot.statusOf(two.certificateId)]).toEqual([
      "ACTIVE",
      "ACTIVE",
    ]);
  });

  it("counts devices in their lot and quarantines the one over the quota, also when racing", async () => {
    const records = ["d1", "d2", "d3"].map((id) => allowed(id, { lot: "L1" }));
    const world = makeWorld({
      records,
      mappings: [defaultMapping],
      lots: [{ lot: "L1", maxDevices: 2, provisionedCount: 0 }],
    });
    const events = await Promise.all(["d1", "d2", "d3"].map(async (id) => (await world.register(id)).event));
    const results = await Promise.all(events.map((e) => provision(e, world.deps)));
    expect(results.filter((r) => r.outcome === "provisioned")).toHaveLength(2);
    expect(results.filter((r) => r.outcome === "denied" && r.reason === "lot-quota-exceeded")).toHaveLength(
      1,
    );
    expect(world.lots.lots.get("L1")?.provisionedCount).toBe(2);
    const denied = results.find((r) => r.outcome === "denied");
    expect(world.iot.statusOf(denied?.certificateId ?? "")).toBe("INACTIVE");
    // the quarantined device's binding claim was given back
    expect((await world.allowlist.get(denied?.deviceId ?? ""))?.certificateId).toBeUndefined();
  });

  it("a permanent failure records `failed`, releases the claim and the lot place, and is rethrown", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { lot: "L1" })],
      mappings: [defaultMapping],
      lots: [{ lot: "L1", provisionedCount: 0 }],
    });
    const { event } = await world.register("dev-1");
    world.iot.failOn("attachThingPrincipal", () => new JitrError("AccessDeniedException"));
    await expect(provision(event, world.deps)).rejects.toThrow(ProvisioningError);
    expect(world.iot.statusOf(event.certificateId)).toBe("PENDING_ACTIVATION");
    expect(world.iot.things.size).toBe(0);
    expect((await world.allowlist.get("dev-1"))?.certificateId).toBeUndefined();
    expect(world.lots.lots.get("L1")?.provisionedCount).toBe(0);
    expect(world.ledger.entries).toEqual([expect.objectContaining({ kind: "failed", deviceId: "dev-1" })]);
    expect(world.ledger.entries[0]?.error).toContain("attachThing");
  });

  it("the retried event succeeds once the fault clears", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    world.iot.failOn("createThing", () => new JitrError("InternalError"), 1);
    await expect(provision(event, world.deps)).rejects.toThrow(ProvisioningError);
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "provisioned" });
    expect(world.ledger.entries.map((e) => e.kind)).toEqual(["failed", "provisioned"]);
  });

  it("identifies by subject serialNumber when configured", async () => {
    const world = makeWorld({ records: [allowed("SN-0042")], mappings: [defaultMapping] });
    world.deps.settings.deviceIdStrategy = "serialNumber";
    const ca = await testCa();
    const issued = await issueCertificate(ca, { subject: { CN: "generic", serialNumber: "SN-0042" } });
    const event = world.registerPem(issued.certificatePem);
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "provisioned", deviceId: "SN-0042" });
  });

  it("a certificate no longer PENDING_ACTIVATION, or gone, is skipped with no side effect", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    await world.iot.updateCertificateStatus(event.certificateId, "INACTIVE");
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    world.iot.certificates.clear();
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    expect(world.iot.methods().filter((m) => m !== "describeCertificate")).toEqual([
      "updateCertificateStatus",
    ]);
    expect(world.ledger.entries).toHaveLength(0);
  });
});

describe("provision for an approval", () => {
  it("re-decides a quarantined (INACTIVE) certificate once its record exists, and provisions it", async () => {
    const world = makeWorld({ mappings: [defaultMapping] });
    const { event } = await world.register("dev-9");
    expect(await provision(event, world.deps)).toMatchObject({
      outcome: "denied",
      reason: "not-allowlisted",
    });
    expect(world.ledger.entries[0]).toMatchObject({ certificateStatus: "INACTIVE" });
    // a registered event for an INACTIVE certificate is not acted on
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    world.allowlist.records.set("dev-9", allowed("dev-9"));
    const approved = await provision(event, world.deps, { from: "INACTIVE", actor: "admin@example.com" });
    expect(approved).toMatchObject({ outcome: "provisioned", deviceId: "dev-9" });
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(world.ledger.entries.at(-1)).toMatchObject({ kind: "provisioned", actor: "admin@example.com" });
  });
});

describe("a binding that keeps changing", () => {
  it("records `failed` and throws a transient error, so the platform retries the event", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    world.allowlist.claimBinding = async () => false;
    await expect(provision(event, world.deps)).rejects.toThrow(/binding kept changing/);
    expect(world.ledger.entries).toEqual([expect.objectContaining({ kind: "failed", deviceId: "dev-1" })]);
    expect(world.iot.statusOf(event.certificateId)).toBe("PENDING_ACTIVATION");
    expect(world.iot.things.size).toBe(0);
  });
});

describe("rotation replace while another certificate is being provisioned", () => {
  it("waits (a transient failure, recorded) instead of replacing a certificate that is not yet ACTIVE", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { rotation: "replace" })],
      mappings: [defaultMapping],
    });
    const first = (await world.register("dev-1")).event;
    const second = (await world.register("dev-1")).event;
    // the first certificate has claimed the device and is mid-provisioning
    await world.allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: first.certificateId,
      expectedCertificateId: undefined,
    });
    await expect(provision(second, world.deps)).rejects.toThrow(/being provisioned/);
    expect(world.iot.statusOf(second.certificateId)).toBe("PENDING_ACTIVATION");
    expect((await world.allowlist.get("dev-1"))?.certificateId).toBe(first.certificateId);
    expect(world.ledger.entries).toEqual([
      expect.objectContaining({ kind: "failed", certificateId: second.certificateId }),
    ]);
  });
});

describe("a binding taken away during provisioning", () => {
  it("sets the just-activated certificate INACTIVE, records `failed` and throws", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    // an admin deprovisions (unbinds) the device while the run is executing
    const activate = world.iot.updateCertificateStatus.bind(world.iot);
    world.iot.updateCertificateStatus = async (id, status) => {
      await activate(id, status);
      if (status === "ACTIVE") {
        const record = world.allowlist.records.get("dev-1");
        if (record) delete record.certificateId;
      }
    };
    await expect(provision(event, world.deps)).rejects.toThrow(/binding changed during provisioning/);
    expect(world.iot.statusOf(event.certificateId)).toBe("INACTIVE");
    expect(world.ledger.entries).toEqual([expect.objectContaining({ kind: "failed" })]);
  });
});

describe("a run stopped after activation, before its outcome was recorded (resumed on redelivery)", () => {
  /** Provisions until the certificate is ACTIVE and stops there, as a process killed at that moment. */
  const crashAfterActivation = async (world: ReturnType<typeof makeWorld>, event: RegisteredEvent) => {
    world.allowlist.failOn("completeBinding", () => new Error("process killed"), 1);
    await expect(provision(event, world.deps)).rejects.toThrow("process killed");
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(world.ledger.entries).toEqual([]);
  };

  it("a redelivered event completes it: provisioned once, one ledger outcome, lot counted once", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { lot: "L1" })],
      mappings: [defaultMapping],
      lots: [{ lot: "L1", maxDevices: 5, provisionedCount: 0 }],
    });
    const { event } = await world.register("dev-1");
    await crashAfterActivation(world, event);
    expect(await world.allowlist.get("dev-1")).toMatchObject({ certificateId: event.certificateId });
    expect((await world.allowlist.get("dev-1"))?.provisionedAt).toBeUndefined();

    const result = await provision(event, world.deps);
    expect(result).toMatchObject({ outcome: "provisioned", deviceId: "dev-1", thingName: "dev-1" });
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    const arn = arnOf(event.certificateId);
    expect([...(world.iot.thingPrincipals.get("dev-1") ?? [])]).toEqual([arn]);
    expect(world.iot.policyTargets.get("jitr-sensor")?.has(arn)).toBe(true);
    const record = await world.allowlist.get("dev-1");
    expect(record).toMatchObject({
      certificateId: event.certificateId,
      thingName: "dev-1",
      lotCounted: "L1",
    });
    expect(record?.provisionedAt).toBeDefined();
    expect(world.lots.lots.get("L1")?.provisionedCount).toBe(1);
    expect(world.ledger.entries).toEqual([
      expect.objectContaining({ kind: "provisioned", certificateId: event.certificateId }),
    ]);

    // Settled now: a further redelivery changes nothing and records nothing.
    const calls = world.iot.calls.length;
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    expect(world.iot.methods().slice(calls)).toEqual(["describeCertificate"]);
    expect(world.ledger.entries).toHaveLength(1);
  });

  it("stopped between completing the binding and recording the outcome: a redelivered event records `provisioned` once", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    world.ledger.failOn("append", () => new Error("process killed"), 1);
    await expect(provision(event, world.deps)).rejects.toThrow("process killed");
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect((await world.allowlist.get("dev-1"))?.provisionedAt).toBeDefined();
    expect(world.ledger.entries).toEqual([]);

    expect(await provision(event, world.deps)).toMatchObject({ outcome: "provisioned", deviceId: "dev-1" });
    expect(world.ledger.entries).toEqual([
      expect.objectContaining({ kind: "provisioned", certificateId: event.certificateId }),
    ]);
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    expect(world.ledger.entries).toHaveLength(1);
  });

  it("a denial stopped between recording it and setting the status: redelivery sets the status and records nothing twice", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { status: "blocked" })],
      mappings: [defaultMapping],
    });
    const { event } = await world.register("dev-1");
    world.iot.failOn("updateCertificateStatus", () => new Error("process killed"), 1);
    await expect(provision(event, world.deps)).rejects.toThrow("process killed");
    expect(world.iot.statusOf(event.certificateId)).toBe("PENDING_ACTIVATION");
    expect(world.ledger.entries.map((e) => e.kind)).toEqual(["denied"]);

    expect(await provision(event, world.deps)).toMatchObject({ outcome: "denied", reason: "blocked" });
    expect(world.iot.statusOf(event.certificateId)).toBe("REVOKED");
    expect(world.ledger.entries.map((e) => e.kind)).toEqual(["denied"]);
  });

  it("denied now (blocked meanwhile): the certificate leaves ACTIVE, the claim and lot place are given back, `denied` recorded", async () => {
    const world = makeWorld({
      records: [allowed("dev-1", { lot: "L1" })],
      mappings: [defaultMapping],
      lots: [{ lot: "L1", provisionedCount: 0 }],
    });
    const { event } = await world.register("dev-1");
    await crashAfterActivation(world, event);
    const stored = world.allowlist.records.get("dev-1");
    if (stored) stored.status = "blocked";

    expect(await provision(event, world.deps)).toMatchObject({
      outcome: "denied",
      reason: "blocked",
      certificateStatus: "REVOKED",
    });
    expect(world.iot.statusOf(event.certificateId)).toBe("REVOKED");
    const record = await world.allowlist.get("dev-1");
    expect(record?.certificateId).toBeUndefined();
    expect(record?.lotCounted).toBeUndefined();
    expect(world.lots.lots.get("L1")?.provisionedCount).toBe(0);
    expect(world.ledger.entries).toEqual([expect.objectContaining({ kind: "denied", reason: "blocked" })]);
  });

  it("an ACTIVE certificate the record does not hold an open claim for stays skipped, whatever the event", async () => {
    const world = makeWorld({
      records: [allowed("dev-1"), allowed("dev-2")],
      mappings: [defaultMapping],
    });
    // dev-1: unbound; dev-2: bound to another certificate; dev-3: no record at all
    const unbound = (await world.register("dev-1")).event;
    const other = (await world.register("dev-2")).event;
    const stranger = (await world.register("dev-3")).event;
    const stored = world.allowlist.records.get("dev-2");
    if (stored) stored.certificateId = "f".repeat(64);
    for (const e of [unbound, other, stranger]) {
      const cert = world.iot.certificates.get(e.certificateId);
      if (cert) cert.status = "ACTIVE";
    }
    for (const e of [unbound, other, stranger]) {
      expect(await provision(e, world.deps)).toMatchObject({ outcome: "skipped" });
      expect(world.iot.statusOf(e.certificateId)).toBe("ACTIVE");
    }
    expect(world.iot.methods().filter((m) => m !== "describeCertificate")).toEqual([]);
    expect(world.iot.things.size).toBe(0);
    expect(world.ledger.entries).toEqual([]);
    expect((await world.allowlist.get("dev-1"))?.certificateId).toBeUndefined();
  });

  it("an ACTIVE certificate whose binding was completed is settled: a replayed event re-decides nothing", async () => {
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [defaultMapping] });
    const { event } = await world.register("dev-1");
    await provision(event, world.deps);
    // An admin blocks the device afterwards; a replay must not be what revokes it (block does that).
    const stored = world.allowlist.records.get("dev-1");
    if (stored) stored.status = "blocked";
    const calls = world.iot.calls.length;
    expect(await provision(event, world.deps)).toMatchObject({ outcome: "skipped" });
    expect(world.iot.methods().slice(calls)).toEqual(["describeCertificate"]);
    expect(world.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(world.ledger.entries.map((e) => e.kind)).toEqual(["provisioned"]);
  });
});
