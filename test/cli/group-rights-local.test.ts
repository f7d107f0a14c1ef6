/** `jitr mappings put --group-policy` and `jitr explain` against jitr local: rights through a thing group, end to end. */
import { CreateThingGroupCommand } from "@aws-sdk/client-iot";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishAcknowledged } from "../../cli/device-client.ts";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();

let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
  await t.stack.clients.iot.send(new CreateThingGroupCommand({ thingGroupName: "cli-fleet" }));
});
afterAll(async () => t.close());

const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);

describe("rights through thing groups from the CLI", () => {
  it("saves a mapping granting only through a group, provisions a device with it, and explains where its rights come from", async () => {
    // Prepare
    const bad = await jitr("mappings", "put", "profile:cli", "--group-policy", "cli-fleet=");
    const saved = await jitr(
      "mappings",
      "put",
      "profile:cli",
      "--group-policy",
      "cli-fleet=sensor",
      "--json",
    );
    const mapping = JSON.parse(output.stdout()) as Record<string, unknown>;
    await t.allow("cli-gr-1", { profile: "cli" });

    // Act
    const device = await t.device("cli-gr-1");
    const client = (await t.connect(device)).client as MqttClient;
    output.reset();
    const explained = await jitr("explain", "cli-gr-1");

    // Assess
    expect(bad).not.toBe(0);
    expect(saved).toBe(0);
    expect(mapping).toMatchObject({
      groupPolicies: [{ group: "cli-fleet", policy: { template: "sensor" } }],
    });
    expect(mapping).not.toHaveProperty("policy");
    expect(await publishAcknowledged(client, "devices/cli-gr-1/telemetry", "{}")).toBe(true);
    expect(explained).toBe(0);
    expect(output.stdout()).toMatch(/effective policies:/);
    expect(output.stdout()).toMatch(/jitr-sensor\W+group\W+cli-fleet\W+cli-fleet\W+by the mapping/);
  });
});
