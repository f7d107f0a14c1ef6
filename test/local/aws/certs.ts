/**
 * Certificate helpers for tests: ECDSA P-256 CAs and device certificates generated with
 * @peculiar/x509 and WebCrypto.
 */
import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import {
  BasicConstraintsExtension,
  cryptoProvider,
  KeyUsageFlags,
  KeyUsagesExtension,
  type X509Certificate,
  X509CertificateGenerator,
} from "@peculiar/x509";

cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface TestCertificate {
  cert: X509Certificate;
  pem: string;
  keys: CryptoKeyPair;
  /** Lowercase hex SHA-256 of the DER (the AWS IoT certificate id). */
  id: string;
}

export async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

function wrap(cert: X509Certificate, keys: CryptoKeyPair): TestCertificate {
  return {
    cert,
    pem: `${cert.toString("pem")}\n`,
    keys,
    id: createHash("sha256").update(Buffer.from(cert.rawData)).digest("hex"),
  };
}

let serial = 1;
const nextSerial = (): string => (serial++).toString(16).padStart(2, "0").padStart(16, "1");

/** A self-signed CA certificate (basicConstraints cA=true). */
export async function createCa(options: { commonName?: string; notBefore?: Date; notAfter?: Date } = {}) {
  const keys = await generateKeys();
  const cert = await X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${options.commonName ?? "Test CA"}, O=JITR Tests`,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new BasicConstraintsExtension(true, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
    ],
  });
  return wrap(cert, keys);
}

/** A leaf certificate signed by `issuer`, with the given subject common name (and optional extra RDNs). */
export async function issueCertificate(
  issuer: TestCertificate,
  options: { commonName: string; extraSubject?: string; notBefore?: Date; notAfter?: Date; isCa?: boolean },
): Promise<TestCertificate> {
  const keys = await generateKeys();
  const subject = `CN=${options.commonName}${options.extraSubject ? `, ${options.extraSubject}` : ""}`;
  const cert = await X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject,
    issuer: issuer.cert.subject,
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: SIGNING,
    extensions: [new BasicConstraintsExtension(options.isCa === true, undefined, true)],
  });
  return wrap(cert, keys);
}

/** The verification certificate RegisterCACertificate wants: CN = registration code, signed by the CA. */
export function verificationCertificate(
  ca: TestCertificate,
  registrationCode: string,
): Promise<TestCertificate> {
  return issueCertificate(ca, { commonName: registrationCode });
}
