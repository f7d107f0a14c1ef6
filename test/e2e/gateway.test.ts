import { UpdateCertificateCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectOnce,
  type DeviceIdentity,
  publishAcknowledged,
  subscribeGranted,
} from "../../cli/device-client.ts";
import { createCa } from "../../pki/certificates.ts";
import { startTestStack } from "../support/local-stack.ts";

let t: Awaited<ReturnType<typeof startTestStack>>;
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await startTestStack();
  await t.map({ selector: "default", policy: { template: "sensor" } });
});
afterAll(async () => {
  for (const c of clients) c.end(true);
  await t.close();
});

/** Connects like firmware until provisioned, or until the certificate is quarantined or revoked. */
const connect = (device: DeviceIdentity & { certificateId: string }) => t.connect(device);

const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once("close", () => resolve()));

describe("device gateway over TLS (mqtt.js)", () => {
  it("drops the first connection of a new certificate, provisions it, then accepts it", async () => {
    // Prepare
    await t.allow("e2e-first");
    const device = await t.device("e2e-first");
    // Act
    const first = await connectOnce(device, t.endpoint);
    // Assess: dropped, and registered PENDING_ACTIVATION by just-in-time registration
    expect(first.client).toBeUndefined();
    expect(["PENDING_ACTIVATION", "ACTIVE"]).toContain(t.status(device.certificateId));
    const retried = await connect(device);
    expect(retried.client?.connected).toBe(true);
    expect(retried.attempts).toBeGreaterThanOrEqual(1);
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    expect(
      await publishAcknowledged(retried.client as MqttClient, "devices/e2e-first/telemetry", '{"t":1}'),
    ).toBe(true);
  });

  it("device A can neither publish to nor subscribe on device B's topics", async () => {
    await t.allow("e2e-a");
    await t.allow("e2e-b");
    const a = (await connect(await t.device("e2e-a"))).client as MqttClient;
    await connect(await t.device("e2e-b"));
    expect(await subscribeGranted(a, "devices/e2e-a/commands")).toBe(true);
    expect(await subscribeGranted(a, "devices/e2e-b/commands")).toBe(false);
    expect(await subscribeGranted(a, "devices/+/commands")).toBe(false);
    // an unauthorized publish closes the connection, as AWS IoT does for MQTT 3.1.1
    expect(await publishAcknowledged(a, "devices/e2e-b/telemetry", "{}")).toBe(false);
    expect(a.connected).toBe(false);
  });

  it("delivers a message only where the policy allows Receive", async () => {
    // an operator may publish commands to any device; a snoop may subscribe widely but receive only its own
    await t.map({
      selector: "device:e2e-operator",
      policy: {
        document: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Connect",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/e2e-operator",
            },
            {
              Effect: "Allow",
              Action: "iot:Publish",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:topic/devices/*/commands",
            },
          ],
        },
      },
    });
    await t.map({
      selector: "device:e2e-snoop",
      policy: {
        document: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Connect",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/e2e-snoop",
            },
            {
              Effect: "Allow",
              Action: "iot:Subscribe",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:topicfilter/devices/*",
            },
            {
              Effect: "Allow",
              Action: "iot:Receive",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:topic/devices/e2e-snoop/*",
            },
          ],
        },
      },
    });
    for (const id of ["e2e-operator", "e2e-snoop", "e2e-target"]) await t.allow(id);
    const operator = (await connect(await t.device("e2e-operator"))).client as MqttClient;
    const snoop = (await connect(await t.device("e2e-snoop"))).client as MqttClient;
    const target = (await connect(await t.device("e2e-target"))).client as MqttClient;
    const received: Record<string, string[]> = { snoop: [], target: [] };
    snoop.on("message", (topic) => received.snoop?.push(topic));
    target.on("message", (topic) => received.target?.push(topic));
    expect(await subscribeGranted(target, "devices/e2e-target/commands")).toBe(true);
    expect(await subscribeGranted(snoop, "devices/#")).toBe(true);
    expect(await publishAcknowledged(operator, "devices/e2e-target/commands", '{"cmd":"reboot"}')).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(received.target).toEqual(["devices/e2e-target/commands"]);
    expect(received.snoop).toEqual([]);
  });

  it("applies policies attached to the thing's groups, parent groups included", async () => {
    // Prepare: the device's own policy only lets it connect; publishing comes from its group's parent
    const { CreatePolicyCommand, CreateThingGroupCommand, AttachPolicyCommand } = await import(
      "@aws-sdk/client-iot"
    );
    const iot = t.stack.clients.iot;
    const arn = (kind: string, name: string) => `arn:aws:iot:us-east-1:123456789012:${kind}/${name}`;
    await iot.send(new CreateThingGroupCommand({ thingGroupName: "e2e-fleet" }));
    await iot.send(new CreateThingGroupCommand({ thingGroupName: "e2e-site", parentGroupName: "e2e-fleet" }));
    const publishOwn = {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: "iot:Publish",
          Resource: arn("topic", "devices/${iot:Connection.Thing.ThingName}/telemetry"),
        },
      ],
    };
    await iot.send(
      new CreatePolicyCommand({
        policyName: "e2e-fleet-publish",
        policyDocument: JSON.stringify(publishOwn),
      }),
    );
    await iot.send(
      new AttachPolicyCommand({ policyName: "e2e-fleet-publish", target: arn("thinggroup", "e2e-fleet") }),
    );
    await t.map({
      selector: "device:e2e-grouped",
      thingGroups: ["e2e-site"],
      policy: {
        document: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Connect",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/e2e-grouped",
            },
          ],
        },
      },
    });
    await t.map({
      selector: "device:e2e-ungrouped",
      policy: {
        document: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Connect",
              Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/e2e-ungrouped",
            },
          ],
        },
      },
    });
    await t.allow("e2e-grouped");
    await t.allow("e2e-ungrouped");
    // Act
    const grouped = (await connect(await t.device("e2e-grouped"))).client as MqttClient;
    const ungrouped = (await connect(await t.device("e2e-ungrouped"))).client as MqttClient;
    // Assess
    expect(await publishAcknowledged(grouped, "devices/e2e-grouped/telemetry", "{}")).toBe(true);
    expect(await publishAcknowledged(ungrouped, "devices/e2e-ungrouped/telemetry", "{}")).toBe(false);
  });

  it("quarantines an unknown device (INACTIVE) and revokes a blocked one", async () => {
    await t.allow("e2e-blocked", { status: "blocked" });
    const unknown = await t.device("e2e-unknown");
    const blocked = await t.device("e2e-blocked");
    const [u, b] = await Promise.all([connect(unknown), connect(blocked)]);
    expect(u.client).toBeUndefined();
    expect(u.stopReason).toBe("INACTIVE");
    expect(b.client).toBeUndefined();
    expect(b.stopReason).toBe("REVOKED");
  });

  it("lets a quarantined device in once an admin adds its record and approves it", async () => {
    // Prepare: an unknown device is quarantined
    const device = await t.device("e2e-late");
    expect((await connect(device)).stopReason).toBe("INACTIVE");
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${t.stack.endpoints.adminApi}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${t.stack.adminToken}`,
          "content-type": "application/json",
          ...init.headers,
        },
      });
    // Act: the admin adds the record and approves the device through the admin API
    const put = await admin("/allowlist/e2e-late", {
      method: "PUT",
      headers: { "if-none-match": "*" },
      body: JSON.stringify({ status: "allowed" }),
    });
    expect(put.status).toBe(201);
    const approve = await admin("/devices/e2e-late/approve", { method: "POST" });
    expect(approve.status).toBe(200);
    // Assess: the device gets in on its next connection
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    const result = await connect(device);
    expect(result.client?.connected).toBe(true);
    expect(result.attempts).toBe(1);
  });

  it("rejects a clone of a provisioned device", async () => {
    await t.allow("e2e-original");
    const original = await connect(await t.device("e2e-original"));
    expect(original.client?.connected).toBe(true);
    const clone = await connect(await t.device("e2e-original"));
    expect(clone.client).toBeUndefined();
    expect(clone.stopReason).toBe("REVOKED");
    expect(original.client?.connected).toBe(true);
  });

  it("refuses a certificate from an unregistered CA without registering it", async () => {
    const rogueCa = await createCa({ commonName: "Rogue CA" });
    const rogue = await t.device("e2e-rogue", rogueCa);
    for (let i = 0; i < 2; i++) expect((await connectOnce(rogue, t.endpoint)).client).toBeUndefined();
    expect(t.status(rogue.certificateId)).toBeUndefined();
  });

  it("disconnects a device whose certificate is revoked", async () => {
    await t.allow("e2e-revoke-me");
    const device = await t.device("e2e-revoke-me");
    const client = (await connect(device)).client as MqttClient;
    const gone = closed(client);
    await t.stack.clients.iot.send(
      new UpdateCertificateCommand({ certificateId: device.certificateId, newStatus: "REVOKED" }),
    );
    await gone;
    expect(client.connected).toBe(false);
    expect((await connectOnce(device, t.endpoint)).client).toBeUndefined();
  });
});
