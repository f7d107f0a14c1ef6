/** The messages between the fleet runner and its device processes (over the child-process IPC channel). */
import type { DeviceIdentity, Endpoint } from "../../cli/device-client.ts";
import type { RetryPattern } from "./retry.ts";

/** One device as a device process runs it. */
export interface DeviceJob {
  deviceId: string;
  identity: DeviceIdentity;
  /** The topic its first publish goes to (its policy must allow it). */
  topic: string;
}

export type ToDevices =
  | {
      kind: "config";
      endpoint: Endpoint;
      retry: RetryPattern;
      /** Multiplies every retry delay (1: the pattern as firmware runs it). */
      timeScale: number;
      deadlineMs: number;
      seed: number;
      /** Each device powers on at a random moment within this many ms of its start (0: all at once). */
      powerOnSpreadMs: number;
    }
  | { kind: "start"; devices: DeviceJob[] }
  /** These devices' certificates ended not ACTIVE (quarantined, revoked): they stop retrying. */
  | { kind: "stop"; deviceIds: string[] }
  | { kind: "exit" };

/** What became of one device. */
export interface DeviceReport {
  deviceId: string;
  /** `published`: connected and its first publish was acknowledged. */
  result: "published" | "stopped" | "deadline";
  attempts: number;
  /** Wall-clock time of the first connection attempt. */
  firstAttemptAt: number;
  /** From the first connection attempt to the acknowledged first publish. */
  msToFirstPublish?: number;
  lastError?: string;
}

export type FromDevices = { kind: "report"; report: DeviceReport } | { kind: "ready" };
