import { UpdateCertificateCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceIdentity, publishAcknowledged, subscribeGranted } from "../../cli/device-client.ts";
import { certificateIdOf, issueCertificate, type SubjectFields } from "../../pki/certificates.ts";
import { startTestStack } from "../support/local-stack.ts";

/*
 * One device, one identity, end to end: real devices over MQTT/TLS against `jitr local`'s stack. A
 * certificate of one device never gets another device's thing, and a suspended certificate keeps its
 * device from every other certificate.
 */

let t: Awaited<ReturnType<typeof startTestStack>>;
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await t.close();
});

/** A device certificate from the fleet CA with the subject given, connecting with the client id given. */
async function device(
  subject: SubjectFields,
  clientId: string,
): Promise<DeviceIdentity & { certificateId: string }> {
  const issued = await issueCertificate(t.ca, { subject });
  return {
    clientId,
    certificatePem: issued.certificatePem,
    privateKeyPem: issued.privateKeyPem,
    certificateId: certificateIdOf(issued.certificatePem),
  };
}

/** Connects like firmware until provisioned, or until the certificate is quarantined or revoked. */
const connect = (device: DeviceIdentity & { certificateId: string }) => t.connect(device);

/** Calls the admin API with the local bearer token. */
const admin = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  t.admin(method, path, body, headers);

/** A mapping whose provisioning template names the thing after a certificate parameter. */
const bySerialMapping = (thingNameFrom: string) => ({
  policy: { template: "sensor" },
  provisioningTemplate: {
    templateBody: {
      Parameters: { [thingNameFrom]: { Type: "String" } },
      Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: thingNameFrom } } } },
    },
  },
});

describe("a template cannot give one device's certificate another device's thing", () => {
  it("victim and attacker certificates sharing serialNumber SN-X: neither gets thing SN-X; fixed and approved, each gets its own", async () => {
    // Prepare: the mapping names the thing after the serialNumber (saved with a warning); both allowlisted
    const saved = await admin(
      "PUT",
      "/mappings/profile:bySerial",
      bySerialMapping("AWS::IoT::Certificate::SerialNumber"),
      { "if-none-match": "*" },
    );
    await t.allow("victim-1", { profile: "bySerial" });
    await t.allow("attacker-1", { profile: "bySerial" });
    const victim = await device({ CN: "victim-1", serialNumber: "SN-X" }, "SN-X");
    const attacker = await device({ CN: "attacker-1", serialNumber: "SN-X" }, "SN-X");

    // Act: the victim connects first, then the attacker
    const victimRun = await connect(victim);
    const attackerRun = await connect(attacker);

    // Assess: both quarantined, no thing SN-X
    expect(saved.status).toBe(201);
    expect(saved.json?.warnings).toEqual([expect.objectContaining({ code: "thing-name-mismatch" })]);
    expect(victimRun.stopReason).toBe("INACTIVE");
    expect(attackerRun.stopReason).toBe("INACTIVE");
    expect(attackerRun.client).toBeUndefined();
    expect(t.stack.aws.iot.describeThingByName("SN-X")).toBeUndefined();
    // The certificate leaves PENDING_ACTIVATION before the outcome reaches the ledger: wait for the entry.
    await expect
      .poll(async () => (await admin("GET", "/devices/attacker-1/history")).json?.items, { timeout: 10_000 })
      .toEqual([expect.objectContaining({ reason: "thing-name-mismatch" })]);

    // Act: the admin names the thing after the CN (the device id) and approves both
    const fixed = await admin(
      "PUT",
      "/mappings/profile:bySerial",
      bySerialMapping("AWS::IoT::Certificate::CommonName"),
      {
        "if-match": '"1"',
      },
    );
    const approvals = [
      await admin("POST", "/devices/victim-1/approve"),
      await admin("POST", "/devices/attacker-1/approve"),
    ];
    const victimIn = (await connect({ ...victim, clientId: "victim-1" })).client;
    const attackerIn = (await connect({ ...attacker, clientId: "attacker-1" })).client;

    // Assess: each on its own thing, with its own rights only
    expect(fixed.status).toBe(200);
    expect(fixed.json).not.toHaveProperty("warnings");
    expect(approvals.map((a) => a.json?.thingName)).toEqual(["victim-1", "attacker-1"]);
    expect(victimIn?.connected).toBe(true);
    expect(attackerIn?.connected).toBe(true);
    expect(await subscribeGranted(victimIn as MqttClient, "devices/victim-1/commands")).toBe(true);
    expect(await subscribeGranted(attackerIn as MqttClient, "devices/victim-1/commands")).toBe(false);
    expect(await publishAcknowledged(attackerIn as MqttClient, "devices/victim-1/telemetry", "{}")).toBe(
      false,
    );
  });
});

describe("a suspended (INACTIVE) certificate keeps its device", () => {
  it("a second certificate with CN dev-s is revoked, never ACTIVE, while dev-s's certificate is INACTIVE", async () => {
    // Prepare: dev-s provisioned, then its certificate suspended through the IoT API
    await t.map({ selector: "device:dev-s", policy: { template: "sensor" } });
    await t.allow("dev-s");
    const first = await device({ CN: "dev-s" }, "dev-s");
    expect((await connect(first)).client?.connected).toBe(true);
    await t.stack.clients.iot.send(
      new UpdateCertificateCommand({ certificateId: first.certificateId, newStatus: "INACTIVE" }),
    );
    const second = await device({ CN: "dev-s" }, "dev-s");

    // Act
    const run = await connect(second);

    // Assess
    expect(run.client).toBeUndefined();
    expect(run.stopReason).toBe("REVOKED");
    expect(t.status(second.certificateId)).toBe("REVOKED");
    const record = await admin("GET", "/allowlist/dev-s");
    expect(record.json?.certificateId).toBe(first.certificateId);
  });
});
