import { describe, expect, it } from "vitest";
import { provision } from "../../domain/provision.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { allowed, makeWorld } from "../support/world.ts";

/*
 * One device, one identity: a certificate of one device never gets another device's thing, nor keeps a
 * device from its suspended certificate. Each case is a takeover path, reproduced with in-memory ports.
 */

const arnOf = (id: string) => `arn:aws:iot:us-east-1:123456789012:cert/${id}`;

/** A JITP template naming the thing after the certificate's serialNumber, with a thing-scoped policy. */
const bySerial = (thingNameFrom: string): PolicyMapping => ({
  selector: "profile:bySerial",
  version: 1,
  provisioningTemplate: {
    templateBody: {
      Parameters: {
        [thingNameFrom]: { Type: "String" },
        "AWS::IoT::Certificate::CommonName": { Type: "String" },
      },
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: {
            ThingName: { Ref: thingNameFrom },
            AttributePayload: { owner: { Ref: "AWS::IoT::Certificate::CommonName" } },
          },
        },
        policy: {
          Type: "AWS::IoT::Policy",
          Properties: {
            PolicyDocument: {
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["iot:Connect", "iot:Subscribe", "iot:Receive", "iot:Publish"],
                  Resource: "arn:aws:iot:*:*:*/${iot:Connection.Thing.ThingName}*",
                },
              ],
            },
          },
        },
      },
    },
  },
});

describe("a template cannot attach one device's certificate to another device's thing", () => {
  it("victim and attacker share a serialNumber: neither certificate is attached to a thing named after it", async () => {
    // Prepare: both allowlisted with the profile; the thing name comes from the serialNumber (device id: CN)
    const w = makeWorld({
      records: [allowed("victim-1", { profile: "bySerial" }), allowed("attacker-1", { profile: "bySerial" })],
      mappings: [bySerial("AWS::IoT::Certificate::SerialNumber")],
    });
    const victim = await w.register({ subject: { CN: "victim-1", serialNumber: "SN-X" } });
    const attacker = await w.register({ subject: { CN: "attacker-1", serialNumber: "SN-X" } });

    // Act
    const results = [await provision(victim.event, w.deps), await provision(attacker.event, w.deps)];

    // Assess: both quarantined with the new reason; no thing SN-X, nothing ACTIVE, nothing attached
    expect(results).toEqual([
      expect.objectContaining({
        outcome: "denied",
        reason: "thing-name-mismatch",
        certificateStatus: "INACTIVE",
      }),
      expect.objectContaining({
        outcome: "denied",
        reason: "thing-name-mismatch",
        certificateStatus: "INACTIVE",
      }),
    ]);
    expect(w.iot.statusOf(victim.event.certificateId)).toBe("INACTIVE");
    expect(w.iot.statusOf(attacker.event.certificateId)).toBe("INACTIVE");
    expect(w.iot.things.size).toBe(0);
    expect(w.iot.thingPrincipals.size).toBe(0);
    expect((await w.allowlist.get("victim-1"))?.certificateId).toBeUndefined();
  });

  it("once the mapping names the thing after the device id, approving gives each device its own thing", async () => {
    // Prepare: both quarantined by the serialNumber template, then the admin fixes the mapping
    const w = makeWorld({
      records: [allowed("victim-1", { profile: "bySerial" }), allowed("attacker-1", { profile: "bySerial" })],
      mappings: [bySerial("AWS::IoT::Certificate::SerialNumber")],
    });
    const victim = await w.register({ subject: { CN: "victim-1", serialNumber: "SN-X" } });
    const attacker = await w.register({ subject: { CN: "attacker-1", serialNumber: "SN-X" } });
    await provision(victim.event, w.deps);
    await provision(attacker.event, w.deps);
    w.mappings.mappings.set("profile:bySerial", {
      ...bySerial("AWS::IoT::Certificate::CommonName"),
      version: 2,
    });

    // Act: approve both
    const approved = [
      await provision(victim.event, w.deps, { from: "INACTIVE" }),
      await provision(attacker.event, w.deps, { from: "INACTIVE" }),
    ];

    // Assess: two things, each holding only its own device's certificate
    expect(approved.map((r) => r.outcome === "provisioned" && r.thingName)).toEqual([
      "victim-1",
      "attacker-1",
    ]);
    expect([...(w.iot.thingPrincipals.get("victim-1") ?? [])]).toEqual([arnOf(victim.event.certificateId)]);
    expect([...(w.iot.thingPrincipals.get("attacker-1") ?? [])]).toEqual([
      arnOf(attacker.event.certificateId),
    ]);
    expect(w.iot.things.get("victim-1")?.attributes).toEqual({ owner: "victim-1" });
  });

  it("AWS's sample (thing name from the CN) works unchanged when the device id is the CN", async () => {
    // Prepare
    const w = makeWorld({
      records: [allowed("lamp-1", { profile: "bySerial" })],
      mappings: [bySerial("AWS::IoT::Certificate::CommonName")],
    });
    const { event } = await w.register({ subject: { CN: "lamp-1", serialNumber: "SN-1" } });

    // Act
    const result = await provision(event, w.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "provisioned", thingName: "lamp-1" });
    expect(w.iot.statusOf(event.certificateId)).toBe("ACTIVE");
  });

  it("AWS's sample (thing name from the CN) is denied when the device id is the serialNumber", async () => {
    // Prepare: device id from the serialNumber; the attacker's CN names the victim's device
    const w = makeWorld({
      records: [allowed("SN-V", { profile: "bySerial" }), allowed("SN-A", { profile: "bySerial" })],
      mappings: [bySerial("AWS::IoT::Certificate::CommonName")],
    });
    w.deps.settings = { ...w.deps.settings, deviceIdStrategy: "serialNumber" };
    const attacker = await w.register({ subject: { CN: "SN-V", serialNumber: "SN-A" } });

    // Act
    const result = await provision(attacker.event, w.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "denied", reason: "thing-name-mismatch", deviceId: "SN-A" });
    expect(w.iot.things.has("SN-V")).toBe(false);
    expect(w.iot.statusOf(attacker.event.certificateId)).toBe("INACTIVE");
  });
});

describe("a suspended (INACTIVE) bound certificate keeps holding its device", () => {
  it("a second certificate for the device is revoked (rotation reject), and the binding stays", async () => {
    // Prepare: dev-s provisioned, then its certificate suspended
    const w = makeWorld({
      records: [allowed("dev-s")],
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
    });
    const first = await w.register("dev-s");
    await provision(first.event, w.deps);
    await w.iot.updateCertificateStatus(first.event.certificateId, "INACTIVE");
    const second = await w.register("dev-s");

    // Act
    const result = await provision(second.event, w.deps);

    // Assess
    expect(result).toMatchObject({
      outcome: "denied",
      reason: "already-provisioned",
      certificateStatus: "REVOKED",
    });
    expect(w.iot.statusOf(second.event.certificateId)).toBe("REVOKED");
    expect((await w.allowlist.get("dev-s"))?.certificateId).toBe(first.event.certificateId);
    expect([...(w.iot.thingPrincipals.get("dev-s") ?? [])]).toEqual([arnOf(first.event.certificateId)]);
  });

  it("approving a quarantined certificate of a device bound to a suspended one does not re-bind it", async () => {
    // Prepare: a certificate quarantined (no mapping yet), then the device provisioned with another
    // certificate, which is then suspended; the admin adds a mapping and approves the quarantined one
    const w = makeWorld({ records: [allowed("dev-s")] });
    const quarantined = await w.register("dev-s");
    expect(await provision(quarantined.event, w.deps)).toMatchObject({ reason: "no-policy" });
    w.mappings.mappings.set("default", { selector: "default", policy: { template: "sensor" }, version: 1 });
    const bound = await w.register("dev-s");
    await provision(bound.event, w.deps);
    await w.iot.updateCertificateStatus(bound.event.certificateId, "INACTIVE");

    // Act
    const approved = await provision(quarantined.event, w.deps, { from: "INACTIVE" });

    // Assess
    expect(approved).toMatchObject({ outcome: "denied", reason: "already-provisioned" });
    expect(w.iot.statusOf(quarantined.event.certificateId)).toBe("REVOKED");
    expect((await w.allowlist.get("dev-s"))?.certificateId).toBe(bound.event.certificateId);
  });

  it("rotation replace provisions the new certificate and revokes the suspended one", async () => {
    // Prepare
    const w = makeWorld({
      records: [allowed("dev-r", { rotation: "replace" })],
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
    });
    const old = await w.register("dev-r");
    await provision(old.event, w.deps);
    await w.iot.updateCertificateStatus(old.event.certificateId, "INACTIVE");
    const next = await w.register("dev-r");

    // Act
    const result = await provision(next.event, w.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "provisioned", replaced: old.event.certificateId });
    expect(w.iot.statusOf(old.event.certificateId)).toBe("REVOKED");
    expect(w.iot.statusOf(next.event.certificateId)).toBe("ACTIVE");
    expect((await w.allowlist.get("dev-r"))?.certificateId).toBe(next.event.certificateId);
  });
});
