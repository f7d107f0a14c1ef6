/** The policy-mapping use cases over in-memory stores, with the what-if of a change. */
import { describe, expect, it } from "vitest";
import { Admin, mappingLedgerKey } from "../../../domain/admin/index.ts";
import { NotFoundError, ValidationError } from "../../../domain/errors.ts";
import type { AllowlistRecord } from "../../../domain/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const CA = "c".repeat(64);

/** A provisioned device: a record bound to a certificate. */
const bound = (deviceId: string, extra: Partial<AllowlistRecord> = {}): AllowlistRecord => ({
  deviceId,
  status: "allowed",
  version: 1,
  certificateId: deviceId.padEnd(64, "0").replace(/[^0-9a-f]/g, "0"),
  thingName: deviceId,
  provisionedAt: "2026-01-01T00:00:00.000Z",
  ...extra,
});

describe("policy mappings", () => {
  it("creates, reads, updates, lists and deletes a mapping, recording each change under the mapping's key", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const created = await admin.mappings.put(
      ACTOR,
      "profile:sensor",
      { policy: { template: "sensor" } },
      { create: true },
    );
    const updated = await admin.mappings.put(
      ACTOR,
      "profile:sensor",
      { policy: { template: "gateway" }, thingGroups: ["gateways"] },
      { version: 1 },
    );
    const listed = await admin.mappings.list({ limit: 10 });
    await admin.mappings.remove(ACTOR, "profile:sensor", 2);
    const gone = admin.mappings.get("profile:sensor");

    // Assess
    expect(created.value).toMatchObject({
      selector: "profile:sensor",
      version: 1,
      createdAt: expect.any(String),
    });
    expect(updated.value).toMatchObject({
      policy: { template: "gateway" },
      version: 2,
      createdAt: created.value.createdAt,
    });
    expect(listed.items.map((m) => m.selector)).toEqual(["profile:sensor"]);
    await expect(gone).rejects.toThrow(new NotFoundError("no policy mapping for selector profile:sensor"));
    expect(world.ledger.changes(mappingLedgerKey("profile:sensor")).map((c) => c.action)).toEqual([
      "create",
      "update",
      "delete",
    ]);
    expect(world.ledger.changes(mappingLedgerKey("profile:sensor"))[1]).toMatchObject({
      before: { selector: "profile:sensor", policy: { template: "sensor" } },
      after: { policy: { template: "gateway" }, thingGroups: ["gateways"] },
    });
  });

  it("refuses an unknown selector form and a policy template that does not exist", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const badSelector = admin.mappings.get("anything");
    const badTemplate = admin.mappings.put(
      ACTOR,
      "default",
      { policy: { template: "nope" } },
      { create: true },
    );

    // Assess
    await expect(badSelector).rejects.toMatchObject({ issues: [{ path: "selector" }] });
    await expect(badTemplate).rejects.toBeInstanceOf(ValidationError);
    await expect(badTemplate).rejects.toMatchObject({ issues: [{ path: "policy.template" }] });
  });

  it("refuses a delete at a stale version and keeps the mapping", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 2 }],
    });
    const admin = new Admin(world.deps);

    // Act
    const stale = admin.mappings.remove(ACTOR, "default", 1);

    // Assess
    await expect(stale).rejects.toMatchObject({ failure: { kind: "stale", version: 1, stored: 2 } });
    expect(world.mappings.mappings.has("default")).toBe(true);
  });
});

describe("mapping what-if", () => {
  it("lists the provisioned devices whose policy would change, and saves nothing", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
      records: [
        bound("gw-1", { profile: "gateway" }),
        bound("s-1"),
        { deviceId: "idle", status: "allowed", profile: "gateway", version: 1 },
      ],
    });
    const admin = new Admin(world.deps);

    // Act
    const whatIf = await admin.mappings.whatIf("profile:gateway", { policy: { template: "gateway" } });

    // Assess
    expect(whatIf).toEqual({
      dryRun: true,
      mapping: { selector: "profile:gateway", policy: { template: "gateway" }, version: 0 },
      devicesExamined: 2,
      affectedCount: 1,
      affected: [
        {
          deviceId: "gw-1",
          certificateId: bound("gw-1").certificateId,
          from: { selector: "default", policyName: "jitr-sensor" },
          to: { selector: "profile:gateway", policyName: "jitr-gateway" },
          documentChanged: true,
        },
      ],
    });
    expect([...world.mappings.mappings.keys()]).toEqual(["default"]);
    expect(world.ledger.entries).toEqual([]);
  });

  it("sees a ca:<id> mapping through the CA the ledger recorded for the bound certificate", async () => {
    // Prepare
    const device = bound("c-1");
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
      records: [device],
    });
    await world.ledger.append({
      deviceId: "c-1",
      at: "2026-01-01T00:00:00.000Z",
      kind: "provisioned",
      certificateId: device.certificateId,
      caCertificateId: CA,
    });
    const admin = new Admin(world.deps);

    // Act
    const whatIf = await admin.mappings.whatIf(`ca:${CA}`, { policy: { template: "command-only" } });

    // Assess
    expect(whatIf).toMatchObject({
      affectedCount: 1,
      affected: [{ deviceId: "c-1", to: { selector: `ca:${CA}` } }],
    });
  });

  it("validates the proposed mapping like a real write", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const refused = admin.mappings.whatIf("default", { policy: { template: "nope" } });

    // Assess
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
  });
});
