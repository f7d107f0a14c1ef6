import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createCa, issueCertificate, loadKeyedCertificate } from "../pki/certificates.ts";
import { readKeyFilePems, writeKeyFiles } from "../pki/key-files.ts";

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
  const caFiles = { certificate: path(GATEWAY_FILES.ca), key: path(GATEWAY_FILES.caKey) };
  const serverFiles = { certificate: path(GATEWAY_FILES.server), key: path(GATEWAY_FILES.serverKey) };
  if (Object.values(GATEWAY_FILES).every((name) => existsSync(path(name)))) {
    const [caPem, server] = await Promise.all([
      readFile(caFiles.certificate, "utf8"),
      readKeyFilePems(serverFiles),
    ]);
    return { caPem, certificatePem: server.certificatePem, keyPem: server.privateKeyPem };
  }
  const ca = await createCa({ commonName: "JITR Local Gateway CA" });
  const server = await issueCertificate(ca, {
    subject: { CN: "localhost" },
    sanDnsNames: ["localhost"],
    sanIps: ["127.0.0.1"],
    usage: "server",
    notAfter: new Date(Date.now() + 5 * 365 * 86_400_000),
  });
  await writeKeyFiles(caFiles, ca);
  await writeKeyFiles(serverFiles, server);
  // Loading back proves the files are usable before anything depends on them.
  await loadKeyedCertificate(server.certificatePem, server.privateKeyPem);
  return { caPem: ca.certificatePem, certificatePem: server.certificatePem, keyPem: server.privateKeyPem };
}
