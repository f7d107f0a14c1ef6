import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { certificateIdOfDer } from "../../pki/certificate-id.ts";
import { certificateIdOf, createCa, issueCertificate } from "../../pki/certificates.ts";
import { readKeyFilePems, readKeyFiles, writeKeyFiles } from "../../pki/key-files.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jitr-pki-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe("pki", () => {
  it("computes a PEM certificate's id as the SHA-256 of its DER", async () => {
    // Prepare
    const ca = await createCa({ commonName: "Id CA" });

    // Act
    const id = certificateIdOf(ca.certificatePem);

    // Assess
    expect(id).toBe(certificateIdOfDer(new X509Certificate(ca.certificatePem).raw));
    expect(id).toMatch(/^[0-9a-f]{64}$/);
  });

  it("writes a certificate with an owner-only key and reads them back ready for signing", async () => {
    // Prepare
    const ca = await createCa({ commonName: "Files CA" });
    const files = { certificate: join(dir, "ca.pem"), key: join(dir, "ca.key") };

    // Act
    await writeKeyFiles(files, ca);
    const loaded = await readKeyFiles(files);
    const pems = await readKeyFilePems(files);
    const issued = await issueCertificate(loaded, { subject: { CN: "dev-1" } });

    // Assess
    expect((await stat(files.key)).mode & 0o777).toBe(0o600);
    expect(pems).toEqual({ certificatePem: ca.certificatePem, privateKeyPem: ca.privateKeyPem });
    expect(
      new X509Certificate(issued.certificatePem).verify(new X509Certificate(ca.certificatePem).publicKey),
    ).toBe(true);
  });
});
