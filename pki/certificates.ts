/**
 * Certificates and keys of the project's own PKI (ECDSA P-256, SHA-256): a fleet owner's CA, device
 * and TLS server certificates issued by it, and loading a certificate with its key back for signing.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  cryptoProvider,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type JsonGeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "@peculiar/x509";
import { certificateIdOfDer } from "./certificate-id.ts";

cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_KEY: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;

/** A certificate with its private key, both PEM, plus the parsed forms for signing further certificates. */
export interface KeyedCertificate {
  certificatePem: string;
  privateKeyPem: string;
  certificate: X509Certificate;
  keys: CryptoKeyPair;
}

/** Subject attributes a device certificate may carry. */
export interface SubjectFields {
  CN?: string;
  serialNumber?: string;
  O?: string;
  OU?: string;
  C?: string;
  ST?: string;
  L?: string;
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
}

async function privateKeyPem(keys: CryptoKeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as unknown as webcrypto.CryptoKey);
  return PemConverter.encode(pkcs8, "PRIVATE KEY");
}

/** Loads a certificate and its PKCS#8 private key from PEM, for signing. */
export async function loadKeyedCertificate(
  certificatePem: string,
  keyPem: string,
): Promise<KeyedCertificate> {
  const certificate = new X509Certificate(certificatePem);
  const [der] = PemConverter.decode(keyPem);
  if (der === undefined) throw new Error("the private key file holds no PEM block");
  const privateKey = await webcrypto.subtle.importKey("pkcs8", der, EC_KEY, true, ["sign"]);
  const publicKey = await certificate.publicKey.export(EC_KEY, ["verify"]);
  return {
    certificatePem,
    privateKeyPem: keyPem,
    certificate,
    keys: { privateKey: privateKey as unknown as CryptoKey, publicKey },
  };
}

function subjectName(fields: SubjectFields): string {
  const order: (keyof SubjectFields)[] = ["C", "ST", "L", "O", "OU", "serialNumber", "CN"];
  const escapeValue = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1");
  const parts = order.flatMap((key) => {
    const value = fields[key];
    if (value === undefined) return [];
    // serialNumber (2.5.4.5) is written by OID so every reader finds it.
    return [`${key === "serialNumber" ? "2.5.4.5" : key}=${escapeValue(value)}`];
  });
  return parts.join(", ");
}

/** Creates a self-signed CA certificate (EC P-256, SHA-256), as a fleet owner's CA. */
export async function createCa(opts: {
  commonName: string;
  days?: number;
  now?: Date;
}): Promise<KeyedCertificate> {
  const keys = await generateKeys();
  const now = opts.now ?? new Date();
  const certificate = await X509CertificateGenerator.createSelfSigned({
    name: subjectName({ CN: opts.commonName }),
    keys,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (opts.days ?? 3650) * DAY_MS),
    signingAlgorithm: SIGNING,
    extensions: [
      new BasicConstraintsExtension(true, undefined, true),
      new KeyUsagesExtension(
        KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
        true,
      ),
      await SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certificatePem: certificate.toString("pem"),
    privateKeyPem: await privateKeyPem(keys),
    certificate,
    keys,
  };
}

/** What a leaf certificate carries: its subject, subject alternative names, validity and usage. */
export interface IssueOptions {
  subject: SubjectFields;
  sanUris?: string[];
  sanDnsNames?: string[];
  sanIps?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Client (device) or server (TLS endpoint) certificate. */
  usage?: "client" | "server";
}

/** Issues a leaf certificate signed by the CA. */
export async function issueCertificate(ca: KeyedCertificate, opts: IssueOptions): Promise<KeyedCertificate> {
  const keys = await generateKeys();
  const now = new Date();
  const names: JsonGeneralName[] = [
    ...(opts.sanUris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(opts.sanDnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(opts.sanIps ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const certificate = await X509CertificateGenerator.create({
    subject: subjectName(opts.subject),
    issuer: ca.certificate.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    notBefore: opts.notBefore ?? new Date(now.getTime() - 60_000),
    notAfter: opts.notAfter ?? new Date(now.getTime() + 365 * DAY_MS),
    signingAlgorithm: SIGNING,
    extensions: [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyAgreement, true),
      new ExtendedKeyUsageExtension([
        opts.usage === "server" ? ExtendedKeyUsage.serverAuth : ExtendedKeyUsage.clientAuth,
      ]),
      await AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
      ...(names.length > 0 ? [new SubjectAlternativeNameExtension(names)] : []),
    ],
  });
  return {
    certificatePem: certificate.toString("pem"),
    privateKeyPem: await privateKeyPem(keys),
    certificate,
    keys,
  };
}

/** The AWS certificate id of a PEM certificate (see `certificateIdOfDer`). */
export function certificateIdOf(pem: string): string {
  return certificateIdOfDer(new X509Certificate(pem).rawData);
}
