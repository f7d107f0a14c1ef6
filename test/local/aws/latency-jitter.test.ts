import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { IoTClient, ListThingsCommand } from "@aws-sdk/client-iot";
import { afterEach, describe, expect, it } from "vitest";
import { createIotHandler } from "../../../local/aws/iot/http.ts";
import { RateLimiter, resolveFaults } from "../../../local/aws/iot/limits.ts";
import { IotRegistry } from "../../../local/aws/iot/registry.ts";

describe("latency jitter (fault injection)", () => {
  const saved = process.env.JITR_LOCAL_FAULT_LATENCY_JITTER_MS;
  let server: Server | undefined;
  afterEach(async () => {
    if (saved === undefined) delete process.env.JITR_LOCAL_FAULT_LATENCY_JITTER_MS;
    else process.env.JITR_LOCAL_FAULT_LATENCY_JITTER_MS = saved;
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  it("reads JITR_LOCAL_FAULT_LATENCY_JITTER_MS, defaults to none and refuses a negative figure", () => {
    delete process.env.JITR_LOCAL_FAULT_LATENCY_JITTER_MS;
    expect(resolveFaults(undefined).latencyJitterMs).toBe(0);
    process.env.JITR_LOCAL_FAULT_LATENCY_JITTER_MS = "250";
    expect(resolveFaults(undefined).latencyJitterMs).toBe(250);
    expect(resolveFaults({ latencyJitterMs: 40 }).latencyJitterMs).toBe(40);
    expect(() => resolveFaults({ latencyJitterMs: -1 })).toThrow(/latencyJitterMs must not be negative/);
  });

  it("delays each IoT request by a drawn share of the jitter on top of the fixed latency", async () => {
    const registry = new IotRegistry({ region: "us-east-1", accountId: "123456789012" });
    const faults = { throttleRate: 0, serverErrorRate: 0, latencyMs: 0, latencyJitterMs: 400 };
    // The draw is 0.5 of 400 ms: every request waits 200 ms.
    const handler = createIotHandler(registry, {
      limiter: new RateLimiter(false),
      faults,
      random: () => 0.5,
    });
    server = createServer((req, res) => void handler(req, res));
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const iot = new IoTClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const start = performance.now();
    await iot.send(new ListThingsCommand({}));
    expect(performance.now() - start).toBeGreaterThanOrEqual(190);
    iot.destroy();
  });
});
