import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCa, issueCertificate, loadKeyedCertificate } from "../cli/pki.ts";

/** Files of the gateway's own PKI inside the data directory. */
export const GATEWAY_FILES = {
  ca: "gateway-ca.pem",
  caKey: "gateway-ca.key",
  server: "gateway-server.pem",
  serverKey: "gateway-server.key",
} as const;

/**
 * The gateway's server CA and TLS certificate (for 127.0.0.1 and localhost), created on first use and
 * kept in the data directory, so devices can trust `gateway-ca.pem` across restarts.
 */
export async function ensureGatewayTls(
  dataDir: string,
): Promise<{ caPem: string; certificatePem: string; keyPem: string }> {
  const path = (name: string) => join(dataDir, name);
  if (Object.values(GATEWAY_FILES).every((name) => existsSync(path(name)))) {
    const [caPem, certificatePem, keyPem] = await Promise.all([
      readFile(path(GATEWAY_FILES.ca), "utf8"),
      readFile(path(GATEWAY_FILES.server), "utf8"),
      readFile(path(GATEWAY_FILES.serverKey), "utf8"),
    ]);
    return { caPem, certificatePem, keyPem };
  }
  const ca = await createCa({ commonName: "JITR Local Gateway CA" });
  const server = await issueCertificate(ca, {
    subject: { CN: "localhost" },
    sanDnsNames: ["localhost"],
    sanIps: ["127.0.0.1"],
    usage: "server",
    notAfter: new Date(Date.now() + 5 * 365 * 86_400_000),
  });
  await writeFile(path(GATEWAY_FILES.ca), ca.certificatePem);
  await writeFile(path(GATEWAY_FILES.caKey), ca.privateKeyPem, { mode: 0o600 });
  await writeFile(path(GATEWAY_FILES.server), server.certificatePem);
  await writeFile(path(GATEWAY_FILES.serverKey), server.privateKeyPem, { mode: 0o600 });
  // Loading back proves the files are usable before anything depends on them.
  await loadKeyedCertificate(server.certificatePem, server.privateKeyPem);
  return { caPem: ca.certificatePem, certificatePem: server.certificatePem, keyPem: server.privateKeyPem };
}
