import type { DeviceIdentity, Endpoint } from "./device-client.ts";
import { connectWithRetry, publishAcknowledged } from "./device-client.ts";

export type Expectation = "provisioned" | "quarantined" | "revoked";

/** A simulated device and what should become of it. */
export interface FleetDevice {
  deviceId: string;
  /** What the device is, for the summary: allowlisted, unknown, blocked, clone. */
  kind: string;
  identity: DeviceIdentity;
  certificateId: string;
  expect: Expectation;
  /** Start only once this device has its outcome (a clone connects after its original). */
  after?: string;
}

export interface DeviceOutcome {
  deviceId: string;
  kind: string;
  expected: Expectation;
  actual: Expectation | "timeout" | "error";
  ok: boolean;
  attempts: number;
  /** From the first connection attempt to the first acknowledged publish. */
  msToFirstPublish?: number;
  provisionedAt?: number;
  /** Publishing on its own topic was acknowledged; on another device's topic the connection was closed. */
  ownTopicAccepted?: boolean;
  foreignTopicRefused?: boolean;
  reason?: string;
}

export interface FleetOptions {
  endpoint: Endpoint;
  devices: FleetDevice[];
  concurrency?: number;
  deadlineMs?: number;
  /** The certificate's registry status, so a quarantined or revoked device stops retrying. */
  certificateStatus: (certificateId: string) => Promise<string | undefined>;
  /** Why a certificate was denied (from the ledger), for the summary. */
  reasonFor?: (deviceId: string, certificateId: string) => Promise<string | undefined>;
  onOutcome?: (outcome: DeviceOutcome, done: number, total: number) => void;
}

export interface FleetSummary {
  outcomes: DeviceOutcome[];
  startedAt: number;
  endedAt: number;
  provisioned: number;
  provisionedPerSecond: number;
  latencyMs: { p50: number; p95: number; max: number } | undefined;
  allAsExpected: boolean;
}

/** The q-quantile of sorted numbers (nearest rank). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? 0;
}

/** Runs a fleet of devices against a gateway, each behaving as real firmware does, and summarizes. */
export async function runFleet(options: FleetOptions): Promise<FleetSummary> {
  const { devices, endpoint } = options;
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const deadlineMs = options.deadlineMs ?? 90_000;
  const startedAt = Date.now();
  const finished = new Map<string, Promise<DeviceOutcome>>();
  const outcomes: DeviceOutcome[] = [];
  const ids = devices.map((d) => d.deviceId);

  const runDevice = async (device: FleetDevice): Promise<DeviceOutcome> => {
    const terminal = async () => {
      const status = await options.certificateStatus(device.certificateId);
      return status === "INACTIVE" || status === "REVOKED" ? status : undefined;
    };
    const base = { deviceId: device.deviceId, kind: device.kind, expected: device.expect };
    try {
      const result = await connectWithRetry(device.identity, endpoint, { deadlineMs, shouldStop: terminal });
      if (!result.client) {
        const actual =
          result.stopReason === "INACTIVE"
            ? "quarantined"
            : result.stopReason === "REVOKED"
              ? "revoked"
              : "timeout";
        const reason = await options.reasonFor?.(device.deviceId, device.certificateId);
        return {
          ...base,
          actual,
          ok: actual === device.expect,
          attempts: result.attempts,
          ...(reason ? { reason } : {}),
        };
      }
      const client = result.client;
      const own = await publishAcknowledged(
        client,
        `devices/${device.deviceId}/telemetry`,
        JSON.stringify({ t: Date.now() }),
      );
      const publishedAt = Date.now();
      const other = ids.find((id) => id !== device.deviceId) ?? "someone-else";
      const foreignAccepted = await publishAcknowledged(client, `devices/${other}/telemetry`, "{}", 3_000);
      client.end(true);
      return {
        ...base,
        actual: "provisioned",
        ok: device.expect === "provisioned" && own && !foreignAccepted,
        attempts: result.attempts,
        msToFirstPublish: publishedAt - result.firstAttemptAt,
        provisionedAt: result.connectedAt ?? publishedAt,
        ownTopicAccepted: own,
        foreignTopicRefused: !foreignAccepted,
      };
    } catch (error) {
      return { ...base, actual: "error", ok: false, attempts: 0, reason: (error as Error).message };
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < devices.length) {
      const device = devices[next++];
      if (device === undefined) break;
      const pending = (async () => {
        const before = device.after ? finished.get(device.after) : undefined;
        if (before) await before;
        return runDevice(device);
      })();
      finished.set(device.deviceId + (device.after ? "#clone" : ""), pending);
      const outcome = await pending;
      outcomes.push(outcome);
      options.onOutcome?.(outcome, outcomes.length, devices.length);
    }
  };
  // Devices that wait for another start last, so their originals are already under way.
  devices.sort((a, b) => Number(a.after !== undefined) - Number(b.after !== undefined));
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker));

  const endedAt = Date.now();
  const latencies = outcomes
    .flatMap((o) => (o.msToFirstPublish !== undefined ? [o.msToFirstPublish] : []))
    .sort((a, b) => a - b);
  const provisioned = outcomes.filter((o) => o.actual === "provisioned");
  const lastProvisioned = Math.max(startedAt, ...provisioned.map((o) => o.provisionedAt ?? startedAt));
  return {
    outcomes,
    startedAt,
    endedAt,
    provisioned: provisioned.length,
    provisionedPerSecond: provisioned.length / Math.max(0.001, (lastProvisioned - startedAt) / 1000),
    latencyMs:
      latencies.length > 0
        ? { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: latencies.at(-1) ?? 0 }
        : undefined,
    allAsExpected: outcomes.every((o) => o.ok),
  };
}
