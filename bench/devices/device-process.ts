/**
 * A device process: runs the MQTT/TLS devices it is given, each as firmware does (connect, be dropped while
 * the certificate is registered and provisioned, wait, retry), and reports each device's first accepted
 * publish. It runs apart from the stack, so the devices' TLS and MQTT work does not share the stack's thread.
 */
import { connectOnce, publishAcknowledged } from "../../cli/device-client.ts";
import type { DeviceJob, DeviceReport, FromDevices, ToDevices } from "./messages.ts";
import { type RetryPattern, retryDelayMs, seededRandom } from "./retry.ts";

interface Settings {
  endpoint: Extract<ToDevices, { kind: "config" }>["endpoint"];
  retry: RetryPattern;
  timeScale: number;
  deadlineMs: number;
  powerOnSpreadMs: number;
  random: () => number;
}

const send = (message: FromDevices) => process.send?.(message);
const stopped = new Set<string>();
const wakers = new Map<string, () => void>();
let settings: Settings | undefined;

/** Waits `ms`, or less when the device is told to stop. */
function pause(deviceId: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wakers.delete(deviceId);
      resolve();
    }
    wakers.set(deviceId, done);
  });
}

async function runDevice(job: DeviceJob, s: Settings): Promise<DeviceReport> {
  const firstAttemptAt = Date.now();
  const deadline = firstAttemptAt + s.deadlineMs;
  let lastError: string | undefined;
  for (let attempt = 1; ; attempt++) {
    if (stopped.has(job.deviceId))
      return {
        deviceId: job.deviceId,
        result: "stopped",
        attempts: attempt - 1,
        firstAttemptAt,
        ...(lastError ? { lastError } : {}),
      };
    const { client, error } = await connectOnce(job.identity, s.endpoint);
    if (client) {
      const accepted = await publishAcknowledged(client, job.topic, JSON.stringify({ t: Date.now() }));
      client.end(true);
      if (accepted)
        return {
          deviceId: job.deviceId,
          result: "published",
          attempts: attempt,
          firstAttemptAt,
          msToFirstPublish: Date.now() - firstAttemptAt,
        };
      lastError = "first publish not acknowledged";
    } else {
      lastError = error;
    }
    const delay = retryDelayMs(s.retry, attempt, s.random) * s.timeScale;
    if (Date.now() + delay > deadline)
      return {
        deviceId: job.deviceId,
        result: "deadline",
        attempts: attempt,
        firstAttemptAt,
        ...(lastError ? { lastError } : {}),
      };
    await pause(job.deviceId, delay);
  }
}

process.on("message", (message: ToDevices) => {
  switch (message.kind) {
    case "config":
      settings = {
        endpoint: message.endpoint,
        retry: message.retry,
        timeScale: message.timeScale,
        deadlineMs: message.deadlineMs,
        powerOnSpreadMs: message.powerOnSpreadMs,
        random: seededRandom(message.seed),
      };
      break;
    case "start": {
      const s = settings;
      if (!s) throw new Error("device process: start before config");
      for (const job of message.devices) {
        // Drawn only with a spread, so a fleet started all at once replays its seed as before.
        const powerOn = s.powerOnSpreadMs > 0 ? Math.floor(s.random() * s.powerOnSpreadMs) : 0;
        void pause(job.deviceId, powerOn)
          .then(() => runDevice(job, s))
          .then((report) => send({ kind: "report", report }));
      }
      break;
    }
    case "stop":
      for (const id of message.deviceIds) {
        stopped.add(id);
        wakers.get(id)?.();
      }
      break;
    case "exit":
      process.disconnect?.();
      process.exit(0);
  }
});
// The runner waits for this before it sends work: the IPC channel is open and the modules are loaded.
send({ kind: "ready" });
