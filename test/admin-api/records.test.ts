/**
 * The admin API through its router (the deployed handler's core) over dynalite tables and FakeIot:
 * every route of the allowlist, mappings and lots, their validation, preconditions and errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeAdminHandler } from "../../handlers/admin.ts";
import { countInLot } from "../support/lot-count.ts";
import { event, startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const CREATE = { "if-none-match": "*" };
const match = (version: number) => ({ "if-match": `"${version}"` });
const CA = "a".repeat(64);

type Page = { items: Record<string, unknown>[]; cursor?: string };

describe("allowlist records", () => {
  it("creates a record with If-None-Match: *, stamping version, times and actor, and records it in the ledger", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const created = await call("PUT", "/allowlist/dev-1", {
      body: { status: "allowed", profile: "sensor", attributes: { site: "north" }, thingGroups: ["fleet"] },
      headers: CREATE,
    });

    // Assess
    expect(created.status).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    expect(created.json).toMatchObject({
      deviceId: "dev-1",
      status: "allowed",
      profile: "sensor",
      version: 1,
      updatedBy: "arn:aws:iam::123456789012:user/alice",
    });
    const ledger = await scan("ledger");
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({
      deviceId: "dev-1",
      kind: "admin",
      actor: "arn:aws:iam::123456789012:user/alice",
    });
    expect(ledger[0]?.change).toMatchObject({ action: "create", version: 1 });
  });

  it("reads a record back with its version as ETag", async () => {
    // Prepare
    const { call } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: { lot: "L1" }, headers: CREATE });

    // Act
    const read = await call("GET", "/allowlist/dev-1");

    // Assess
    expect(read.status).toBe(200);
    expect(read.headers.etag).toBe('"1"');
    expect(read.json).toMatchObject({ deviceId: "dev-1", status: "allowed", lot: "L1", version: 1 });
  });

  it("updates with If-Match: the version goes up, createdAt stays, absent fields are removed", async () => {
    // Prepare
    const { call, clock } = await worlds.world();
    const first = await call("PUT", "/allowlist/dev-1", {
      body: { profile: "p1", note: "n" },
      headers: CREATE,
    });
    clock.set(new Date(clock.now().getTime() + 60_000));

    // Act
    const updated = await call("PUT", "/allowlist/dev-1", { body: { status: "blocked" }, headers: match(1) });

    // Assess
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ status: "blocked", version: 2 });
    expect(updated.json).not.toHaveProperty("profile");
    const stored = await call("GET", "/allowlist/dev-1");
    expect(stored.json).toMatchObject({
      version: 2,
      createdAt: (first.json as { createdAt: string }).createdAt,
    });
    expect(stored.json).not.toHaveProperty("note");
  });

  it("keeps a blocked record blocked when an update leaves status out", async () => {
    // Prepare
    const { call } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: { status: "blocked" }, headers: CREATE });

    // Act
    const updated = await call("PUT", "/allowlist/dev-1", {
      body: { note: "found again?" },
      headers: match(1),
    });

    // Assess
    expect(updated.json).toMatchObject({ status: "blocked", note: "found again?", version: 2 });
  });

  it("keeps the service's binding fields through an admin update", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE });
    await deps.allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c".repeat(64),
      expectedCertificateId: undefined,
    });

    // Act
    const updated = await call("PUT", "/allowlist/dev-1", { body: { profile: "x" }, headers: match(1) });

    // Assess
    expect(updated.status).toBe(200);
    expect((await deps.allowlist.get("dev-1"))?.certificateId).toBe("c".repeat(64));
  });

  it("answers 412 when the If-Match version is stale, and changes nothing", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: { profile: "a" }, headers: CREATE });
    await call("PUT", "/allowlist/dev-1", { body: { profile: "b" }, headers: match(1) });
    const before = await scan("allowlist");

    // Act
    const stale = await call("PUT", "/allowlist/dev-1", { body: { profile: "c" }, headers: match(1) });

    // Assess
    expect(stale.status).toBe(412);
    expect(stale.json).toMatchObject({ error: { code: "PreconditionFailed" } });
    expect(await scan("allowlist")).toEqual(before);
  });

  it("answers 412 when If-None-Match: * meets an existing record", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: { profile: "a" }, headers: CREATE });
    const before = await scan("allowlist");

    // Act
    const again = await call("PUT", "/allowlist/dev-1", { body: { profile: "b" }, headers: CREATE });

    // Assess
    expect(again.status).toBe(412);
    expect(await scan("allowlist")).toEqual(before);
  });

  it("answers 412 for If-Match on a record that does not exist", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const missing = await call("PUT", "/allowlist/ghost", { body: {}, headers: match(1) });

    // Assess
    expect(missing.status).toBe(412);
    expect(await scan("allowlist")).toEqual([]);
  });

  it("answers 428 when a write names no precondition", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const bare = await call("PUT", "/allowlist/dev-1", { body: {} });

    // Assess
    expect(bare.status).toBe(428);
    expect(bare.json).toMatchObject({
      error: { code: "PreconditionRequired", message: expect.stringContaining("If-None-Match: *") },
    });
    expect(await scan("allowlist")).toEqual([]);
  });

  it("lets exactly one of two racing creates win", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const results = await Promise.all([
      call("PUT", "/allowlist/dev-1", { body: { note: "one" }, headers: CREATE }),
      call("PUT", "/allowlist/dev-1", { body: { note: "two" }, headers: CREATE }),
    ]);

    // Assess
    expect(results.map((r) => r.status).sort()).toEqual([201, 412]);
  });

  it.each([
    [{ status: "maybe" }, "status", "must be one of allowed, blocked"],
    [{ rotation: "sometimes" }, "rotation", "must be one of reject, replace, allow-multiple"],
    [{ caCertificateId: "abc" }, "caCertificateId", "64 hex"],
    [{ certificateFingerprint: "zz" }, "certificateFingerprint", "64 hex"],
    [{ notBefore: "yesterday" }, "notBefore", "ISO 8601"],
    [{ notBefore: "2026-02-01", notAfter: "2026-01-01" }, "notBefore", "earlier than notAfter"],
    [{ attributes: { site: 5 } }, "attributes.site", "must be a string"],
    [{ attributes: { "bad name!": "x" } }, "attributes.bad name!", "name must match"],
    [
      { attributes: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`a${i}`, "v"])) },
      "attributes",
      "at most 50",
    ],
    [{ thingGroups: "fleet" }, "thingGroups", "must be an array"],
    [{ thingGroups: ["ok", "no spaces"] }, "thingGroups[1]", "thing group name"],
    [{ thingType: "a b" }, "thingType", "thing type name"],
    [{ lot: "" }, "lot", "lot name"],
    [{ color: "red" }, "color", "is not a known field"],
    [{ certificateId: "c".repeat(64) }, "certificateId", "written by the service"],
    [{ version: 3 }, "version", "written by the service"],
    [{ updatedBy: "me" }, "updatedBy", "written by the service"],
    [{ provisionedAt: "2026-01-01" }, "provisionedAt", "written by the service"],
    [{ deviceId: "other" }, "deviceId", "differs from the device id in the path"],
    [{ note: 5 }, "note", "string"],
  ])("refuses %j with 400 naming %s, and writes nothing", async (body, path, message) => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("PUT", "/allowlist/dev-1", { body, headers: CREATE });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: {
        code: "ValidationError",
        details: expect.arrayContaining([{ path, message: expect.stringContaining(message) }]),
      },
    });
    expect(await scan("allowlist")).toEqual([]);
    expect(await scan("ledger")).toEqual([]);
  });

  it("refuses a device id that is not a thing name", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("PUT", "/allowlist/bad%20id", { body: {}, headers: CREATE });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: { details: [{ path: "deviceId" }] } });
    expect(await scan("allowlist")).toEqual([]);
  });

  it("lists every error of a bad record at once", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const refused = await call("PUT", "/allowlist/dev-1", {
      body: { status: "x", rotation: "y", extra: 1 },
      headers: CREATE,
    });

    // Assess
    const paths = (refused.json as { error: { details: { path: string }[] } }).error.details.map(
      (d) => d.path,
    );
    expect(paths.sort()).toEqual(["extra", "rotation", "status"]);
  });

  it("accepts a colon-separated fingerprint and stores it as lowercase hex", async () => {
    // Prepare
    const { call } = await worlds.world();
    const colons = Array.from({ length: 32 }, () => "AB").join(":");

    // Act
    const created = await call("PUT", "/allowlist/dev-1", {
      body: { certificateFingerprint: colons },
      headers: CREATE,
    });

    // Assess
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ certificateFingerprint: "ab".repeat(32) });
  });

  it("answers 400 for a body that is not JSON", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const refused = await call("PUT", "/allowlist/dev-1", { body: "{nope", headers: CREATE });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { code: "ValidationError", message: "the body is not valid JSON" },
    });
  });

  it("answers 413 for a body over 1 MiB", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("PUT", "/allowlist/dev-1", {
      body: { note: "x".repeat(1_100_000) },
      headers: CREATE,
    });

    // Assess
    expect(refused.status).toBe(413);
    expect(await scan("allowlist")).toEqual([]);
  });

  it("answers 404 for a record that does not exist", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const missing = await call("GET", "/allowlist/ghost");

    // Assess
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({
      error: { code: "NotFound", message: "no allowlist record for device ghost" },
    });
  });

  it("answers 401 when the request carries no caller identity", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const anonymous = await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE, actor: null });

    // Assess
    expect(anonymous.status).toBe(401);
    expect(await scan("allowlist")).toEqual([]);
  });

  it("answers 404 for an unknown route and 405 for a wrong method", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const unknown = await call("GET", "/nothing/here");
    const wrong = await call("POST", "/allowlist/dev-1");

    // Assess
    expect(unknown.status).toBe(404);
    expect(wrong.status).toBe(405);
  });

  it("deletes a record that is not bound, with the ledger noting it", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE });

    // Act
    const deleted = await call("DELETE", "/allowlist/dev-1", { headers: match(1) });

    // Assess
    expect(deleted.status).toBe(204);
    expect(await scan("allowlist")).toEqual([]);
    const actions = (await scan("ledger")).map((e) => (e.change as { action: string }).action).sort();
    expect(actions).toEqual(["create", "delete"]);
  });

  it("refuses with 409 to delete a record bound to an ACTIVE certificate, and keeps it", async () => {
    // Prepare
    const { call, deps, iot, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE });
    const certificateId = "d".repeat(64);
    iot.addCertificate(certificateId, "pem", CA, "ACTIVE");
    await deps.allowlist.claimBinding({ deviceId: "dev-1", certificateId, expectedCertificateId: undefined });
    const before = await scan("allowlist");

    // Act
    const refused = await call("DELETE", "/allowlist/dev-1");

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      error: { code: "Conflict", message: expect.stringContaining("deprovision") },
    });
    expect(await scan("allowlist")).toEqual(before);
  });

  it("deletes a record bound to a REVOKED certificate", async () => {
    // Prepare
    const { call, deps, iot, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE });
    const certificateId = "d".repeat(64);
    iot.addCertificate(certificateId, "pem", CA, "REVOKED");
    await deps.allowlist.claimBinding({ deviceId: "dev-1", certificateId, expectedCertificateId: undefined });

    // Act
    const deleted = await call("DELETE", "/allowlist/dev-1");

    // Assess
    expect(deleted.status).toBe(204);
    expect(await scan("allowlist")).toEqual([]);
  });

  it("answers 412 to a delete with a stale If-Match and 404 for a missing record", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    await call("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE });

    // Act
    const stale = await call("DELETE", "/allowlist/dev-1", { headers: match(7) });
    const missing = await call("DELETE", "/allowlist/ghost");

    // Assess
    expect(stale.status).toBe(412);
    expect(missing.status).toBe(404);
    expect(await scan("allowlist")).toHaveLength(1);
  });

  it("lists records in pages with an opaque cursor, and by status and lot through the indexes", async () => {
    // Prepare
    const { call } = await worlds.world();
    for (let i = 0; i < 5; i++) {
      await call("PUT", `/allowlist/dev-${i}`, {
        body: { status: i % 2 === 0 ? "allowed" : "blocked", lot: i < 3 ? "L1" : "L2" },
        headers: CREATE,
      });
    }

    // Act
    const first = await call("GET", "/allowlist?limit=2");
    const cursor = (first.json as Page).cursor ?? "";
    const second = await call("GET", `/allowlist?limit=10&cursor=${encodeURIComponent(cursor)}`);
    const blocked = await call("GET", "/allowlist?status=blocked");
    const lot1 = await call("GET", "/allowlist?lot=L1");
    const both = await call("GET", "/allowlist?lot=L1&status=allowed");

    // Assess
    expect((first.json as Page).items).toHaveLength(2);
    expect(cursor).not.toBe("");
    const all = [...(first.json as Page).items, ...(second.json as Page).items].map((r) => r.deviceId).sort();
    expect(all).toEqual(["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]);
    expect((blocked.json as Page).items.map((r) => r.deviceId).sort()).toEqual(["dev-1", "dev-3"]);
    expect((lot1.json as Page).items.map((r) => r.deviceId).sort()).toEqual(["dev-0", "dev-1", "dev-2"]);
    expect((both.json as Page).items.map((r) => r.deviceId).sort()).toEqual(["dev-0", "dev-2"]);
  });

  it.each([
    ["/allowlist?limit=0", "limit"],
    ["/allowlist?limit=abc", "limit"],
    ["/allowlist?status=maybe", "status"],
    ["/allowlist?cursor=not-a-cursor", "cursor"],
  ])("refuses the listing %s with 400 naming %s", async (path, field) => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const refused = await call("GET", path);

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: { details: [{ path: field }] } });
  });
});

describe("policy mappings", () => {
  it("creates, reads, updates, lists and deletes a mapping", async () => {
    // Prepare
    const { call, iot } = await worlds.world();
    iot.thingGroups.set("gateways", new Set());

    // Act
    const created = await call("PUT", "/mappings/profile:sensor", {
      body: { policy: { template: "sensor" } },
      headers: CREATE,
    });
    const read = await call("GET", "/mappings/profile:sensor");
    const updated = await call("PUT", "/mappings/profile:sensor", {
      body: { policy: { template: "gateway" }, thingGroups: ["gateways"] },
      headers: match(1),
    });
    const listed = await call("GET", "/mappings");
    const deleted = await call("DELETE", "/mappings/profile:sensor", { headers: match(2) });
    const gone = await call("GET", "/mappings/profile:sensor");

    // Assess
    expect(created.status).toBe(201);
    expect(read.json).toMatchObject({
      selector: "profile:sensor",
      policy: { template: "sensor" },
      version: 1,
    });
    expect(updated.json).toMatchObject({ policy: { template: "gateway" }, version: 2 });
    expect((listed.json as Page).items.map((m) => m.selector)).toEqual(["profile:sensor"]);
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
  });

  it("saves a mapping whose template names the thing after the certificate's serialNumber, answering a warning; the dry run shows it too", async () => {
    // Prepare: the device id is the CN (the service's default strategy)
    const { call } = await worlds.world();
    const body = {
      policy: { template: "sensor" },
      provisioningTemplate: {
        templateBody: {
          Parameters: { "AWS::IoT::Certificate::SerialNumber": { Type: "String" } },
          Resources: {
            thing: {
              Type: "AWS::IoT::Thing",
              Properties: { ThingName: { Ref: "AWS::IoT::Certificate::SerialNumber" } },
            },
          },
        },
      },
    };
    const warning = {
      code: "thing-name-mismatch",
      path: "provisioningTemplate.templateBody.Resources.thing.Properties.ThingName",
      message: expect.stringContaining("serialNumber"),
    };

    // Act
    const dryRun = await call("PUT", "/mappings/profile:bySerial?dryRun=true", { body });
    const created = await call("PUT", "/mappings/profile:bySerial", { body, headers: CREATE });
    const read = await call("GET", "/mappings/profile:bySerial");
    const plain = await call("PUT", "/mappings/default", {
      body: { policy: { template: "sensor" } },
      headers: CREATE,
    });

    // Assess
    expect(dryRun.json).toMatchObject({ dryRun: true, warnings: [warning] });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ selector: "profile:bySerial", version: 1, warnings: [warning] });
    expect(read.json).not.toHaveProperty("warnings");
    expect(plain.status).toBe(201);
    expect(plain.json).not.toHaveProperty("warnings");
  });

  it.each(["default", `ca:${CA}`, "device:dev-1", "thingType:Sensor", "profile:a.b"])(
    "accepts the selector %s",
    async (selector) => {
      // Prepare
      const { call, iot } = await worlds.world();
      await iot.createPolicy("existing-policy", '{"Version":"2012-10-17","Statement":[]}');

      // Act
      const created = await call("PUT", `/mappings/${encodeURIComponent(selector)}`, {
        body: { policy: { policyName: "existing-policy" } },
        headers: CREATE,
      });

      // Assess
      expect(created.status).toBe(201);
    },
  );

  it.each([
    ["/mappings/anything", { policy: { template: "sensor" } }, "selector", "must be one of"],
    ["/mappings/ca:xyz", { policy: { template: "sensor" } }, "selector", "64 lowercase hex"],
    ["/mappings/default", {}, "policy", "is required"],
    [
      "/mappings/default",
      { policy: { template: "nope" } },
      "policy.template",
      "is not a template in policies/",
    ],
    ["/mappings/default", { policy: { template: "sensor", policyName: "p" } }, "policy", "exactly one of"],
    ["/mappings/default", { policy: { policyName: "bad name" } }, "policy.policyName", "IoT policy name"],
    ["/mappings/default", { policy: { document: "{not json" } }, "policy.document", "not valid JSON"],
    [
      "/mappings/default",
      { policy: { document: { Statement: [] } } },
      "policy.document",
      "Version and Statement",
    ],
    [
      "/mappings/default",
      {
        policy: {
          document: {
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Action: "iot:Publish",
                Resource: Array.from(
                  { length: 100 },
                  (_, i) => `arn:aws:iot:*:*:topic/devices/{{deviceId}}/x${i}`,
                ),
              },
            ],
          },
        },
      },
      "policy.document",
      "2048",
    ],
    [
      "/mappings/default",
      { policy: { template: "sensor" }, provisioningTemplate: { templateBody: "{}" } },
      "provisioningTemplate.templateBody.Resources",
      "is required",
    ],
    [
      "/mappings/default",
      {
        provisioningTemplate: {
          templateBody: {
            Parameters: { Site: { Type: "String" } },
            Resources: {
              thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { "Fn::GetAtt": ["x", "y"] } } },
            },
          },
        },
      },
      "provisioningTemplate.templateBody.Resources.thing.Properties.ThingName.Fn::GetAtt",
      "Fn::GetAtt",
    ],
    [
      "/mappings/default",
      { policy: { template: "sensor" }, version: 2 },
      "version",
      "written by the service",
    ],
    ["/mappings/default", { policy: { template: "sensor" }, weight: 2 }, "weight", "is not a known field"],
  ])("refuses PUT %s %j with 400 naming %s", async (path, body, field, message) => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("PUT", path, { body, headers: CREATE });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: {
        details: expect.arrayContaining([{ path: field, message: expect.stringContaining(message) }]),
      },
    });
    expect(await scan("mappings")).toEqual([]);
  });

  it("accepts a JITP-format provisioning template in place of a policy, and saves it as given", async () => {
    // Prepare
    const { call, scan, iot } = await worlds.world();
    iot.thingGroups.set("bulbs", new Set());
    await iot.createPolicy("Bulbs", '{"Version":"2012-10-17","Statement":[]}');
    const templateBody = {
      Parameters: { "AWS::IoT::Certificate::CommonName": { Type: "String" } },
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: { ThingName: { Ref: "AWS::IoT::Certificate::CommonName" }, ThingGroups: ["bulbs"] },
        },
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "ACTIVE" },
        },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "Bulbs" } },
      },
    };

    // Act
    const created = await call("PUT", "/mappings/profile:bulb", {
      body: { provisioningTemplate: { templateBody } },
      headers: CREATE,
    });

    // Assess
    expect(created.status).toBe(201);
    expect(await scan("mappings")).toEqual([
      expect.objectContaining({ selector: "profile:bulb", provisioningTemplate: { templateBody } }),
    ]);
  });

  it("accepts an inline document with per-device placeholders", async () => {
    // Prepare
    const { call } = await worlds.world();
    const document = {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: "iot:Publish",
          Resource: "arn:aws:iot:{{region}}:{{accountId}}:topic/sites/{{attributes.site}}/{{deviceId}}",
        },
      ],
    };

    // Act
    const created = await call("PUT", "/mappings/default", {
      body: { policy: { document } },
      headers: CREATE,
    });

    // Assess
    expect(created.status).toBe(201);
  });

  it("answers 412 for a stale mapping update and writes nothing", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    await call("PUT", "/mappings/default", { body: { policy: { template: "sensor" } }, headers: CREATE });
    const before = await scan("mappings");

    // Act
    const stale = await call("PUT", "/mappings/default", {
      body: { policy: { template: "gateway" } },
      headers: match(5),
    });

    // Assess
    expect(stale.status).toBe(412);
    expect(await scan("mappings")).toEqual(before);
  });
});

describe("lots", () => {
  it("creates, updates, reads and lists lots; provisionedCount stays the service's", async () => {
    // Prepare
    const { call, deps } = await worlds.world();

    // Act
    const created = await call("PUT", "/lots/L1", { body: { maxDevices: 2 }, headers: CREATE });
    await countInLot(deps, "L1");
    const updated = await call("PUT", "/lots/L1", {
      body: { maxDevices: 5, notAfter: "2030-01-01" },
      headers: match(1),
    });
    const read = await call("GET", "/lots/L1");
    const listed = await call("GET", "/lots");

    // Assess
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ lot: "L1", maxDevices: 2, provisionedCount: 0, version: 1 });
    expect(updated.json).toMatchObject({ maxDevices: 5, provisionedCount: 1, version: 2 });
    expect(read.json).toMatchObject({
      lot: "L1",
      maxDevices: 5,
      provisionedCount: 1,
      notAfter: "2030-01-01",
      version: 2,
    });
    expect((listed.json as Page).items.map((l) => l.lot)).toEqual(["L1"]);
  });

  it.each([
    [{ maxDevices: -1 }, "maxDevices", "non-negative whole number"],
    [{ maxDevices: 1.5 }, "maxDevices", "non-negative whole number"],
    [{ maxDevices: "3" }, "maxDevices", "non-negative whole number"],
    [{ provisionedCount: 3 }, "provisionedCount", "written by the service"],
    [{ notBefore: "2030-01-01", notAfter: "2029-01-01" }, "notBefore", "earlier than notAfter"],
    [{ quota: 3 }, "quota", "is not a known field"],
  ])("refuses %j with 400 naming %s", async (body, field, message) => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("PUT", "/lots/L1", { body, headers: CREATE });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { details: [{ path: field, message: expect.stringContaining(message) }] },
    });
    expect(await scan("lots")).toEqual([]);
  });

  it("answers 404 for a missing lot (read or delete) and 405 for POST", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const missing = await call("GET", "/lots/none");
    const deleted = await call("DELETE", "/lots/none");
    const posted = await call("POST", "/lots/none");

    // Assess
    expect(missing.status).toBe(404);
    expect(deleted.status).toBe(404);
    expect(posted.status).toBe(405);
  });
});

describe("the deployed handler", () => {
  it("answers an HTTP API event with a string body, and a 500 that says only 'internal error'", async () => {
    // Prepare
    const { deps, iot } = await worlds.world();
    const logged: string[] = [];
    const handler = makeAdminHandler({ admin: deps, logError: (message) => logged.push(message) });
    await handler(event("PUT", "/allowlist/dev-1", { body: {}, headers: CREATE }));
    iot.addCertificate("e".repeat(64), "pem", CA, "ACTIVE");
    await deps.allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "e".repeat(64),
      expectedCertificateId: undefined,
    });
    iot.failOn("describeCertificate", () => new Error("secret detail"));

    // Act
    const exported = await handler(event("GET", "/allowlist/export"));
    const failed = await handler(event("DELETE", "/allowlist/dev-1"));

    // Assess
    expect(exported.statusCode).toBe(200);
    expect(JSON.parse(exported.body?.trim() ?? "")).toEqual({ deviceId: "dev-1", status: "allowed" });
    expect(failed.statusCode).toBe(500);
    expect(JSON.parse(failed.body ?? "")).toEqual({
      error: { code: "InternalError", message: "internal error" },
    });
    expect(logged).toEqual(["admin request failed"]);
  });

  it("reads a base64 body and strips a named stage from the path", async () => {
    // Prepare
    const { deps } = await worlds.world();
    const handler = makeAdminHandler({ admin: deps });
    const base = event("PUT", "/prod/allowlist/dev-9", { headers: CREATE });
    const put = {
      ...base,
      body: Buffer.from(JSON.stringify({ profile: "p" })).toString("base64"),
      isBase64Encoded: true,
      requestContext: { ...base.requestContext, stage: "prod" },
    };

    // Act
    const response = await handler(put);

    // Assess
    expect(response.statusCode).toBe(201);
    expect((await deps.allowlist.get("dev-9"))?.profile).toBe("p");
  });
});
