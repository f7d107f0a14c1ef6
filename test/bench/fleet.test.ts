import type { AddressInfo } from "node:net";
import { createServer } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runProcessFleet } from "../../bench/devices/fleet.ts";
import { createCa, issueCertificate } from "../../pki/certificates.ts";

/** A TLS endpoint that drops every connection once the handshake is done, as the gateway drops a pending device. */
let server: ReturnType<typeof createServer>;
let endpoint: { host: string; port: number; caPem: string };
let identity: { clientId: string; certificatePem: string; privateKeyPem: string };

beforeAll(async () => {
  const ca = await createCa({ commonName: "Fleet test CA" });
  const serverCert = await issueCertificate(ca, {
    subject: { CN: "127.0.0.1" },
    sanIps: ["127.0.0.1"],
    usage: "server",
  });
  const device = await issueCertificate(ca, { subject: { CN: "dev" } });
  identity = { clientId: "dev", certificatePem: device.certificatePem, privateKeyPem: device.privateKeyPem };
  server = createServer(
    {
      cert: serverCert.certificatePem,
      key: serverCert.privateKeyPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => socket.destroy(),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = { host: "127.0.0.1", port: (server.address() as AddressInfo).port, caPem: ca.certificatePem };
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const firstAttemptSpread = async (powerOnSpreadMs: number) => {
  const result = await runProcessFleet({
    endpoint,
    devices: Array.from({ length: 16 }, (_, i) => ({
      deviceId: `dev-${i}`,
      certificateId: `c${i}`,
      identity,
      topic: "t",
    })),
    retry: "fixed",
    timeScale: 0.001,
    deadlineMs: 100,
    powerOnSpreadMs,
    seed: 7,
  });
  const starts = result.reports.map((r) => r.firstAttemptAt);
  return { spread: Math.max(...starts) - Math.min(...starts), reports: result.reports };
};

describe("the benchmark's device fleet powering on", () => {
  it("starts every device at once by default, and over the given spread when asked", async () => {
    // Act
    const together = await firstAttemptSpread(0);
    const spread = await firstAttemptSpread(3_000);
    // Assess: every device ran to its deadline either way; only the moments of the first attempts differ
    expect([together.reports.length, spread.reports.length]).toEqual([16, 16]);
    expect(spread.reports.every((r) => r.result === "deadline" && r.attempts >= 1)).toBe(true);
    expect(together.spread).toBeLessThan(1_000);
    expect(spread.spread).toBeGreaterThan(1_000);
    expect(spread.spread).toBeLessThan(3_000 + 1_000);
  }, 60_000);
});
