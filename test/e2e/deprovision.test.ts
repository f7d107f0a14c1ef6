/** Deprovisioning through the admin API on the local stack: every certificate of the device goes. */
import { DescribeThingCommand, ListThingPrincipalsCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectOnce, type DeviceIdentity } from "../../cli/device-client.ts";
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

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${t.stack.endpoints.adminApi}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${t.stack.adminToken}`, "content-type": "application/json" },
  });

describe("deprovision on the local stack", () => {
  it("revokes and detaches every certificate of an allow-multiple device, deletes its thing and records each", async () => {
    // Prepare: two certificates of one device, both provisioned (one client id: the second connection takes over)
    await t.allow("e2e-multi", { rotation: "allow-multiple" });
    const first = await t.device("e2e-multi");
    const second = await t.device("e2e-multi");
    expect((await connect(first)).client?.connected).toBe(true);
    const connected = (await connect(second)).client as MqttClient;
    expect(connected.connected).toBe(true);
    expect([t.status(first.certificateId), t.status(second.certificateId)]).toEqual(["ACTIVE", "ACTIVE"]);
    const principals = await t.stack.clients.iot.send(
      new ListThingPrincipalsCommand({ thingName: "e2e-multi" }),
    );
    expect(principals.principals).toHaveLength(2);
    const gone = closed(connected);

    // Act
    const response = await admin("/devices/e2e-multi/deprovision", { method: "POST" });

    // Assess
    expect(response.status).toBe(200);
    const done = (await response.json()) as { certificates: { certificateId: string; revoked: boolean }[] };
    expect(done).toMatchObject({ thingDeleted: true, warnings: [] });
    expect(done.certificates.map((c) => c.certificateId).sort()).toEqual(
      [first.certificateId, second.certificateId].sort(),
    );
    expect(done.certificates.every((c) => c.revoked)).toBe(true);
    await gone;
    expect([t.status(first.certificateId), t.status(second.certificateId)]).toEqual(["REVOKED", "REVOKED"]);
    for (const device of [first, second])
      expect((await connectOnce(device, t.endpoint)).client).toBeUndefined();
    await expect(
      t.stack.clients.iot.send(new DescribeThingCommand({ thingName: "e2e-multi" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    const history = (await (await admin("/devices/e2e-multi/history")).json()) as {
      items: { change?: { action?: string; certificates?: { certificateId: string }[] } }[];
    };
    const entry = history.items.find((e) => e.change?.action === "deprovision");
    expect(entry?.change?.certificates?.map((c) => c.certificateId).sort()).toEqual(
      [first.certificateId, second.certificateId].sort(),
    );
  });
});
