/**
 * A fleet of MQTT/TLS devices run from child processes, apart from the stack under test: the devices' TLS
 * handshakes and retries load other processes, so a measurement shows the service rather than the harness.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Endpoint } from "../../cli/device-client.ts";
import { quantile } from "../../cli/fleet.ts";
import type { DeviceJob, DeviceReport, FromDevices, ToDevices } from "./messages.ts";
import type { RetryPattern } from "./retry.ts";

export interface FleetMember extends DeviceJob {
  certificateId: string;
  /** Start only once this device has its report (a clone connects after its original). */
  after?: string;
}

export interface ProcessFleetOptions {
  endpoint: Endpoint;
  devices: FleetMember[];
  retry: RetryPattern;
  /**
   * Multiplies every retry delay (default 1). Below 1 it compresses the same pattern in time, so a test of
   * a small fleet stays short; measurements use 1.
   */
  timeScale?: number;
  /**
   * Devices power on at random moments within this many ms of their start (default 0: all in the same
   * instant). A production line does not power thousands of devices on in one millisecond; with a fixed
   * retry delay, devices started in one instant stay in lock-step and retry as one wave forever.
   */
  powerOnSpreadMs?: number;
  /** Device processes (default 2). */
  processes?: number;
  /** A device gives up after this long (default 15 min). */
  deadlineMs?: number;
  seed?: number;
  /**
   * The registry's certificate statuses, polled every `pollMs` so a device whose certificate ended INACTIVE
   * or REVOKED stops retrying (it would otherwise retry to its deadline, as firmware would).
   */
  statuses?: () => Promise<ReadonlyMap<string, string>>;
  pollMs?: number;
  onReport?: (report: DeviceReport, done: number, total: number) => void;
}

export interface ProcessFleetResult {
  reports: DeviceReport[];
  startedAt: number;
  endedAt: number;
  published: number;
  /** First connection attempt -> first accepted publish, over the devices that published. */
  latencyMs: { p50: number; p95: number; max: number } | undefined;
  attempts: number;
}

const DEVICE_PROCESS = fileURLToPath(new URL("./device-process.ts", import.meta.url));

function startDeviceProcess(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(DEVICE_PROCESS, [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const onReady = (message: FromDevices) => {
      if (message.kind !== "ready") return;
      child.off("message", onReady);
      child.off("exit", onExit);
      resolve(child);
    };
    const onExit = (code: number | null) =>
      reject(new Error(`device process exited before it was ready (${code})`));
    child.on("message", onReady);
    child.once("exit", onExit);
    child.once("error", reject);
  });
}

/** Runs every device to its first accepted publish, a stop or its deadline; resolves with each device's report. */
export async function runProcessFleet(options: ProcessFleetOptions): Promise<ProcessFleetResult> {
  const total = options.devices.length;
  const count = Math.max(1, Math.min(options.processes ?? 2, total));
  const children = await Promise.all(Array.from({ length: count }, startDeviceProcess));
  const placeOf = new Map<string, ChildProcess>();
  const reports: DeviceReport[] = [];
  const reported = new Set<string>();
  const waiting = new Map<string, FleetMember[]>();
  const startedAt = Date.now();
  let next = 0;
  const post = (child: ChildProcess, message: ToDevices) => {
    if (child.connected) child.send(message);
  };
  const start = (members: FleetMember[]) => {
    const byChild = new Map<ChildProcess, DeviceJob[]>();
    for (const m of members) {
      const child = children[next++ % count] as ChildProcess;
      placeOf.set(m.deviceId, child);
      const job: DeviceJob = { deviceId: m.deviceId, identity: m.identity, topic: m.topic };
      byChild.set(child, [...(byChild.get(child) ?? []), job]);
    }
    for (const [child, devices] of byChild) post(child, { kind: "start", devices });
  };
  // A clone and its original share a device id: a report names the device, so the original's comes first.
  const key = (m: FleetMember) => `${m.deviceId}#${m.certificateId}`;
  const memberByDevice = new Map<string, FleetMember[]>();
  for (const m of options.devices)
    memberByDevice.set(m.deviceId, [...(memberByDevice.get(m.deviceId) ?? []), m]);

  let poller: NodeJS.Timeout | undefined;
  let finished = false;
  try {
    const done = new Promise<void>((resolve) => {
      for (const [i, child] of children.entries()) {
        post(child, {
          kind: "config",
          endpoint: options.endpoint,
          retry: options.retry,
          timeScale: options.timeScale ?? 1,
          deadlineMs: options.deadlineMs ?? 15 * 60_000,
          seed: (options.seed ?? 1) * 7919 + i,
          powerOnSpreadMs: options.powerOnSpreadMs ?? 0,
        });
        child.on("message", (message: FromDevices) => {
          if (message.kind !== "report") return;
          const members = memberByDevice.get(message.report.deviceId) ?? [];
          const member =
            members.find((m) => !reported.has(key(m)) && !m.after) ??
            members.find((m) => !reported.has(key(m)));
          if (member) reported.add(key(member));
          reports.push(message.report);
          options.onReport?.(message.report, reports.length, total);
          const after = waiting.get(message.report.deviceId);
          if (after) {
            waiting.delete(message.report.deviceId);
            start(after);
          }
          if (reports.length >= total) resolve();
        });
      }
    });
    const now: FleetMember[] = [];
    for (const m of options.devices) {
      if (m.after) waiting.set(m.after, [...(waiting.get(m.after) ?? []), m]);
      else now.push(m);
    }
    start(now);
    if (options.statuses) {
      const statuses = options.statuses;
      const poll = async () => {
        const status = await statuses().catch(() => undefined);
        if (status) {
          const stop = new Map<ChildProcess, string[]>();
          for (const m of options.devices) {
            const s = status.get(m.certificateId);
            const child = placeOf.get(m.deviceId);
            if (child && !reported.has(key(m)) && (s === "INACTIVE" || s === "REVOKED"))
              stop.set(child, [...(stop.get(child) ?? []), m.deviceId]);
          }
          for (const [child, deviceIds] of stop) post(child, { kind: "stop", deviceIds });
        }
        if (!finished) poller = setTimeout(() => void poll(), options.pollMs ?? 2_000);
      };
      poller = setTimeout(() => void poll(), options.pollMs ?? 2_000);
    }
    await done;
  } finally {
    finished = true;
    clearTimeout(poller);
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once("exit", () => resolve());
            post(child, { kind: "exit" });
            setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
          }),
      ),
    );
  }
  const endedAt = Date.now();
  const latencies = reports
    .flatMap((r) => (r.msToFirstPublish !== undefined ? [r.msToFirstPublish] : []))
    .sort((a, b) => a - b);
  return {
    reports,
    startedAt,
    endedAt,
    published: reports.filter((r) => r.result === "published").length,
    latencyMs:
      latencies.length > 0
        ? { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: latencies.at(-1) ?? 0 }
        : undefined,
    attempts: reports.reduce((sum, r) => sum + r.attempts, 0),
  };
}
