/** A certificate and its private key on disk: the key readable by its owner only. */
import { open, readFile, writeFile } from "node:fs/promises";
import { type KeyedCertificate, loadKeyedCertificate } from "./certificates.ts";

/** Where a certificate and its private key are kept. */
export interface KeyFiles {
  certificate: string;
  key: string;
}

/**
 * Writes a private key (or another secret) readable by its owner only, also when it replaces a file that
 * was readable by others: the file is emptied and made owner-only before the secret goes in.
 */
export async function writeSecret(path: string, pem: string): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    await file.chmod(0o600);
    await file.writeFile(pem);
  } finally {
    await file.close();
  }
}

/** Writes a certificate and its private key, the key owner-only. */
export async function writeKeyFiles(
  files: KeyFiles,
  keyed: Pick<KeyedCertificate, "certificatePem" | "privateKeyPem">,
): Promise<void> {
  await writeFile(files.certificate, keyed.certificatePem);
  await writeSecret(files.key, keyed.privateKeyPem);
}

/** Reads a certificate and its private key back from their files, ready for signing. */
export async function readKeyFiles(files: KeyFiles): Promise<KeyedCertificate> {
  const { certificatePem, privateKeyPem } = await readKeyFilePems(files);
  return loadKeyedCertificate(certificatePem, privateKeyPem);
}

/** Reads the PEM texts of a certificate and its private key. */
export async function readKeyFilePems(
  files: KeyFiles,
): Promise<Pick<KeyedCertificate, "certificatePem" | "privateKeyPem">> {
  const [certificatePem, privateKeyPem] = await Promise.all([
    readFile(files.certificate, "utf8"),
    readFile(files.key, "utf8"),
  ]);
  return { certificatePem, privateKeyPem };
}
