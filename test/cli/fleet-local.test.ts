/** `jitr ledger`, `jitr approvals`, `jitr approve --all-ready` and the history commands against jitr local. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithRetry } from "../../cli/device-client.ts";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();

let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => t.close());

const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
const json = <T>(): T => JSON.parse(output.stdout()) as T;

/** Connects a device until the gateway has quarantined its certificate. */
async function quarantine(deviceId: string) {
  const device = await t.device(deviceId);
  const run = await connectWithRetry(device, t.endpoint, {
    deadlineMs: 15_000,
    baseDelayMs: 50,
    shouldStop: async () => (t.status(device.certificateId) === "INACTIVE" ? "INACTIVE" : undefined),
  });
  expect(run.stopReason).toBe("INACTIVE");
  return device;
}

describe("seeing the fleet from the CLI against jitr local", () => {
  it("lists quarantined devices, approves those now allowed, and shows it in the fleet-wide ledger", async () => {
    // Prepare: two devices quarantined before they were allowlisted; one is then allowed
    expect(await jitr("mappings", "put", "default", "--template", "sensor")).toBe(0);
    const late = await quarantine("fleet-late-1");
    const stranger = await quarantine("fleet-stranger-1");
    expect(await jitr("allowlist", "put", "fleet-late-1", "--status", "allowed")).toBe(0);
    output.reset();

    // Act
    const queueStatus = await jitr("approvals", "--json");
    const queue = json<{ items: { deviceId: string; ready: boolean; reason: string }[] }>();
    output.reset();
    const approveStatus = await jitr("approve", "--all-ready", "--yes", "--json");
    const approved = json<{ deviceId: string; outcome: string }[]>();
    output.reset();
    const ledgerStatus = await jitr("ledger", "--kind", "denied", "--since", "1h", "--json");
    const denied = json<{ items: { deviceId: string; reason: string }[] }>();

    // Assess
    expect(queueStatus).toBe(0);
    expect(queue.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ deviceId: "fleet-late-1", ready: true, reason: "not-allowlisted" }),
        expect.objectContaining({ deviceId: "fleet-stranger-1", ready: false }),
      ]),
    );
    expect(approveStatus).toBe(0);
    expect(approved).toEqual([{ deviceId: "fleet-late-1", outcome: "provisioned" }]);
    expect(t.status(late.certificateId)).toBe("ACTIVE");
    expect(t.status(stranger.certificateId)).toBe("INACTIVE");
    expect(ledgerStatus).toBe(0);
    expect(denied.items.map((e) => e.deviceId)).toEqual(
      expect.arrayContaining(["fleet-late-1", "fleet-stranger-1"]),
    );
  });

  it("refuses approve --all-ready without --yes when there is no terminal to ask on", async () => {
    // Prepare
    const device = await quarantine("fleet-late-2");
    expect(await jitr("allowlist", "put", "fleet-late-2", "--status", "allowed")).toBe(0);
    output.reset();

    // Act
    const status = await jitr("approve", "--all-ready");

    // Assess
    expect(status).toBe(1);
    expect(output.stderr()).toMatch(/fleet-late-2[\s\S]*without a terminal to confirm: add --yes/);
    expect(t.status(device.certificateId)).toBe("INACTIVE");
  });

  it("shows who changed a mapping and a lot, and from which version", async () => {
    // Prepare
    expect(await jitr("mappings", "put", "profile:hist", "--template", "sensor")).toBe(0);
    expect(await jitr("mappings", "put", "profile:hist", "--template", "gateway")).toBe(0);
    expect(await jitr("lots", "put", "lot-hist", "--max-devices", "5")).toBe(0);
    expect(await jitr("lots", "put", "lot-hist", "--max-devices", "9")).toBe(0);
    output.reset();

    // Act
    const mappingStatus = await jitr("mappings", "history", "profile:hist");
    const mappingTable = output.stdout();
    output.reset();
    const lotStatus = await jitr("lots", "history", "lot-hist", "--json");

    // Assess
    expect(mappingStatus).toBe(0);
    expect(mappingTable).toMatch(/update\s*│\s*1 -> 2\s*│\s*policy/);
    expect(mappingTable).toMatch(/create\s*│\s*1\s*│/);
    expect(lotStatus).toBe(0);
    expect(json()).toMatchObject({
      items: [
        {
          change: {
            action: "update",
            previousVersion: 1,
            before: { maxDevices: 5 },
            after: { maxDevices: 9 },
          },
        },
        { change: { action: "create" } },
      ],
    });
  });
});
