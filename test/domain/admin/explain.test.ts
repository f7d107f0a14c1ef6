/** Explain over in-memory stores: the decision for a device or a certificate, changing nothing. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { provision } from "../../../domain/provision.ts";
import { certificateIdOf, issueCertificate } from "../../../pki/certificates.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { groupArn } from "../../support/fakes.ts";
import { CA_ID, eventFor, testCa } from "../../support/world.ts";

/** Registry calls that change something. */
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

async function register(world: ReturnType<typeof makeAdminWorld>, deviceId: string) {
  const issued = await issueCertificate(await testCa(), { subject: { CN: deviceId } });
  const certificateId = certificateIdOf(issued.certificatePem);
  world.iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
  return { certificateId, pem: issued.certificatePem, event: eventFor(certificateId) };
}

describe("explain", () => {
  it("explains an allowlisted device with no certificate yet: mapping, rendered policy, thing; nothing written", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [
        {
          deviceId: "dev-1",
          status: "allowed",
          version: 1,
          attributes: { site: "north" },
          thingGroups: ["fleet"],
        },
      ],
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
    });
    world.iot.thingGroups.set("fleet", new Set());
    const admin = new Admin(world.deps);

    // Act
    const explained = await admin.devices.explain({ deviceId: "dev-1" });

    // Assess
    expect(explained).toMatchObject({
      deviceId: "dev-1",
      decision: "allow",
      certificateStatus: "ACTIVE",
      certificate: { source: "hypothetical" },
      mapping: { selector: "default" },
      policy: { policyName: "jitr-sensor", document: expect.stringContaining("iot:Connect") },
      thing: { thingName: "dev-1", thingGroups: ["fleet"], attributes: { site: "north" } },
      assumptions: expect.arrayContaining([expect.stringContaining("no certificate given")]),
    });
    expect(world.ledger.entries).toEqual([]);
    expect(world.iot.methods().filter((m) => WRITES.has(m))).toEqual([]);
  });

  it("explains a certificate whose template would name another device's thing as thing-name-mismatch", async () => {
    // Prepare: the thing name comes from the serialNumber, the device id from the CN
    const world = makeAdminWorld({
      records: [{ deviceId: "attacker-1", status: "allowed", profile: "bySerial", version: 1 }],
      mappings: [
        {
          selector: "profile:bySerial",
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
          version: 1,
        },
      ],
    });
    const admin = new Admin(world.deps);
    const issued = await issueCertificate(await testCa(), {
      subject: { CN: "attacker-1", serialNumber: "SN-X" },
    });

    // Act
    const explained = await admin.devices.explain({ certificatePem: issued.certificatePem });

    // Assess
    expect(explained).toMatchObject({
      deviceId: "attacker-1",
      decision: "deny",
      reason: "thing-name-mismatch",
      certificateStatus: "INACTIVE",
      detail: expect.stringContaining('"SN-X"'),
      mapping: { selector: "profile:bySerial" },
    });
    expect(explained.thing).toBeUndefined();
    expect(world.iot.methods().filter((m) => WRITES.has(m))).toEqual([]);
  });

  it("explains a device that is not allowlisted as a quarantine", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const explained = await admin.devices.explain({ deviceId: "stranger" });

    // Assess
    expect(explained).toMatchObject({
      decision: "deny",
      reason: "not-allowlisted",
      certificateStatus: "INACTIVE",
    });
  });

  it("explains a certificate PEM, and a provisioned device by the certificate it is bound to", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [
        { deviceId: "dev-2", status: "blocked", version: 1 },
        { deviceId: "dev-3", status: "allowed", version: 1 },
      ],
      mappings: [{ selector: "default", policy: { template: "sensor" }, version: 1 }],
    });
    const admin = new Admin(world.deps);
    const blocked = await register(world, "dev-2");
    const good = await register(world, "dev-3");
    await provision(good.event, world.deps);
    const writesBefore = world.iot.methods().filter((m) => WRITES.has(m)).length;

    // Act
    const byPem = await admin.devices.explain({ certificatePem: blocked.pem });
    const byBinding = await admin.devices.explain({ deviceId: "dev-3" });

    // Assess
    expect(byPem).toMatchObject({
      deviceId: "dev-2",
      decision: "deny",
      reason: "blocked",
      certificateStatus: "REVOKED",
      certificate: { source: "pem", certificateId: blocked.certificateId, status: "PENDING_ACTIVATION" },
      caCertificateId: CA_ID,
    });
    expect(byBinding).toMatchObject({
      decision: "allow",
      certificate: { source: "bound", certificateId: good.certificateId, status: "ACTIVE" },
      policy: { policyName: "jitr-sensor" },
    });
    expect(world.iot.methods().filter((m) => WRITES.has(m)).length).toBe(writesBefore);
  });

  it.each([
    [{}, "deviceId", "exactly one of"],
    [{ deviceId: "no spaces" }, "deviceId", "thing name"],
    [{ certificatePem: "hello" }, "certificatePem", "PEM certificate"],
    [
      { certificatePem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" },
      "certificatePem",
      "readable",
    ],
    [{ deviceId: "a", caCertificateId: "x" }, "caCertificateId", "64 lowercase hex"],
    [{ deviceId: "a", extra: 1 }, "extra", "not a known field"],
  ])("refuses %j naming %s", async (body, path, message) => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);

    // Act
    const refused = admin.devices.explain(body);

    // Assess
    await expect(refused).rejects.toMatchObject({
      issues: expect.arrayContaining([{ path, message: expect.stringContaining(message) }]),
    });
  });
});

describe("explain: effective policies", () => {
  it("lists the certificate's policy, the one the mapping keeps on a group, and those found on the thing's groups and their parents, each with its source", async () => {
    // Prepare: dev-1 is in `site-7` (record), whose parent `europe` holds EuropePolicy; the mapping keeps
    // the sensor template's policy on `fleet` and attaches command-only to the certificate
    const world = makeAdminWorld({
      records: [{ deviceId: "dev-1", status: "allowed", version: 1, thingGroups: ["site-7"] }],
      mappings: [
        {
          selector: "default",
          policy: { template: "command-only" },
          groupPolicies: [{ group: "fleet", policy: { template: "sensor" } }],
          version: 1,
        },
      ],
    });
    for (const group of ["fleet", "site-7", "europe"]) world.iot.thingGroups.set(group, new Set());
    world.iot.groupParents.set("site-7", "europe");
    world.iot.policies.set("EuropePolicy", {
      versions: [{ id: "1", document: '{"Version":"2012-10-17","Statement":[]}', createdAt: new Date(0) }],
      defaultId: "1",
    });
    await world.iot.attachPolicy("EuropePolicy", groupArn("europe"));
    const admin = new Admin(world.deps);
    const writesBefore = world.iot.methods().filter((m) => WRITES.has(m)).length;

    // Act
    const explained = await admin.devices.explain({ deviceId: "dev-1" });

    // Assess
    expect(explained.effectivePolicies).toEqual([
      {
        policyName: "jitr-command-only",
        source: "certificate",
        fromMapping: true,
        document: expect.any(String),
      },
      {
        policyName: "jitr-sensor",
        source: "group",
        group: "fleet",
        attachedTo: "fleet",
        fromMapping: true,
        document: expect.stringContaining("iot:Publish"),
      },
      {
        policyName: "EuropePolicy",
        source: "group",
        group: "site-7",
        attachedTo: "europe",
        fromMapping: false,
        document: '{"Version":"2012-10-17","Statement":[]}',
      },
    ]);
    expect(world.iot.methods().filter((m) => WRITES.has(m))).toHaveLength(writesBefore);
  });
});
