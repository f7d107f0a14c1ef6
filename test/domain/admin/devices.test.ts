/** Approve, deprovision and history over in-memory stores and the fake registry. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { JitrError, NotFoundError, StateConflictError, TransientError } from "../../../domain/errors.ts";
import { provision } from "../../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../../pki/certificates.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { CA_ID, eventFor, testCa } from "../../support/world.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const SENSOR = { selector: "default", policy: { template: "sensor" }, version: 1 };

async function register(world: ReturnType<typeof makeAdminWorld>, deviceId: string) {
  const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
  const certificateId = certificateIdOf(issued.certificatePem);
  world.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
  return { certificateId, event: eventFor(certificateId) };
}

describe("approve", () => {
  it("provisions the latest quarantined certificate once the device is allowed, as the admin", async () => {
    // Prepare
    const world = makeAdminWorld({ mappings: [SENSOR] });
    const admin = new Admin(world.deps);
    const cert = await register(world, "dev-q");
    await provision(cert.event, world.deps);
    await admin.allowlist.put(ACTOR, "dev-q", {}, { create: true });

    // Act
    const approved = await admin.devices.approve(ACTOR, "dev-q");

    // Assess
    expect(approved).toMatchObject({
      outcome: "provisioned",
      certificateId: cert.certificateId,
      policyName: "jitr-sensor",
    });
    expect(world.iot.statusOf(cert.certificateId)).toBe("ACTIVE");
    expect(world.ledger.entries.at(-1)).toMatchObject({
      deviceId: "dev-q",
      kind: "provisioned",
      actor: ACTOR,
    });
  });

  it("answers the denial when the device is still not allowed, leaving the certificate quarantined", async () => {
    // Prepare
    const world = makeAdminWorld();
    const cert = await register(world, "dev-r");
    await provision(cert.event, world.deps);

    // Act
    const approved = await new Admin(world.deps).devices.approve(ACTOR, "dev-r");

    // Assess
    expect(approved).toMatchObject({ outcome: "denied", reason: "not-allowlisted" });
    expect(world.iot.statusOf(cert.certificateId)).toBe("INACTIVE");
  });

  it("answers NotFoundError when the device has no quarantined certificate", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const approved = admin.devices.approve(ACTOR, "nobody");

    // Assess
    await expect(approved).rejects.toBeInstanceOf(NotFoundError);
    await expect(approved).rejects.toThrow("no quarantined");
  });
});

describe("deprovision", () => {
  it("revokes, detaches, deletes the thing and the device's own policy, unbinds, releases the lot place, and records it", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [{ selector: "profile:own", policy: { template: "per-device-sensor" }, version: 1 }],
      lots: [{ lot: "L1", maxDevices: 1, provisionedCount: 0, version: 1 }],
      records: [
        {
          deviceId: "dev-p",
          status: "allowed",
          profile: "own",
          lot: "L1",
          attributes: { site: "n" },
          version: 1,
        },
      ],
    });
    const cert = await register(world, "dev-p");
    await provision(cert.event, world.deps);
    const own = world.allowlist.records.get("dev-p")?.policyName ?? "";
    await world.iot.createPolicyVersion(own, '{"Version":"2012-10-17","Statement":[]}');

    // Act
    const done = await new Admin(world.deps).devices.deprovision(ACTOR, "dev-p");

    // Assess
    expect(done).toEqual({
      deviceId: "dev-p",
      certificateId: cert.certificateId,
      revoked: true,
      detachedPolicies: [own],
      deletedPolicies: [own],
      detachedThings: ["dev-p"],
      thingDeleted: true,
      lotReleased: "L1",
      certificates: [
        {
          certificateId: cert.certificateId,
          revoked: true,
          detachedPolicies: [own],
          detachedThings: ["dev-p"],
        },
      ],
      recordStatus: "allowed",
      warnings: [],
    });
    expect(world.iot.statusOf(cert.certificateId)).toBe("REVOKED");
    expect(world.iot.policies.has(own)).toBe(false);
    expect(world.iot.things.has("dev-p")).toBe(false);
    expect(world.allowlist.records.get("dev-p")).not.toHaveProperty("certificateId");
    expect(world.lots.lots.get("L1")?.provisionedCount).toBe(0);
    expect(world.ledger.changes("dev-p").at(-1)).toMatchObject({ action: "deprovision", revoked: true });
  });

  it("takes out every certificate of an allow-multiple device, not only the bound one, and records each", async () => {
    // Prepare: two certificates provisioned for one device, both ACTIVE on its thing
    const world = makeAdminWorld({
      mappings: [{ selector: "profile:own", policy: { template: "per-device-sensor" }, version: 1 }],
      records: [
        {
          deviceId: "dev-m",
          status: "allowed",
          profile: "own",
          rotation: "allow-multiple",
          attributes: { site: "n" },
          version: 1,
        },
      ],
    });
    const first = await register(world, "dev-m");
    const second = await register(world, "dev-m");
    await provision(first.event, world.deps);
    await provision(second.event, world.deps);
    const own = world.allowlist.records.get("dev-m")?.policyName ?? "";
    expect([world.iot.statusOf(first.certificateId), world.iot.statusOf(second.certificateId)]).toEqual([
      "ACTIVE",
      "ACTIVE",
    ]);

    // Act
    const done = await new Admin(world.deps).devices.deprovision(ACTOR, "dev-m");

    // Assess
    expect(done.certificates).toEqual([
      {
        certificateId: second.certificateId,
        revoked: true,
        detachedPolicies: [own],
        detachedThings: ["dev-m"],
      },
      {
        certificateId: first.certificateId,
        revoked: true,
        detachedPolicies: [own],
        detachedThings: ["dev-m"],
      },
    ]);
    expect(done).toMatchObject({ thingDeleted: true, deletedPolicies: [own], warnings: [] });
    for (const { certificateId } of [first, second]) {
      expect(world.iot.statusOf(certificateId)).toBe("REVOKED");
    }
    expect(world.iot.policyTargets.get(own)?.size ?? 0).toBe(0);
    expect(world.iot.policies.has(own)).toBe(false);
    expect(world.iot.things.has("dev-m")).toBe(false);
    expect(world.allowlist.records.get("dev-m")).not.toHaveProperty("certificateId");
    const change = world.ledger.changes("dev-m").at(-1);
    expect(change).toMatchObject({ action: "deprovision", thingDeleted: true });
    expect(change?.certificates).toEqual([
      expect.objectContaining({ certificateId: second.certificateId, revoked: true }),
      expect.objectContaining({ certificateId: first.certificateId, revoked: true }),
    ]);
  });

  it("revokes every certificate before taking anything apart, so a failure later leaves none usable", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [SENSOR],
      records: [{ deviceId: "dev-f", status: "allowed", rotation: "allow-multiple", version: 1 }],
    });
    const first = await register(world, "dev-f");
    const second = await register(world, "dev-f");
    await provision(first.event, world.deps);
    await provision(second.event, world.deps);
    world.iot.failOn("listAttachedPolicies", () => new JitrError("access denied"));

    // Act
    const failed = new Admin(world.deps).devices.deprovision(ACTOR, "dev-f");

    // Assess
    await expect(failed).rejects.toThrow("access denied");
    expect(world.iot.statusOf(first.certificateId)).toBe("REVOKED");
    expect(world.iot.statusOf(second.certificateId)).toBe("REVOKED");
    expect(world.allowlist.records.get("dev-f")?.certificateId).toBe(second.certificateId);
  });

  it("retries a throttled registry call and goes on", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [SENSOR],
      records: [{ deviceId: "dev-t", status: "allowed", version: 1 }],
    });
    const cert = await register(world, "dev-t");
    await provision(cert.event, world.deps);
    world.iot.failOn("updateCertificateStatus", () => new TransientError("throttled"), 2);

    // Act
    const done = await new Admin(world.deps).devices.deprovision(ACTOR, "dev-t");

    // Assess
    expect(done.revoked).toBe(true);
    expect(world.iot.statusOf(cert.certificateId)).toBe("REVOKED");
    expect(world.clock.sleeps).toHaveLength(2);
  });

  it("refuses a device that is not provisioned (StateConflictError) and one without a record (NotFoundError)", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [{ deviceId: "dev-n", status: "allowed", version: 1 }] });
    const admin = new Admin(world.deps);

    // Act
    const unbound = admin.devices.deprovision(ACTOR, "dev-n");
    const missing = admin.devices.deprovision(ACTOR, "nobody");

    // Assess
    await expect(unbound).rejects.toBeInstanceOf(StateConflictError);
    await expect(missing).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe("history", () => {
  it("pages through a device's ledger entries, newest first", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    await admin.allowlist.put(ACTOR, "dev-h", {}, { create: true });
    for (let version = 1; version <= 3; version++) {
      await admin.allowlist.put(ACTOR, "dev-h", { note: `v${version}` }, { version });
    }

    // Act
    const first = await admin.devices.history("dev-h", { limit: 3 });
    const second = await admin.devices.history("dev-h", { limit: 3, cursor: first.cursor });

    // Assess
    expect([...first.items, ...second.items].map((e) => e.change?.version)).toEqual([4, 3, 2, 1]);
    expect(second.cursor).toBeUndefined();
  });

  it("refuses a device id that is no thing name", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const refused = admin.devices.history("bad id", { limit: 10 });

    // Assess
    await expect(refused).rejects.toMatchObject({ issues: [{ path: "deviceId" }] });
  });
});
