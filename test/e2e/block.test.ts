/** Blocking through the CLI on the local stack, with real MQTT devices: the live connection drops. */
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectOnce, type DeviceIdentity } from "../../cli/device-client.ts";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();
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

/** Runs `jitr` in-process against the running stack. */
const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);

/** Connects like firmware until provisioned, or until the certificate is quarantined or revoked. */
const connect = (device: DeviceIdentity & { certificateId: string }) => t.connect(device);

const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once("close", () => resolve()));

/** A provisioned device with a live connection. */
async function online(deviceId: string) {
  expect(await jitr("allowlist", "put", deviceId, "--status", "allowed")).toBe(0);
  const device = await t.device(deviceId);
  const client = (await connect(device)).client;
  expect(client?.connected).toBe(true);
  return { device, client: client as MqttClient };
}

describe("block on the local stack", () => {
  it("allowlist put --status blocked revokes: the live connection drops and the device cannot reconnect", async () => {
    // Prepare
    const { device, client } = await online("blk-revoke");
    const gone = closed(client);
    output.reset();

    // Act
    const status = await jitr("allowlist", "put", "blk-revoke", "--status", "blocked", "--yes");

    // Assess
    expect(status).toBe(0);
    expect(output.stderr()).toContain(`revoked 1 certificate(s) of blk-revoke: ${device.certificateId}`);
    await gone;
    expect(t.status(device.certificateId)).toBe("REVOKED");
    expect((await connectOnce(device, t.endpoint)).client).toBeUndefined();
  });

  it("jitr block --suspend drops the connection; unblock and approve bring the same certificate back", async () => {
    // Prepare
    const { device, client } = await online("blk-suspend");
    const gone = closed(client);

    // Act
    const blocked = await jitr("block", "blk-suspend", "--suspend", "--yes");
    await gone;
    const whileBlocked = await connectOnce(device, t.endpoint);
    const unblocked = await jitr("allowlist", "put", "blk-suspend", "--status", "allowed");
    const afterUnblock = await connectOnce(device, t.endpoint);
    const approved = await jitr("approve", "blk-suspend");
    const back = await connectOnce(device, t.endpoint);
    if (back.client) clients.push(back.client);

    // Assess
    expect(blocked).toBe(0);
    expect(whileBlocked.client).toBeUndefined();
    expect(unblocked).toBe(0);
    expect(afterUnblock.client).toBeUndefined();
    expect(approved).toBe(0);
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    expect(back.client?.connected).toBe(true);
  });

  it("refuses to block without --yes when there is no terminal, changing nothing", async () => {
    // Prepare
    const { device, client } = await online("blk-ask");
    output.reset();

    // Act
    const status = await jitr("block", "blk-ask");

    // Assess
    expect(status).toBe(1);
    expect(output.stderr()).toContain("add --yes");
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    expect(client.connected).toBe(true);
    output.reset();
    expect(await jitr("allowlist", "get", "blk-ask", "--json")).toBe(0);
    expect(JSON.parse(output.stdout())).toMatchObject({ status: "allowed" });
  });

  it("deprovision --block retires the device: a new certificate of it is revoked", async () => {
    // Prepare
    const { device, client } = await online("blk-retire");
    const gone = closed(client);
    output.reset();

    // Act
    const status = await jitr("deprovision", "blk-retire", "--block", "--yes");
    await gone;
    const fresh = await t.device("blk-retire");
    const again = await connect(fresh);

    // Assess
    expect(status).toBe(0);
    expect(output.stderr()).toContain("the record is blocked");
    expect(t.status(device.certificateId)).toBe("REVOKED");
    expect(again.stopReason).toBe("REVOKED");
  });

  it("refuses deprovision and allowlist remove without --yes when there is no terminal, changing nothing", async () => {
    // Prepare
    const { device, client } = await online("blk-keep");
    output.reset();

    // Act
    const deprovisioned = await jitr("deprovision", "blk-keep");
    const removed = await jitr("allowlist", "remove", "blk-keep");

    // Assess
    expect([deprovisioned, removed]).toEqual([1, 1]);
    expect(output.stderr().match(/add --yes/g)).toHaveLength(2);
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    expect(client.connected).toBe(true);
    expect(await jitr("allowlist", "get", "blk-keep")).toBe(0);
  });
});
