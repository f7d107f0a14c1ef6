import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { BasicConstraintsExtension, cryptoProvider, PemConverter, X509Certificate } from "@peculiar/x509";
import { certificateIdOfDer } from "../../../pki/certificate-id.ts";

cryptoProvider.set(webcrypto as unknown as Crypto);

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into its certificate blocks. */
export function pemBlocks(pem: string): string[] {
  return pem.match(PEM_BLOCK) ?? [];
}

/**
 * A map that forgets its oldest entries beyond `limit`: the emulator's memo of work whose answer a key fixes
 * for good (a certificate's parse by its DER hash, a signature check by both certificates' hashes).
 */
class Memo<V> {
  readonly #entries = new Map<string, V>();
  constructor(readonly limit: number) {}

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  set(key: string, value: V): void {
    this.#entries.set(key, value);
    if (this.#entries.size > this.limit) this.#entries.delete(this.#entries.keys().next().value as string);
  }
}

/**
 * Parsed certificates by the SHA-256 of their DER (about 4 KB each). A device that reconnects while its
 * certificate is registered, throttled or pending is parsed once, not on every TLS connection.
 */
const parsed = new Memo<X509Certificate>(8_192);
/** Signature checks by "certificate id/issuer id": a signature over fixed bytes is valid or not for good. */
const signatures = new Memo<boolean>(16_384);

/**
 * Parses one certificate from PEM (the first block of a bundle) or DER bytes.
 * Returns undefined when the input is not a certificate.
 */
export function parseCertificate(input: string | Uint8Array): X509Certificate | undefined {
  try {
    let der: Uint8Array<ArrayBuffer>;
    if (typeof input === "string") {
      const first = pemBlocks(input)[0];
      const decoded = first === undefined ? undefined : PemConverter.decode(first)[0];
      if (decoded === undefined) return undefined;
      der = new Uint8Array(decoded);
    } else {
      der = Uint8Array.from(input);
    }
    const id = certificateIdOfDer(der);
    const known = parsed.get(id);
    if (known) return known;
    const cert = new X509Certificate(der);
    parsed.set(id, cert);
    return cert;
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
  const key = `${certificateIdOf(cert)}/${certificateIdOf(issuer)}`;
  const known = signatures.get(key);
  if (known !== undefined) return known;
  let signed = false;
  if (cert.issuer === issuer.subject) {
    try {
      signed = await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
    } catch {
      signed = false;
    }
  }
  signatures.set(key, signed);
  return signed;
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
