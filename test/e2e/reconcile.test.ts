/** Reconcile on the local stack: a mapping change reaches a provisioned device, seen by a real MQTT client. */
import { CreateThingGroupCommand, ListThingGroupsForThingCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceIdentity, publishAcknowledged } from "../../cli/device-client.ts";
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

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${t.stack.endpoints.adminApi}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${t.stack.adminToken}`, "content-type": "application/json" },
  });

interface Slice {
  dryRun: boolean;
  examined: number;
  done: boolean;
  devices: { deviceId: string; outcome: string; actions: string[] }[];
}

interface ReconcileJob {
  job: {
    id: string;
    kind: string;
    state: string;
    params: { dryRun: boolean };
    progress: { done: number; total?: number };
  };
  result: {
    examined: number;
    outcomes: Record<string, number>;
    devices: { deviceId: string; outcome: string; actions: string[] }[];
  };
}

/** Starts a reconcile job and follows it (GET /jobs/{id}) until it ends. */
async function runJob(body: { dryRun?: boolean }): Promise<ReconcileJob> {
  const started = await admin("/reconcile-jobs", { method: "POST", body: JSON.stringify(body) });
  expect(started.status).toBe(202);
  const { id } = (await started.json()) as { id: string };
  for (let polls = 0; polls < 300; polls++) {
    const job = (await (await admin(`/jobs/${id}`)).json()) as ReconcileJob["job"] & {
      result: ReconcileJob["result"];
    };
    if (!["queued", "running"].includes(job.state)) return { job, result: job.result };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`reconcile job ${id} did not end`);
}

describe("reconcile on the local stack", () => {
  it("moves a provisioned device to its new policy and groups: it publishes where the new policy allows, no longer where only the old did", async () => {
    // Prepare: provisioned under the sensor template, publishing telemetry
    await t.allow("e2e-rc-1");
    const device = await t.device("e2e-rc-1");
    const before = (await connect(device)).client as MqttClient;
    expect(await publishAcknowledged(before, "devices/e2e-rc-1/telemetry", "{}")).toBe(true);
    before.end(true);
    await t.stack.clients.iot.send(new CreateThingGroupCommand({ thingGroupName: "e2e-rc-group" }));
    await t.map({ selector: "default", policy: { template: "command-only" }, thingGroups: ["e2e-rc-group"] });

    // Act: a dry run, then one slice for real
    const dry = await admin("/reconcile?dryRun=true&limit=100", { method: "POST" });
    const dryRun = (await dry.json()) as Slice;
    const applied = await admin("/reconcile?limit=100", { method: "POST" });
    const slice = (await applied.json()) as Slice;

    // Assess
    expect([dry.status, applied.status]).toEqual([200, 200]);
    expect(dryRun.devices).toEqual([
      expect.objectContaining({ deviceId: "e2e-rc-1", outcome: "would-change" }),
    ]);
    expect(slice).toMatchObject({ dryRun: false, done: true });
    expect(slice.devices).toEqual([
      expect.objectContaining({
        deviceId: "e2e-rc-1",
        outcome: "changed",
        actions: [
          "add thing to group e2e-rc-group",
          "create policy jitr-command-only",
          "attach policy jitr-command-only",
          "detach policy jitr-sensor",
          "record policy jitr-command-only on the binding",
        ],
      }),
    ]);
    const groups = await t.stack.clients.iot.send(
      new ListThingGroupsForThingCommand({ thingName: "e2e-rc-1" }),
    );
    expect(groups.thingGroups?.map((g) => g.groupName)).toEqual(["e2e-rc-group"]);
    const after = (await connect(device)).client as MqttClient;
    expect(await publishAcknowledged(after, "devices/e2e-rc-1/commands/ack", "{}")).toBe(true);
    expect(await publishAcknowledged(after, "devices/e2e-rc-1/telemetry", "{}")).toBe(false);
    const again = (await (await admin("/reconcile", { method: "POST" })).json()) as Slice;
    expect(again.devices).toEqual([]);
    const history = (await (await admin("/devices/e2e-rc-1/history")).json()) as {
      items: { kind: string; actor?: string; change?: { action?: string } }[];
    };
    expect(history.items[0]).toMatchObject({ kind: "admin", change: { action: "reconcile" } });
    expect(history.items[0]?.actor).toEqual(expect.any(String));
  });

  it("as a job: a dry-run job reports, the real job moves every device, and their MQTT rights follow", async () => {
    // Prepare: two devices provisioned under command-only (the default now), then the default back to sensor
    const ids = ["e2e-rcj-1", "e2e-rcj-2"];
    const devices = [];
    for (const id of ids) {
      await t.allow(id);
      const device = await t.device(id);
      const client = (await connect(device)).client as MqttClient;
      expect(await publishAcknowledged(client, `devices/${id}/commands/ack`, "{}")).toBe(true);
      client.end(true);
      devices.push(device);
    }
    await t.map({ selector: "default", policy: { template: "sensor" } });

    // Act
    const dry = await runJob({ dryRun: true });
    const applied = await runJob({});

    // Assess
    expect(dry.job).toMatchObject({ kind: "reconcile", state: "succeeded", params: { dryRun: true } });
    expect(dry.result.outcomes["would-change"]).toBeGreaterThanOrEqual(2);
    expect(applied.job).toMatchObject({ state: "succeeded", params: { dryRun: false } });
    expect(applied.result.outcomes.changed).toBe(dry.result.outcomes["would-change"]);
    expect(applied.job.progress).toEqual({ done: applied.result.examined, total: applied.result.examined });
    for (const id of ids) {
      expect(applied.result.devices).toContainEqual(
        expect.objectContaining({
          deviceId: id,
          outcome: "changed",
          actions: expect.arrayContaining(["detach policy jitr-command-only"]),
        }),
      );
    }
    for (const [i, device] of devices.entries()) {
      const client = (await connect(device)).client as MqttClient;
      clients.push(client);
      expect(await publishAcknowledged(client, `devices/${ids[i]}/telemetry`, "{}")).toBe(true);
      expect(await publishAcknowledged(client, `devices/${ids[i]}/commands/ack`, "{}")).toBe(false);
    }
  });

  it("refuses a reconcile job body that is not one, and a GET, with clear errors", async () => {
    // Act
    const bad = await admin("/reconcile-jobs", { method: "POST", body: JSON.stringify({ dryRun: "yes" }) });
    const get = await admin("/reconcile-jobs");

    // Assess
    expect([bad.status, get.status]).toEqual([400, 405]);
    expect(await bad.json()).toMatchObject({
      error: { code: "ValidationError", details: [{ path: "dryRun" }] },
    });
  });

  it("refuses a GET and a limit out of range with clear errors", async () => {
    // Act
    const get = await admin("/reconcile");
    const tooMany = await admin("/reconcile?limit=1000", { method: "POST" });
    const notBoolean = await admin("/reconcile?dryRun=yes", { method: "POST" });

    // Assess
    expect([get.status, tooMany.status, notBoolean.status]).toEqual([405, 400, 400]);
    expect(await tooMany.json()).toMatchObject({
      error: { code: "ValidationError", details: [{ path: "limit" }] },
    });
  });
});
