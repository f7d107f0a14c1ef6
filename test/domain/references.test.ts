import { describe, expect, it } from "vitest";
import { decide } from "../../domain/decide.ts";
import { provision } from "../../domain/provision.ts";
import { KnownReferences, referenceKey } from "../../domain/references.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { allowed, defaultMapping, makeWorld } from "../support/world.ts";

const arnOf = (id: string) => `arn:aws:iot:us-east-1:123456789012:cert/${id}`;
const mapping = (extra: Partial<PolicyMapping>): PolicyMapping => ({ ...defaultMapping, ...extra });

describe("row 11b: a mapping naming a resource that does not exist (missing-reference)", () => {
  it.each([
    ["a thing type", mapping({ thingType: "no-such-type" }), "thing type no-such-type does not exist"],
    [
      "a thing group",
      mapping({ thingGroups: ["no-such-group"] }),
      "thing group no-such-group does not exist",
    ],
    [
      "an existing policy",
      mapping({ policy: { policyName: "no-such-policy" } }),
      "policy no-such-policy does not exist",
    ],
  ] as const)(
    "quarantines on the first attempt when the mapping names %s that does not exist; nothing created, one ledger entry",
    async (_name, missing, detail) => {
      // Prepare
      const world = makeWorld({ records: [allowed("dev-1")], mappings: [missing] });
      const { event } = await world.register("dev-1");

      // Act
      const result = await provision(event, world.deps);
      const redelivered = await provision(event, world.deps);

      // Assess
      expect(result).toMatchObject({
        outcome: "denied",
        reason: "missing-reference",
        certificateStatus: "INACTIVE",
      });
      expect(result.outcome === "denied" && result.detail).toContain(detail);
      expect(redelivered.outcome).toBe("skipped");
      expect(world.iot.statusOf(event.certificateId)).toBe("INACTIVE");
      expect(world.iot.things.size).toBe(0);
      expect(world.iot.policyTargets.size).toBe(0);
      expect(await world.allowlist.get("dev-1")).not.toHaveProperty("certificateId");
      expect(world.ledger.entries).toEqual([
        expect.objectContaining({ kind: "denied", reason: "missing-reference", deviceId: "dev-1" }),
      ]);
    },
  );

  it("quarantines a thing type that is deprecated (no new thing may use it)", async () => {
    // Prepare
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [mapping({ thingType: "old" })] });
    world.iot.thingTypes.set("old", { deprecated: true });
    const { event } = await world.register("dev-1");

    // Act
    const result = await provision(event, world.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "denied", reason: "missing-reference" });
    expect(result.outcome === "denied" && result.detail).toContain("thing type old is deprecated");
  });

  it("checks the references a provisioning template names (its PolicyName and ThingGroups)", async () => {
    // Prepare
    const templateBody = {
      Parameters: {
        "AWS::IoT::Certificate::CommonName": { Type: "String" },
        "AWS::IoT::Certificate::Id": { Type: "String" },
      },
      Resources: {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: { ThingName: { Ref: "AWS::IoT::Certificate::CommonName" }, ThingGroups: ["plant-7"] },
        },
        certificate: {
          Type: "AWS::IoT::Certificate",
          Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "ACTIVE" },
        },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "fleet-policy" } },
      },
    };
    const world = makeWorld({
      records: [allowed("dev-1")],
      mappings: [{ selector: "default", provisioningTemplate: { templateBody }, version: 1 }],
    });
    world.iot.thingGroups.set("plant-7", new Set());
    const { event } = await world.register("dev-1");

    // Act
    const result = await provision(event, world.deps);

    // Assess
    expect(result.outcome === "denied" && result.detail).toBe(
      "mapping default: policy fleet-policy does not exist",
    );
    expect(result).toMatchObject({ outcome: "denied", reason: "missing-reference" });
  });

  it("provisions once the resource exists: approve of the quarantined certificate succeeds (no stale answer kept)", async () => {
    // Prepare
    const known = new KnownReferences(makeWorld().clock);
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [mapping({ thingType: "sensors" })] });
    const deps = { ...world.deps, knownReferences: known };
    const { event } = await world.register("dev-1");
    await provision(event, deps);
    world.iot.thingTypes.set("sensors", { deprecated: false });

    // Act
    const approved = await provision(event, deps, { from: "INACTIVE", actor: "admin" });

    // Assess
    expect(approved).toMatchObject({ outcome: "provisioned", deviceId: "dev-1" });
    expect(world.iot.things.get("dev-1")?.thingTypeName).toBe("sensors");
  });

  it("a warm instance reads a reference once: the next device's decision and execution skip the Describe calls", async () => {
    // Prepare
    const world = makeWorld({
      records: [allowed("dev-1"), allowed("dev-2")],
      mappings: [mapping({ thingType: "sensors", thingGroups: ["plant"] })],
    });
    world.iot.thingTypes.set("sensors", { deprecated: false });
    world.iot.thingGroups.set("plant", new Set());
    const deps = { ...world.deps, knownReferences: new KnownReferences(world.clock) };
    const first = await world.register("dev-1");
    const second = await world.register("dev-2");
    await provision(first.event, deps);
    const callsBefore = world.iot.calls.length;

    // Act
    const result = await provision(second.event, deps);

    // Assess
    expect(result.outcome).toBe("provisioned");
    const describes = world.iot.calls
      .slice(callsBefore)
      .filter((c) => c.method === "describeThingType" || c.method === "describeThingGroup");
    expect(describes).toEqual([]);
    expect(world.iot.thingPrincipals.get("dev-2")?.has(arnOf(second.event.certificateId))).toBe(true);
  });

  it("decide is pure: the row applies to the facts it is given, and to none when none were read", async () => {
    // Prepare
    const world = makeWorld({ records: [allowed("dev-1")], mappings: [mapping({ thingType: "t" })] });
    const { event } = await world.register("dev-1");
    const record = await world.allowlist.get("dev-1");
    const certificate = (await import("../../domain/certificate.ts")).readCertificate(
      world.iot.certificates.get(event.certificateId)?.certificatePem ?? "",
    );
    const input = {
      event,
      certificate,
      deviceId: "dev-1",
      record,
      boundCertificate: undefined,
      lot: undefined,
      mappings: [mapping({ thingType: "t" })],
      now: world.clock.now(),
      settings: world.deps.settings,
    };

    // Act
    const unread = decide(input);
    const missing = decide({
      ...input,
      references: new Map([[referenceKey({ kind: "thingType", name: "t" }), "missing"]]),
    });
    const present = decide({
      ...input,
      references: new Map([[referenceKey({ kind: "thingType", name: "t" }), "exists"]]),
    });

    // Assess
    expect(unread.outcome).toBe("allow");
    expect(missing).toMatchObject({
      outcome: "deny",
      reason: "missing-reference",
      certificateStatus: "INACTIVE",
    });
    expect(present.outcome).toBe("allow");
  });
});
