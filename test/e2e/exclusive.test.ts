import { AttachThingPrincipalCommand, ListPrincipalThingsV2Command } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectOnce,
  type DeviceIdentity,
  publishAcknowledged,
  subscribeGranted,
} from "../../cli/device-client.ts";
import { startTestStack } from "../support/local-stack.ts";

/**
 * Certificates attached to their thing exclusively, with real devices over MQTT/TLS against the
 * local stack: the gateway template's child client ids work, a client id naming another device's
 * thing gets none of its rights, and a certificate attached to another thing never gets in.
 */
let t: Awaited<ReturnType<typeof startTestStack>>;
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await startTestStack({ logLevel: "SILENT" });
  await t.map({ selector: "default", policy: { template: "sensor" } });
  await t.map({ selector: "profile:gateway", policy: { template: "gateway" } });
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await t.close();
});

/** Connects like firmware until provisioned, or until the certificate is quarantined or revoked. */
const connect = (device: DeviceIdentity & { certificateId: string }) => t.connect(device);

/** The things a certificate is attached to, with the attachment type. */
async function thingsOf(certificateId: string): Promise<string[]> {
  const principal = `arn:aws:iot:us-east-1:123456789012:cert/${certificateId}`;
  const out = await t.stack.clients.iot.send(new ListPrincipalThingsV2Command({ principal }));
  return (out.principalThingObjects ?? []).map((o) => `${o.thingName}:${o.thingPrincipalType}`);
}

describe("certificates attached to their thing exclusively (MQTT over TLS)", () => {
  it("a gateway connects with child client ids and uses its own gateways/<thing>/ topics", async () => {
    // Prepare
    await t.allow("e2e-gw", { profile: "gateway" });
    const gateway = await t.device("e2e-gw");

    // Act: the first child connects as soon as the certificate is provisioned; a second child joins
    const child1 = (await connect({ ...gateway, clientId: "e2e-gw-child1" })).client;
    const child2 = (await connect({ ...gateway, clientId: "e2e-gw-child2" })).client;

    // Assess
    expect(await thingsOf(gateway.certificateId)).toEqual(["e2e-gw:EXCLUSIVE_THING"]);
    if (!child1 || !child2) throw new Error("a child of the gateway could not connect");
    const received: string[] = [];
    child1.on("message", (topic, payload) => received.push(`${topic} ${payload}`));
    expect(await subscribeGranted(child1, "gateways/e2e-gw/child1/commands")).toBe(true);
    expect(await subscribeGranted(child1, "gateways/e2e-other/child1/commands")).toBe(false);
    expect(await publishAcknowledged(child2, "gateways/e2e-gw/child1/commands", "on")).toBe(true);
    expect(await publishAcknowledged(child1, "gateways/e2e-gw/child1/telemetry", "{}")).toBe(true);
    await expect.poll(() => received).toEqual(["gateways/e2e-gw/child1/commands on"]);
  });

  it("a client id naming another device's thing gets none of that device's rights", async () => {
    // Prepare: a victim sensor and an attacker provisioned with the gateway template
    await t.allow("e2e-victim-1");
    await t.allow("e2e-attacker-1", { profile: "gateway" });
    const victim = (await connect(await t.device("e2e-victim-1"))).client;
    const attackerDevice = await t.device("e2e-attacker-1");
    const attacker = (await connect(attackerDevice)).client;
    if (!victim || !attacker) throw new Error("the victim or the attacker could not connect");

    // Act
    const asVictim = await connectOnce({ ...attackerDevice, clientId: "e2e-victim-1" }, t.endpoint);
    const asVictimChild = await connectOnce({ ...attackerDevice, clientId: "e2e-victim-1-x" }, t.endpoint);

    // Assess: refused, the victim stays connected, and the attacker's own connection reaches nothing of the victim's
    expect(asVictim.client).toBeUndefined();
    expect(asVictimChild.client).toBeUndefined();
    expect(victim.connected).toBe(true);
    expect(await subscribeGranted(attacker, "devices/e2e-victim-1/commands")).toBe(false);
    expect(await subscribeGranted(attacker, "gateways/e2e-victim-1/x")).toBe(false);
    expect(await publishAcknowledged(attacker, "devices/e2e-victim-1/telemetry", "{}")).toBe(false);
  });

  it("a gateway child id equal to another device's id takes over its connection, and none of its rights", async () => {
    // Prepare: the documented caveat of child client ids sharing the namespace of device ids
    await t.allow("e2e-plant", { profile: "gateway" });
    await t.allow("e2e-plant-7");
    const device = (await connect(await t.device("e2e-plant-7"))).client;
    if (!device) throw new Error("the device could not connect");
    const gone = new Promise<void>((resolve) => device.once("close", () => resolve()));

    // Act
    const child = (await connect({ ...(await t.device("e2e-plant")), clientId: "e2e-plant-7" })).client;

    // Assess
    await gone;
    expect(device.connected).toBe(false);
    if (!child) throw new Error("the gateway's child could not connect");
    expect(await subscribeGranted(child, "devices/e2e-plant-7/commands")).toBe(false);
    expect(await publishAcknowledged(child, "devices/e2e-plant-7/telemetry", "{}")).toBe(false);
  });

  it("a certificate already attached to another thing is never attached to its own nor activated", async () => {
    // Prepare: a provisioned device, and a registered certificate for another device attached to its thing
    await t.allow("e2e-victim-2");
    await t.allow("e2e-squatter");
    expect((await connect(await t.device("e2e-victim-2"))).client?.connected).toBe(true);
    const squatter = await t.device("e2e-squatter");
    await t.stack.aws.iot.autoRegisterCertificate(squatter.certificatePem, t.caId);
    await t.stack.clients.iot.send(
      new AttachThingPrincipalCommand({
        thingName: "e2e-victim-2",
        principal: `arn:aws:iot:us-east-1:123456789012:cert/${squatter.certificateId}`,
      }),
    );

    // Act: it connects; the gateway publishes its registered event and provisioning runs (and retries)
    const first = await connectOnce(squatter, t.endpoint);
    await t.stack.rulePath.idle();
    const again = await connectOnce(squatter, t.endpoint);

    // Assess: failed closed, every retry alike, until the event was dead-lettered
    expect(first.client).toBeUndefined();
    expect(again.client).toBeUndefined();
    expect(t.status(squatter.certificateId)).toBe("PENDING_ACTIVATION");
    expect(await thingsOf(squatter.certificateId)).toEqual(["e2e-victim-2:NON_EXCLUSIVE_THING"]);
    expect(t.stack.aws.iot.describeThingByName("e2e-squatter")).toBeUndefined();
    expect(t.stack.rulePath.deadLetters.some((m) => m.body.includes(squatter.certificateId))).toBe(true);
    const history = await fetch(`${t.stack.endpoints.adminApi}/devices/e2e-squatter/history`, {
      headers: { authorization: `Bearer ${t.stack.adminToken}` },
    });
    const body = JSON.stringify(await history.json());
    expect(body).toMatch(/"kind":"failed"/);
    expect(body).toMatch(/attached to thing e2e-victim-2/);
  });

  it("a thing still holds several certificates of its own device (rotation allow-multiple)", async () => {
    // Prepare
    await t.allow("e2e-multi", { rotation: "allow-multiple" });
    const firstDevice = await t.device("e2e-multi");
    const secondDevice = await t.device("e2e-multi");

    // Act: each connects in turn (the second takes over the client id, as on AWS IoT)
    const first = (await connect(firstDevice)).client?.connected;
    const second = (await connect(secondDevice)).client?.connected;

    // Assess
    expect(first).toBe(true);
    expect(second).toBe(true);
    expect(await thingsOf(firstDevice.certificateId)).toEqual(["e2e-multi:EXCLUSIVE_THING"]);
    expect(await thingsOf(secondDevice.certificateId)).toEqual(["e2e-multi:EXCLUSIVE_THING"]);
  });
});
