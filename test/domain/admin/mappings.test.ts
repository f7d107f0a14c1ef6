/** The policy-mapping use cases over in-memory stores, with the what-if of a change. */
import { describe, expect, it } from "vitest";
import { Admin, mappingLedgerKey } from "../../../domain/admin/index.ts";
import { selectionFor } from "../../../domain/admin/selection.ts";
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

/** Puts the shared sensor policy in the registry with the document the sensor template renders. */
function sensorPolicyInPlace(world: ReturnType<typeof makeAdminWorld>): void {
  const sensor = { selector: "default", policy: { template: "sensor" }, version: 1 };
  const selected = selectionFor(
    world.deps.settings,
    new Date(),
    bound("any"),
    "unknown",
    new Map([["default", sensor]]),
  );
  if (!selected.ok || selected.document === undefined) throw new Error("the sensor template did not render");
  world.iot.policies.set("jitr-sensor", {
    versions: [{ id: "1", document: selected.document, createdAt: new Date(0) }],
    defaultId: "1",
  });
}

/** A mapping body whose provisioning template names the thing `kitchen-bulb`, whatever the device. */
const LITERAL_THING = {
  policy: { template: "sensor" },
  provisioningTemplate: {
    templateBody: {
      Resources: { bulb: { Type: "AWS::IoT::Thing", Properties: { ThingName: "kitchen-bulb" } } },
    },
  },
};

describe("policy mappings", () => {
  it("creates, reads, updates, lists and deletes a mapping, recording each change under the mapping's key", async () => {
    // Prepare
    const world = makeAdminWorld();
    world.iot.thingGroups.set("gateways", new Set());
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

describe("mapping warnings", () => {
  it("saves a mapping whose template names a literal thing, and answers a warning with it", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const written = await admin.mappings.put(ACTOR, "profile:bulbs", LITERAL_THING, { create: true });

    // Assess
    expect(written.created).toBe(true);
    expect(written.warnings).toEqual([
      expect.objectContaining({
        code: "thing-name-mismatch",
        message: expect.stringContaining("kitchen-bulb"),
      }),
    ]);
    expect(world.mappings.mappings.get("profile:bulbs")).toMatchObject({ version: 1 });
    expect(world.mappings.mappings.get("profile:bulbs")).not.toHaveProperty("warnings");
  });

  it("answers no warning for a mapping without a template, or one naming the thing after the device id", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);
    const byDevice = {
      policy: { template: "sensor" },
      provisioningTemplate: {
        templateBody: {
          Parameters: { "AWS::IoT::Certificate::CommonName": { Type: "String" } },
          Resources: {
            bulb: {
              Type: "AWS::IoT::Thing",
              Properties: { ThingName: { Ref: "AWS::IoT::Certificate::CommonName" } },
            },
          },
        },
      },
    };

    // Act
    const plain = await admin.mappings.put(
      ACTOR,
      "default",
      { policy: { template: "sensor" } },
      { create: true },
    );
    const templated = await admin.mappings.put(ACTOR, "profile:bulbs", byDevice, { create: true });

    // Assess
    expect([plain.warnings, templated.warnings]).toEqual([[], []]);
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
          changes: ["policy"],
        },
      ],
      warnings: [],
    });
    expect([...world.mappings.mappings.keys()]).toEqual(["default"]);
    expect(world.ledger.entries).toEqual([]);
  });

  it("starts from the policy the binding records as attached, not from what the mappings select today", async () => {
    // Prepare: provisioned with jitr-sensor; the default mapping has since been changed to command-only
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "command-only" }, version: 2 }],
      records: [bound("s-1", { policyName: "jitr-sensor" })],
    });
    sensorPolicyInPlace(world);
    const admin = new Admin(world.deps);

    // Act: back to sensor (the attached policy stays), then to gateway
    const back = await admin.mappings.whatIf("default", { policy: { template: "sensor" } });
    const onward = await admin.mappings.whatIf("default", { policy: { template: "gateway" } });

    // Assess
    expect([back.affectedCount, back.affected]).toEqual([0, []]);
    expect(onward.affected).toMatchObject([
      { deviceId: "s-1", from: { policyName: "jitr-sensor" }, to: { policyName: "jitr-gateway" } },
    ]);
  });

  it("takes the attached policy from the provisioned ledger entry when the record names none", async () => {
    // Prepare
    const device = bound("s-1");
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "command-only" }, version: 2 }],
      records: [device],
    });
    await world.ledger.append({
      deviceId: "s-1",
      at: "2026-01-01T00:00:00.000Z",
      kind: "provisioned",
      certificateId: device.certificateId,
      policyName: "jitr-sensor",
    });
    sensorPolicyInPlace(world);
    const admin = new Admin(world.deps);

    // Act
    const whatIf = await admin.mappings.whatIf("default", { policy: { template: "sensor" } });

    // Assess
    expect(whatIf.affectedCount).toBe(0);
  });

  it("lists a device whose thing groups, type or attributes would change though its policy stays", async () => {
    // Prepare
    const world = makeAdminWorld({
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
      records: [bound("s-1", { policyName: "jitr-sensor" })],
    });
    const admin = new Admin(world.deps);

    // Act
    const whatIf = await admin.mappings.whatIf("default", {
      policy: { template: "sensor" },
      thingGroups: ["north"],
      attributes: { tier: "gold" },
    });

    // Assess
    expect(whatIf.affected).toEqual([
      expect.objectContaining({
        deviceId: "s-1",
        changes: ["thingGroups", "attributes"],
        thing: {
          before: { thingName: "s-1", attributes: {}, thingGroups: [] },
          after: { thingName: "s-1", attributes: { tier: "gold" }, thingGroups: ["north"] },
        },
      }),
    ]);
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

  it("shows the warnings a save would answer: a template naming one thing for every device", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const whatIf = await admin.mappings.whatIf("profile:bulbs", LITERAL_THING);

    // Assess
    expect(whatIf.warnings).toEqual([
      {
        code: "thing-name-mismatch",
        path: "provisioningTemplate.templateBody.Resources.bulb.Properties.ThingName",
        message: expect.stringContaining('names the thing "kitchen-bulb" for every device'),
      },
    ]);
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

describe("mapping what-if: rights through thing groups", () => {
  it("reports a change of group policy (another policy on the group, or another document) and the group joined", async () => {
    // Prepare: a device provisioned with rights through group fleet (the sensor template kept on it)
    const world = makeAdminWorld({
      mappings: [
        {
          selector: "default",
          groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }],
          version: 1,
        },
      ],
      records: [bound("g-1")],
    });
    world.iot.thingGroups.set("fleet", new Set());
    world.iot.thingGroups.set("ops", new Set());
    const admin = new Admin(world.deps);

    // Act
    const same = await admin.mappings.whatIf("default", {
      groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }],
    });
    const other = await admin.mappings.whatIf("default", {
      groupPolicies: [{ group: "fleet", policy: { template: "command-only" } }],
    });
    const moved = await admin.mappings.whatIf("default", {
      groupPolicies: [{ group: "ops", policy: { template: "sensor" } }],
    });

    // Assess
    expect(same.affected).toEqual([]);
    expect(other.affected).toMatchObject([{ deviceId: "g-1", changes: ["groupPolicies"] }]);
    expect(moved.affected).toMatchObject([{ deviceId: "g-1", changes: ["thingGroups", "groupPolicies"] }]);
  });
});
