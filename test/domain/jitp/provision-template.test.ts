import { describe, expect, it } from "vitest";
import { decide } from "../../../domain/decide.ts";
import { JitrError, ProvisioningError } from "../../../domain/errors.ts";
import { provision } from "../../../domain/provision.ts";
import type { PolicyMapping } from "../../../domain/types.ts";
import { allowed, eventFor, makeWorld } from "../../support/world.ts";
import { awsJitpTemplateBody, deviceContext, fixture } from "./fixtures.ts";

const arnOf = (id: string) => `arn:aws:iot:us-east-1:123456789012:cert/${id}`;
const templateMapping = (
  templateBody: string | Record<string, unknown>,
  extra: Partial<PolicyMapping> = {},
): PolicyMapping => ({ selector: "default", provisioningTemplate: { templateBody }, version: 1, ...extra });

/** A world whose IoT registry has the thing types and groups the templates name. */
function world(seed: Parameters<typeof makeWorld>[0]) {
  const w = makeWorld(seed);
  for (const type of ["lightBulb-versionA", "sensor-DE"]) w.iot.thingTypes.set(type, { deprecated: false });
  for (const group of ["v1-lightbulbs", "Seattle", "US", "eu-devices", "fleet", "g-record"])
    w.iot.thingGroups.set(group, new Set());
  return w;
}

describe("provision with a provisioning template", () => {
  it("the lightbulb template: thing, type, groups and attributes from the template, the policy from the mapping", async () => {
    // Prepare
    const w = world({
      records: [allowed("bulb-1", { attributes: { SerialNumber: "SN-1", Location: "Seattle" } })],
      mappings: [templateMapping(fixture("lightbulb-template.json"), { policy: { template: "sensor" } })],
    });
    const { event } = await w.register("bulb-1");

    // Act
    const result = await provision(event, w.deps);

    // Assess
    expect(result).toMatchObject({ outcome: "provisioned", thingName: "bulb-1", policyName: "jitr-sensor" });
    expect(w.iot.things.get("bulb-1")).toEqual({
      thingName: "bulb-1",
      thingTypeName: "lightBulb-versionA",
      attributes: { version: "v1", serialNumber: "SN-1" },
    });
    expect(w.iot.thingGroups.get("v1-lightbulbs")?.has("bulb-1")).toBe(true);
    expect(w.iot.thingGroups.get("Seattle")?.has("bulb-1")).toBe(true);
    expect(w.iot.statusOf(event.certificateId)).toBe("ACTIVE");
    expect(w.iot.methods().at(-1)).toBe("updateCertificateStatus");
  });

  it("AWS's JITP template: parameters from the certificate, one shared policy from its PolicyDocument", async () => {
    const w = world({
      records: [allowed("lamp-1"), allowed("lamp-2")],
      mappings: [templateMapping(awsJitpTemplateBody())],
    });
    const one = await w.register({ subject: { CN: "lamp-1", serialNumber: "S1", C: "US" } });
    const two = await w.register({ subject: { CN: "lamp-2", serialNumber: "S2", C: "US" } });

    const results = [await provision(one.event, w.deps), await provision(two.event, w.deps)];

    expect(results.map((r) => r.outcome === "provisioned" && r.policyName)).toEqual([
      "jitr-default-policy",
      "jitr-default-policy",
    ]);
    expect(w.iot.things.get("lamp-2")).toEqual({
      thingName: "lamp-2",
      thingTypeName: "lightBulb-versionA",
      attributes: { version: "v1", serialNumber: "S2" },
    });
    expect([...(w.iot.thingGroups.get("US") ?? [])]).toEqual(["lamp-1", "lamp-2"]);
    const policy = await w.iot.getPolicy("jitr-default-policy");
    expect(JSON.parse(policy?.document ?? "")).toMatchObject({ Statement: [{ Action: ["iot:Publish"] }] });
    expect([...(w.iot.policyTargets.get("jitr-default-policy") ?? [])]).toEqual([
      arnOf(one.event.certificateId),
      arnOf(two.event.certificateId),
    ]);
  });

  it("the factory template: a thing named after the device id (its CN), and a per-device policy", async () => {
    const w = world({
      records: [allowed("sensor-42", { attributes: { Site: "hall-7" }, thingGroups: ["g-record"] })],
      mappings: [templateMapping(fixture("factory-template.json"))],
    });
    const { event } = await w.register({ subject: { CN: "sensor-42", O: "acme", C: "DE" } });

    const result = await provision(event, w.deps);

    expect(result).toMatchObject({
      outcome: "provisioned",
      deviceId: "sensor-42",
      thingName: "sensor-42",
      policyName: "jitr-default-euPolicy@sensor-42",
    });
    expect(w.iot.thingPrincipals.get("sensor-42")?.has(arnOf(event.certificateId))).toBe(true);
    expect(w.iot.thingGroups.get("g-record")?.has("sensor-42")).toBe(true);
    const policy = await w.iot.getPolicy("jitr-default-euPolicy@sensor-42");
    expect(policy?.document).toContain("topic/sites/hall-7/sensor-42/*");
    expect(policy?.document).toContain("${iot:Connection.Thing.ThingName}");
    expect(await w.allowlist.get("sensor-42")).toMatchObject({
      certificateId: event.certificateId,
      thingName: "sensor-42",
      policyName: "jitr-default-euPolicy@sensor-42",
    });
    expect(w.ledger.entries).toEqual([
      expect.objectContaining({ kind: "provisioned", deviceId: "sensor-42", thingName: "sensor-42" }),
    ]);
  });

  it("denies template-parameter-invalid (INACTIVE) when a parameter has no value, and leaves nothing behind", async () => {
    // Prepare: the factory template needs Site, which this record does not give
    const w = world({
      records: [allowed("sensor-43")],
      mappings: [templateMapping(fixture("factory-template.json"))],
    });
    const { event } = await w.register({ subject: { CN: "sensor-43", O: "acme", C: "DE" } });

    // Act
    const result = await provision(event, w.deps);

    // Assess
    expect(result).toMatchObject({
      outcome: "denied",
      reason: "template-parameter-invalid",
      certificateStatus: "INACTIVE",
      detail: expect.stringMatching(/parameter Site has no value/),
    });
    expect(w.iot.statusOf(event.certificateId)).toBe("INACTIVE");
    expect(new Set(w.iot.methods())).toEqual(new Set(["describeCertificate", "updateCertificateStatus"]));
    expect(w.iot.things.size).toBe(0);
    expect(w.iot.policies.size).toBe(0);
    expect((await w.allowlist.get("sensor-43"))?.certificateId).toBeUndefined();
    expect(w.ledger.entries).toEqual([
      expect.objectContaining({
        kind: "denied",
        reason: "template-parameter-invalid",
        certificateStatus: "INACTIVE",
        error: expect.stringMatching(/Site/),
      }),
    ]);
  });

  it("denies template-parameter-invalid when a certificate value fails its AllowedPattern, naming the parameter", async () => {
    const w = world({
      records: [allowed("Sensor_44", { attributes: { Site: "s1" } })],
      mappings: [templateMapping(fixture("factory-template.json"))],
    });
    const { event } = await w.register({ subject: { CN: "Sensor_44", O: "acme", C: "DE" } });
    const result = await provision(event, w.deps);
    expect(result).toMatchObject({
      outcome: "denied",
      reason: "template-parameter-invalid",
      detail: expect.stringMatching(/parameter AWS::IoT::Certificate::CommonName .*AllowedPattern/),
    });
    expect(w.iot.things.size + w.iot.policies.size).toBe(0);
  });

  it("denies (quarantines) a device whose template sets the certificate's Status to INACTIVE", async () => {
    const body = {
      Resources: {
        thing: { Type: "AWS::IoT::Thing", Properties: {} },
        certificate: { Type: "AWS::IoT::Certificate", Properties: { Status: "INACTIVE" } },
        policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: "existing" } },
      },
    };
    const w = world({ records: [allowed("dev-1")], mappings: [templateMapping(body)] });
    const { event } = await w.register("dev-1");
    const result = await provision(event, w.deps);
    expect(result).toMatchObject({
      outcome: "denied",
      reason: "template-parameter-invalid",
      certificateStatus: "INACTIVE",
      detail: expect.stringMatching(/Status to INACTIVE/),
    });
    expect(w.iot.things.size).toBe(0);
  });

  it("a permanent failure while executing the template's plan is undone: no thing, no per-device policy, not ACTIVE", async () => {
    const w = world({
      records: [allowed("sensor-45", { attributes: { Site: "s1" } })],
      mappings: [templateMapping(fixture("factory-template.json"))],
    });
    w.iot.failOn("attachThingPrincipal", () => new JitrError("AccessDenied"));
    const { event } = await w.register({ subject: { CN: "sensor-45", O: "acme", C: "DE" } });

    await expect(provision(event, w.deps)).rejects.toBeInstanceOf(ProvisioningError);

    expect(w.iot.statusOf(event.certificateId)).toBe("PENDING_ACTIVATION");
    expect(w.iot.things.size).toBe(0);
    expect(w.iot.policies.size).toBe(0);
    expect((await w.allowlist.get("sensor-45"))?.certificateId).toBeUndefined();
    expect(w.ledger.entries).toEqual([expect.objectContaining({ kind: "failed", deviceId: "sensor-45" })]);
  });
});

describe("decide with a provisioning template", () => {
  const settings = { region: "eu-west-1", accountId: "111122223333", policyPrefix: "jitr-" };
  const decideFor = async (mapping: PolicyMapping, record = allowed("dev-1")) => {
    const context = await deviceContext({ CN: "dev-1", C: "US", serialNumber: "S1" });
    return decide({
      event: eventFor(context.certificateId),
      certificate: context.certificate,
      deviceId: "dev-1",
      record,
      boundCertificate: undefined,
      lot: undefined,
      mappings: [mapping],
      now: new Date(),
      settings,
    });
  };

  it("carries the evaluated template in the Allow, for record and explain", async () => {
    const decision = await decideFor(templateMapping(awsJitpTemplateBody()));
    if (decision.outcome !== "allow") throw new Error(`expected allow, got ${decision.detail}`);
    expect(decision.template?.parameters).toMatchObject({ "AWS::IoT::Certificate::CommonName": "dev-1" });
    expect(Object.keys(decision.template?.resources ?? {})).toEqual(["thing", "certificate", "policy"]);
    expect(decision.policy).toMatchObject({ policyName: "jitr-default-policy", perDevice: false });
  });

  it("what the template leaves out keeps the mapping's and record's values; groups add up", async () => {
    const body = {
      Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingGroups: ["g-template"] } } },
    };
    const mapping = templateMapping(body, {
      policy: { policyName: "existing" },
      thingType: "Sensor",
      thingGroups: ["g-mapping"],
      attributes: { tier: "gold" },
    });
    const decision = await decideFor(mapping, allowed("dev-1", { thingGroups: ["g-record"] }));
    expect(decision).toMatchObject({
      outcome: "allow",
      thing: {
        thingName: "dev-1",
        thingTypeName: "Sensor",
        attributes: { tier: "gold" },
        thingGroups: ["g-template", "g-mapping", "g-record"],
      },
      policy: { policyName: "existing", document: undefined },
    });
  });

  it("a template with no policy, on a mapping that names none, does not resolve: no-policy", async () => {
    const body = { Resources: { thing: { Type: "AWS::IoT::Thing", Properties: {} } } };
    expect(await decideFor(templateMapping(body))).toMatchObject({
      outcome: "deny",
      reason: "no-policy",
      certificateStatus: "INACTIVE",
    });
  });

  it("a template policy document AWS would refuse (over 2,048 characters) denies template-parameter-invalid", async () => {
    const statement = {
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: { "Fn::Sub": `topic/\${Name}/${"x".repeat(90)}` },
    };
    const body = {
      Parameters: { Name: { Type: "String", Default: "n" } },
      Resources: {
        policy: {
          Type: "AWS::IoT::Policy",
          Properties: { PolicyDocument: { Version: "2012-10-17", Statement: Array(25).fill(statement) } },
        },
      },
    };
    expect(await decideFor(templateMapping(body))).toMatchObject({
      outcome: "deny",
      reason: "template-parameter-invalid",
      detail: expect.stringMatching(/PolicyDocument: policy document is \d+ characters/),
    });
  });
});
