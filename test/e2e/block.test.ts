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

/** Follows a job through the admin API until it ends. */
async function ended(id: string): Promise<{ state: string; result: { outcomes: Record<string, number> } }> {
  for (let polls = 0; polls < 300; polls++) {
    const job = (await t.admin("GET", `/jobs/${id}`)).json as {
      state: string;
      result: { outcomes: Record<string, number> };
    };
    if (!["queued", "running"].includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`job ${id} did not end`);
}

describe("block of many as a job on the local stack", () => {
  it("POST /block-jobs revokes several devices: every live connection drops and none can reconnect", async () => {
    // Prepare
    const ids = ["blk-many-1", "blk-many-2", "blk-many-3"];
    const live = [];
    for (const id of ids) live.push(await online(id));
    const gone = live.map(({ client }) => closed(client));

    // Act
    const started = await t.admin("POST", "/block-jobs", { deviceIds: ids });
    const job = await ended((started.json as { id: string }).id);
    await Promise.all(gone);

    // Assess
    expect(started.status).toBe(202);
    expect(job).toMatchObject({
      state: "succeeded",
      result: { outcomes: { blocked: 3, failed: 0, incomplete: 0 } },
    });
    for (const { device } of live) {
      expect(t.status(device.certificateId)).toBe("REVOKED");
      expect((await connectOnce(device, t.endpoint)).client).toBeUndefined();
    }
  });

  it("jitr block --lot --suspend refuses without --yes off a terminal, then suspends the lot's devices, dropping them", async () => {
    // Prepare
    expect(await jitr("lots", "put", "blk-lot", "--max-devices", "10")).toBe(0);
    const live = [];
    for (const id of ["blk-lot-1", "blk-lot-2"]) {
      expect(await jitr("allowlist", "put", id, "--status", "allowed", "--lot", "blk-lot")).toBe(0);
      const device = await t.device(id);
      const client = (await connect(device)).client as MqttClient;
      expect(client.connected).toBe(true);
      live.push({ device, client, gone: closed(client) });
    }

    // Act
    output.reset();
    const refused = await jitr("block", "--lot", "blk-lot", "--suspend");
    const refusal = output.stderr();
    const untouched = live.map(({ device }) => t.status(device.certificateId));
    output.reset();
    const blocked = await jitr("block", "--lot", "blk-lot", "--suspend", "--yes", "--json");
    const printed = JSON.parse(output.stdout()) as {
      job: string;
      mode: string;
      outcomes: Record<string, number>;
    };
    await Promise.all(live.map(({ gone }) => gone));

    // Assess
    expect(refused).not.toBe(0);
    expect(refusal).toMatch(/--yes/);
    expect(untouched).toEqual(["ACTIVE", "ACTIVE"]);
    expect(blocked).toBe(0);
    expect(printed).toMatchObject({ job: expect.any(String), mode: "suspend", outcomes: { blocked: 2 } });
    for (const { device } of live) expect(t.status(device.certificateId)).toBe("INACTIVE");
  });

  it("refuses a block job naming no devices, and a bad id, with clear errors", async () => {
    // Act
    const none = await t.admin("POST", "/block-jobs", {});
    const bad = await t.admin("POST", "/block-jobs", { deviceIds: ["not a thing name"] });
    output.reset();
    const cli = await jitr("block", "--yes");

    // Assess
    expect([none.status, bad.status]).toEqual([400, 400]);
    expect(bad.json).toMatchObject({
      error: { code: "ValidationError", details: [{ path: "deviceIds[0]" }] },
    });
    expect(cli).not.toBe(0);
    expect(output.stderr()).toContain("name the devices to block");
  });
});
