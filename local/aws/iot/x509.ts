import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { BasicConstraintsExtension, cryptoProvider, X509Certificate } from "@peculiar/x509";
import { certificateIdOfDer } from "../../../pki/certificate-id.ts";

cryptoProvider.set(webcrypto as unknown as Crypto);

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into its certificate blocks. */
export function pemBlocks(pem: string): string[] {
  return pem.match(PEM_BLOCK) ?? [];
}

/**
 * Parses one certificate from PEM (the first block of a bundle) or DER bytes.
 * Returns undefined when the input is not a certificate.
 */
export function parseCertificate(input: string | Uint8Array): X509Certificate | undefined {
  try {
    if (typeof input === "string") {
      const first = pemBlocks(input)[0];
      if (first === undefined) return undefined;
      return new X509Certificate(first);
    }
    return new X509Certificate(Uint8Array.from(input));
  } catch {
    return undefined;
  }
}

/** The AWS IoT certificate id: lowercase hex SHA-256 of the DER encoding. */
export function certificateIdOf(cert: X509Certificate): string {
  return certificateIdOfDer(cert.rawData);
}

/** The certificate as one PEM block with a trailing newline. */
export function toPem(cert: X509Certificate): string {
  return `${cert.toString("pem")}\n`;
}

/** True when `issuer` signed `cert` (name chaining and signature check). */
export async function isSignedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/** False only when the certificate explicitly says it is not a CA (basicConstraints cA=false). */
export function mayBeCa(cert: X509Certificate): boolean {
  const bc = cert.getExtension(BasicConstraintsExtension);
  return bc === null || bc.ca;
}

/** True when `now` lies within the certificate's validity window. */
export function isWithinValidity(cert: X509Certificate, now = new Date()): boolean {
  return cert.notBefore.getTime() <= now.getTime() && now.getTime() <= cert.notAfter.getTime();
}

/** The subject's common name, if it has one. */
export function commonNameOf(cert: X509Certificate): string | undefined {
  return cert.subjectName.getField("CN")[0];
}
