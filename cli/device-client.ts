import mqtt, { type MqttClient } from "mqtt";

/** What a device needs to reach an MQTT endpoint over TLS with its certificate. */
export interface DeviceIdentity {
  clientId: string;
  certificatePem: string;
  privateKeyPem: string;
}

export interface Endpoint {
  host: string;
  port: number;
  /** CA that signed the endpoint's server certificate (local: `.jitr/gateway-ca.pem`; AWS: Amazon Root CA 1). */
  caPem: string;
}

export interface ConnectOptions {
  /** Give up after this long. */
  deadlineMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Stop retrying early when this says so (e.g. the certificate was quarantined). */
  shouldStop?: () => Promise<string | undefined>;
  onAttempt?: (attempt: number, outcome: "connected" | "dropped", error?: string) => void;
}

export interface ConnectResult {
  client: MqttClient | undefined;
  attempts: number;
  firstAttemptAt: number;
  connectedAt: number | undefined;
  /** Why it stopped without connecting. */
  stopReason?: string;
}

/** One MQTT-over-TLS connection attempt: resolves with a connected client, or undefined when dropped. */
export function connectOnce(
  device: DeviceIdentity,
  endpoint: Endpoint,
  timeoutMs = 5_000,
): Promise<{ client?: MqttClient; error?: string }> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: endpoint.host,
      port: endpoint.port,
      ca: endpoint.caPem,
      cert: device.certificatePem,
      key: device.privateKeyPem,
      clientId: device.clientId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      keepalive: 30,
    });
    let settled = false;
    const finish = (result: { client?: MqttClient; error?: string }) => {
      if (settled) return;
      settled = true;
      if (!result.client) client.end(true);
      resolve(result);
    };
    client.once("connect", () => finish({ client }));
    client.once("error", (error) => finish({ error: error.message }));
    client.once("close", () => finish({ error: "connection closed" }));
  });
}

/**
 * Connects as real firmware does: a dropped connection is retried with exponential backoff and jitter
 * (the first connection of a new certificate is always dropped while it is registered and provisioned).
 */
export async function connectWithRetry(
  device: DeviceIdentity,
  endpoint: Endpoint,
  options: ConnectOptions = {},
): Promise<ConnectResult> {
  const deadline = Date.now() + (options.deadlineMs ?? 60_000);
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 3_000;
  const firstAttemptAt = Date.now();
  for (let attempt = 1; ; attempt++) {
    const { client, error } = await connectOnce(device, endpoint);
    if (client) {
      options.onAttempt?.(attempt, "connected");
      return { client, attempts: attempt, firstAttemptAt, connectedAt: Date.now() };
    }
    options.onAttempt?.(attempt, "dropped", error);
    const stop = await options.shouldStop?.();
    if (stop !== undefined)
      return {
        client: undefined,
        attempts: attempt,
        firstAttemptAt,
        connectedAt: undefined,
        stopReason: stop,
      };
    const delay = Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
    if (Date.now() + delay > deadline) {
      return {
        client: undefined,
        attempts: attempt,
        firstAttemptAt,
        connectedAt: undefined,
        stopReason: "deadline",
      };
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Publishes with QoS 1; resolves true on PUBACK, false when the connection is closed instead (not authorized). */
export function publishAcknowledged(
  client: MqttClient,
  topic: string,
  payload: string,
  timeoutMs = 5_000,
): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off("close", onClose);
      resolve(ok);
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), timeoutMs);
    client.once("close", onClose);
    client.publish(topic, payload, { qos: 1 }, (error) => finish(error === undefined || error === null));
  });
}

/** Subscribes; resolves true when granted, false on the SUBACK failure code (not authorized). */
export function subscribeGranted(client: MqttClient, filter: string): Promise<boolean> {
  return new Promise((resolve) => {
    client.subscribe(filter, { qos: 1 }, (error, granted) => {
      if (error) return resolve(false);
      resolve((granted ?? []).every((g) => g.qos !== 128));
    });
  });
}
