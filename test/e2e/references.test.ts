import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceIdentity, publishAcknowledged } from "../../cli/device-client.ts";
import { startTestStack } from "../support/local-stack.ts";

/*
 * A mapping naming a thing type that does not exist, end to end: refused when saved (saved only with
 * force), denied by explain, and a real device under it is quarantined on its first attempt (one ledger
 * entry, never `failed`), then provisioned once the type exists and the admin approves.
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

/** Connects like firmware until provisioned, or until the certificate is quarantined or revoked. */
const connect = (device: DeviceIdentity & { certificateId: string }) => t.connect(device);

/** Calls the admin API with the local bearer token. */
const admin = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  t.admin(method, path, body, headers);

describe("a mapping naming a thing type that does not exist", () => {
  it("is refused unless forced; explain denies; the device is quarantined once (missing-reference), then provisioned after the type is created and approved", async () => {
    // Prepare
    const mapping = { policy: { template: "sensor" }, thingType: "meters" };
    await t.allow("meter-1", { profile: "meter" });
    const device = await t.device("meter-1");

    // Act: save it plainly, then with force
    const refused = await admin("PUT", "/mappings/profile:meter", mapping, { "if-none-match": "*" });
    const forced = await admin("PUT", "/mappings/profile:meter?force=true", mapping, {
      "if-none-match": "*",
    });
    const explained = await admin("POST", "/explain", { deviceId: "meter-1" });

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      error: {
        code: "Conflict",
        details: [{ path: "thingType", message: "thing type meters does not exist" }],
      },
    });
    expect(forced.status).toBe(201);
    expect(forced.json?.warnings).toEqual([
      expect.objectContaining({ code: "missing-reference", path: "thingType" }),
    ]);
    expect(explained.json).toMatchObject({ decision: "deny", reason: "missing-reference" });

    // Act: the device connects as firmware does, and keeps trying a while
    const run = await connect(device);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const history = await admin("GET", "/devices/meter-1/history");

    // Assess: quarantined on the first attempt, one entry, no failure
    expect(run.stopReason).toBe("INACTIVE");
    expect(run.client).toBeUndefined();
    expect(history.json?.items).toEqual([
      expect.objectContaining({ kind: "denied", reason: "missing-reference", certificateStatus: "INACTIVE" }),
    ]);
    expect(t.stack.aws.iot.describeThingByName("meter-1")).toBeUndefined();

    // Act: the admin creates the type and approves; the device connects again
    t.stack.aws.iot.createThingType({ thingTypeName: "meters" });
    const approved = await admin("POST", "/devices/meter-1/approve");
    const again = await connect(device);

    // Assess
    expect(approved.json).toMatchObject({ outcome: "provisioned", deviceId: "meter-1" });
    expect(again.client).toBeDefined();
    if (again.client === undefined) return;
    expect(await publishAcknowledged(again.client, "devices/meter-1/telemetry", "{}")).toBe(true);
    expect(t.stack.aws.iot.describeThingByName("meter-1")?.thingTypeName).toBe("meters");
  }, 60_000);
});
