/** Explain, approve, deprovision, history and the mapping what-if, over dynalite tables and FakeIot. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision } from "../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { CA_ID, eventFor, testCa } from "../support/world.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const CREATE = { "if-none-match": "*" };
type Page = { items: Record<string, unknown>[]; cursor?: string };

/** A world with a helper that registers a device certificate as AWS IoT does on first connect. */
async function fleet() {
  const w = await worlds.world();
  const register = async (deviceId: string) => {
    const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
    const certificateId = certificateIdOf(issued.certificatePem);
    w.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
    return { certificateId, pem: issued.certificatePem, event: eventFor(certificateId) };
  };
  const later = () => w.clock.set(new Date(w.clock.now().getTime() + 1000));
  return { ...w, register, later };
}

/** Everything that changes the registry, to show a dry run touched none of it. */
const WRITES = new Set([
  "updateCertificateStatus",
  "createThing",
  "updateThing",
  "deleteThing",
  "addThingToThingGroup",
  "createPolicy",
  "createPolicyVersion",
  "attachPolicy",
  "detachPolicy",
  "attachThingPrincipal",
  "detachThingPrincipal",
]);

describe("explain", () => {
  it("explains an allowlisted device that has no certificate yet: decision, mapping, rendered policy, thing", async () => {
    // Prepare
    const { call, scan, iot } = await fleet();
    iot.thingGroups.set("fleet", new Set());
    await call("PUT", "/allowlist/dev-1", {
      body: { attributes: { site: "north" }, thingGroups: ["fleet"] },
      headers: CREATE,
    });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    const before = {
      allowlist: await scan("allowlist"),
      ledger: await scan("ledger"),
      lots: await scan("lots"),
    };

    // Act
    const explained = await call("POST", "/explain", { body: { deviceId: "dev-1" } });

    // Assess
    expect(explained.status).toBe(200);
    expect(explained.json).toMatchObject({
      deviceId: "dev-1",
      decision: "allow",
      certificateStatus: "ACTIVE",
      certificate: { source: "hypothetical" },
      mapping: { selector: "default" },
      policy: { policyName: "jitr-sensor", document: expect.stringContaining("iot:Connect") },
      thing: { thingName: "dev-1", thingGroups: ["fleet"], attributes: { site: "north" } },
      record: { deviceId: "dev-1" },
    });
    expect({
      allowlist: await scan("allowlist"),
      ledger: await scan("ledger"),
      lots: await scan("lots"),
    }).toEqual(before);
    expect(iot.methods().filter((m) => WRITES.has(m))).toEqual([]);
  });

  it("explains a device that is not allowlisted as a quarantine", async () => {
    // Prepare
    const { call } = await fleet();

    // Act
    const explained = await call("POST", "/explain", { body: { deviceId: "stranger" } });

    // Assess
    expect(explained.json).toMatchObject({
      decision: "deny",
      reason: "not-allowlisted",
      certificateStatus: "INACTIVE",
    });
  });

  it("explains a certificate PEM, and a provisioned device by its bound certificate", async () => {
    // Prepare
    const { call, deps, register, iot } = await fleet();
    await call("PUT", "/allowlist/dev-2", { body: { status: "blocked" }, headers: CREATE });
    await call("PUT", "/allowlist/dev-3", { body: {}, headers: CREATE });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    const blocked = await register("dev-2");
    const good = await register("dev-3");
    await provision(good.event, deps);
    const writesBefore = iot.methods().filter((m) => WRITES.has(m)).length;

    // Act
    const byPem = await call("POST", "/explain", { body: { certificatePem: blocked.pem } });
    const bound = await call("POST", "/explain", { body: { deviceId: "dev-3" } });

    // Assess
    expect(byPem.json).toMatchObject({
      deviceId: "dev-2",
      decision: "deny",
      reason: "blocked",
      certificateStatus: "REVOKED",
      certificate: { source: "pem", certificateId: blocked.certificateId, status: "PENDING_ACTIVATION" },
      caCertificateId: CA_ID,
    });
    expect(bound.json).toMatchObject({
      decision: "allow",
      certificate: { source: "bound", certificateId: good.certificateId, status: "ACTIVE" },
      policy: { policyName: "jitr-sensor" },
    });
    expect(iot.methods().filter((m) => WRITES.has(m)).length).toBe(writesBefore);
  });

  it.each([
    [{}, "deviceId", "exactly one of"],
    [{ deviceId: "a", certificatePem: "b" }, "deviceId", "exactly one of"],
    [{ deviceId: "no spaces" }, "deviceId", "thing name"],
    [{ certificatePem: "hello" }, "certificatePem", "PEM certificate"],
    [
      { certificatePem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" },
      "certificatePem",
      "readable",
    ],
    [{ deviceId: "a", caCertificateId: "x" }, "caCertificateId", "64 lowercase hex"],
    [{ deviceId: "a", extra: 1 }, "extra", "not a known field"],
  ])("refuses %j with 400 naming %s", async (body, field, message) => {
    // Prepare
    const { call } = await fleet();

    // Act
    const refused = await call("POST", "/explain", { body });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: {
        details: expect.arrayContaining([{ path: field, message: expect.stringContaining(message) }]),
      },
    });
  });
});

describe("approve", () => {
  it("provisions the latest quarantined certificate once its record is fixed", async () => {
    // Prepare
    const { call, deps, register, iot, later } = await fleet();
    const cert = await register("dev-q");
    const denied = await provision(cert.event, deps);
    await call("PUT", "/allowlist/dev-q", { body: {}, headers: CREATE });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    later();

    // Act
    const approved = await call("POST", "/devices/dev-q/approve");

    // Assess
    expect(denied).toMatchObject({
      outcome: "denied",
      reason: "not-allowlisted",
      certificateStatus: "INACTIVE",
    });
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({
      outcome: "provisioned",
      certificateId: cert.certificateId,
      policyName: "jitr-sensor",
    });
    expect(iot.statusOf(cert.certificateId)).toBe("ACTIVE");
    expect(await deps.allowlist.get("dev-q")).toMatchObject({
      certificateId: cert.certificateId,
      thingName: "dev-q",
    });
    const history = await call("GET", "/devices/dev-q/history");
    expect((history.json as Page).items[0]).toMatchObject({
      kind: "provisioned",
      actor: "arn:aws:iam::123456789012:user/alice",
    });
  });

  it("answers with the denial when the device is still not allowed, leaving the certificate quarantined", async () => {
    // Prepare
    const { call, deps, register, iot } = await fleet();
    const cert = await register("dev-r");
    await provision(cert.event, deps);

    // Act
    const approved = await call("POST", "/devices/dev-r/approve");

    // Assess
    expect(approved.status).toBe(200);
    expect(approved.json).toMatchObject({ outcome: "denied", reason: "not-allowlisted" });
    expect(iot.statusOf(cert.certificateId)).toBe("INACTIVE");
  });

  it("answers 404 when the device has no quarantined certificate", async () => {
    // Prepare
    const { call } = await fleet();

    // Act
    const approved = await call("POST", "/devices/nobody/approve");

    // Assess
    expect(approved.status).toBe(404);
    expect(approved.json).toMatchObject({ error: { message: expect.stringContaining("no quarantined") } });
  });
});

describe("deprovision", () => {
  it("revokes, detaches policy and thing, deletes the thing, unbinds the record, releases the lot place, and records it", async () => {
    // Prepare
    const { call, deps, register, iot, scan } = await fleet();
    await call("PUT", "/lots/L1", { body: { maxDevices: 1 }, headers: CREATE });
    await call("PUT", "/allowlist/dev-d", { body: { lot: "L1" }, headers: CREATE });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    const cert = await register("dev-d");
    await provision(cert.event, deps);
    const arn = iot.certificates.get(cert.certificateId)?.certificateArn ?? "";

    // Act
    const done = await call("POST", "/devices/dev-d/deprovision");

    // Assess
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({
      revoked: true,
      detachedPolicies: ["jitr-sensor"],
      deletedPolicies: [],
      detachedThings: ["dev-d"],
      thingDeleted: true,
      lotReleased: "L1",
      warnings: [],
    });
    expect(iot.statusOf(cert.certificateId)).toBe("REVOKED");
    expect(iot.policyTargets.get("jitr-sensor")?.has(arn)).toBe(false);
    expect(iot.things.has("dev-d")).toBe(false);
    const record = await deps.allowlist.get("dev-d");
    expect(record).toBeDefined();
    expect(record).not.toHaveProperty("certificateId");
    expect(record).not.toHaveProperty("provisionedAt");
    expect((await deps.lots.get("L1"))?.provisionedCount).toBe(0);
    const entries = (await scan("ledger")).filter((e) => e.deviceId === "dev-d" && e.kind === "admin");
    expect(entries.map((e) => (e.change as { action: string }).action)).toContain("deprovision");
  });

  it("deletes the device's own per-device policy (all its versions), and keeps a shared one", async () => {
    // Prepare: dev-p gets a per-device policy with two versions; dev-s the shared sensor policy
    const { call, deps, register, iot } = await fleet();
    await call("PUT", "/allowlist/dev-p", {
      body: { profile: "own", attributes: { site: "north" } },
      headers: CREATE,
    });
    await call("PUT", "/allowlist/dev-s", { body: {}, headers: CREATE });
    await call("PUT", "/mappings/profile:own", {
      body: { policy: { template: "per-device-sensor" } },
      headers: CREATE,
    });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    await provision((await register("dev-p")).event, deps);
    await provision((await register("dev-s")).event, deps);
    const own = (await deps.allowlist.get("dev-p"))?.policyName ?? "";
    await iot.createPolicyVersion(own, '{"Version":"2012-10-17","Statement":[]}');
    expect(iot.policies.get(own)?.versions).toHaveLength(2);

    // Act
    const perDevice = await call("POST", "/devices/dev-p/deprovision");
    const shared = await call("POST", "/devices/dev-s/deprovision");

    // Assess
    expect(own).toBe("jitr-per-device-sensor@dev-p");
    expect(perDevice.json).toMatchObject({ detachedPolicies: [own], deletedPolicies: [own], warnings: [] });
    expect(iot.policies.has(own)).toBe(false);
    expect(shared.json).toMatchObject({ detachedPolicies: ["jitr-sensor"], deletedPolicies: [] });
    expect(iot.policies.has("jitr-sensor")).toBe(true);
  });

  it("answers 409 for a device that is not provisioned and 404 for one without a record", async () => {
    // Prepare
    const { call } = await fleet();
    await call("PUT", "/allowlist/dev-n", { body: {}, headers: CREATE });

    // Act
    const unbound = await call("POST", "/devices/dev-n/deprovision");
    const missing = await call("POST", "/devices/nobody/deprovision");

    // Assess
    expect(unbound.status).toBe(409);
    expect(missing.status).toBe(404);
  });

  it("lets the record be deleted once deprovisioned", async () => {
    // Prepare
    const { call, deps, register } = await fleet();
    await call("PUT", "/allowlist/dev-x", { body: {}, headers: CREATE });
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    await provision((await register("dev-x")).event, deps);
    const refused = await call("DELETE", "/allowlist/dev-x");

    // Act
    await call("POST", "/devices/dev-x/deprovision");
    const deleted = await call("DELETE", "/allowlist/dev-x");

    // Assess
    expect(refused.status).toBe(409);
    expect(deleted.status).toBe(204);
  });
});

describe("history", () => {
  it("pages through a device's ledger entries, newest first", async () => {
    // Prepare
    const { call, later } = await fleet();
    await call("PUT", "/allowlist/dev-h", { body: {}, headers: CREATE });
    for (let version = 1; version <= 3; version++) {
      later();
      await call("PUT", "/allowlist/dev-h", {
        body: { note: `v${version}` },
        headers: { "if-match": String(version) },
      });
    }

    // Act
    const first = await call("GET", "/devices/dev-h/history?limit=3");
    const second = await call(
      "GET",
      `/devices/dev-h/history?limit=3&cursor=${encodeURIComponent((first.json as Page).cursor ?? "")}`,
    );

    // Assess
    const versions = [...(first.json as Page).items, ...(second.json as Page).items].map(
      (e) => (e.change as { version: number }).version,
    );
    expect(versions).toEqual([4, 3, 2, 1]);
    expect((second.json as Page).cursor).toBeUndefined();
  });
});

describe("mapping what-if", () => {
  it("lists the provisioned devices whose policy would change, and saves nothing", async () => {
    // Prepare
    const { call, deps, register, scan } = await fleet();
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    await call("PUT", "/allowlist/gw-1", { body: { profile: "gateway" }, headers: CREATE });
    await call("PUT", "/allowlist/s-1", { body: {}, headers: CREATE });
    await call("PUT", "/allowlist/idle", { body: { profile: "gateway" }, headers: CREATE });
    await provision((await register("gw-1")).event, deps);
    await provision((await register("s-1")).event, deps);
    const before = await scan("mappings");

    // Act
    const whatIf = await call("PUT", "/mappings/profile:gateway?dryRun=true", {
      body: { policy: { template: "gateway" } },
    });

    // Assess
    expect(whatIf.status).toBe(200);
    expect(whatIf.json).toMatchObject({
      dryRun: true,
      devicesExamined: 2,
      affectedCount: 1,
      affected: [
        {
          deviceId: "gw-1",
          from: { selector: "default", policyName: "jitr-sensor" },
          to: { selector: "profile:gateway", policyName: "jitr-gateway" },
          documentChanged: true,
        },
      ],
    });
    expect(await scan("mappings")).toEqual(before);
  });

  it("sees a ca:<id> mapping through the CA recorded in the ledger", async () => {
    // Prepare
    const { call, deps, register } = await fleet();
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    await call("PUT", "/allowlist/c-1", { body: {}, headers: CREATE });
    await provision((await register("c-1")).event, deps);

    // Act
    const whatIf = await call("PUT", `/mappings/ca:${CA_ID}?dryRun=true`, {
      body: { policy: { template: "command-only" } },
    });

    // Assess
    expect(whatIf.json).toMatchObject({
      affectedCount: 1,
      affected: [{ deviceId: "c-1", to: { selector: `ca:${CA_ID}` } }],
    });
  });

  it("validates the proposed mapping like a real PUT", async () => {
    // Prepare
    const { call } = await fleet();

    // Act
    const refused = await call("PUT", "/mappings/default?dryRun=true", {
      body: { policy: { template: "nope" } },
    });

    // Assess
    expect(refused.status).toBe(400);
  });
});
