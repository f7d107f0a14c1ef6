import "reflect-metadata";
import { webcrypto } from "node:crypto";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonGeneralName,
  type JsonName,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from "@peculiar/x509";
import { createCa, type KeyedCertificate } from "../../pki/certificates.ts";

/*
 * Certificates described as data (odd subjects, serials, validity, extensions, issuers), built for tests
 * such as the bad-input corpus (test/fixtures/bad-input/README.md describes the fields).
 */

/** Expands test data's string templates: `{{repeat:N:s}}` is s repeated N times. */
export function expand(value: unknown): unknown {
  if (typeof value === "string") {
    return value.replace(/\{\{repeat:(\d+):([^}]*)\}\}/g, (_, n: string, s: string) => s.repeat(Number(n)));
  }
  if (Array.isArray(value)) return value.map(expand);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [expand(k) as string, expand(v)]));
  }
  return value;
}

/** A certificate as a case describes it (see the README). */
export interface CertificateSpec {
  /** A distinguished name string (`CN=a, O=b`; `#hex` for a raw DER value) or RDNs (`[{"CN":["a"],"O":["b"]}]`). */
  subject: string | JsonName;
  /** Serial number, hex (a high first bit makes it negative). */
  serial?: string;
  /** `fleet` (the registered CA, default) or `stranger` (a CA the registry does not know). */
  issuer?: "fleet" | "stranger";
  /** Validity relative to now, in milliseconds. */
  notBeforeMs?: number;
  notAfterMs?: number;
  /** `device` (default: client auth), `none`, or a list of named extensions. */
  extensions?: "device" | "none" | string[];
  sanUris?: string[];
  sanDnsNames?: string[];
}

const DAY_MS = 86_400_000;
const SIGNING = { name: "ECDSA", hash: "SHA-256" };

/** Builds certificates from specs, signed by the fleet CA or by a stranger CA made once. */
export class CertificateFactory {
  private stranger: KeyedCertificate | undefined;
  private readonly keys: Promise<CryptoKeyPair>;

  constructor(private readonly fleet: KeyedCertificate) {
    // one device key pair for every case: keys do not matter to the decision, and generating is slow
    this.keys = webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ]) as unknown as Promise<CryptoKeyPair>;
  }

  async build(spec: CertificateSpec): Promise<string> {
    if (spec.issuer === "stranger" && this.stranger === undefined) {
      this.stranger = await createCa({ commonName: "Stranger CA" });
    }
    const signer = spec.issuer === "stranger" && this.stranger !== undefined ? this.stranger : this.fleet;
    const keys = await this.keys;
    const now = Date.now();
    const names: JsonGeneralName[] = [
      ...(spec.sanUris ?? []).map((value) => ({ type: "url" as const, value })),
      ...(spec.sanDnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ];
    const certificate = await X509CertificateGenerator.create({
      subject: expand(spec.subject) as string | JsonName,
      issuer: signer.certificate.subject,
      publicKey: keys.publicKey,
      signingKey: signer.keys.privateKey,
      ...(spec.serial !== undefined ? { serialNumber: spec.serial } : {}),
      notBefore: new Date(now + (spec.notBeforeMs ?? -60_000)),
      notAfter: new Date(now + (spec.notAfterMs ?? 365 * DAY_MS)),
      signingAlgorithm: SIGNING,
      extensions: [
        ...(await extensionsOf(spec.extensions ?? "device", signer)),
        ...(names.length > 0 ? [new SubjectAlternativeNameExtension(names)] : []),
      ],
    });
    return certificate.toString("pem");
  }
}

async function extensionsOf(
  kind: NonNullable<CertificateSpec["extensions"]>,
  signer: KeyedCertificate,
): Promise<Extension[]> {
  if (kind === "none") return [];
  const names =
    kind === "device" ? ["basicConstraints", "keyUsage", "clientAuth", "authorityKeyIdentifier"] : kind;
  const out: Extension[] = [];
  for (const name of names) {
    switch (name) {
      case "basicConstraints":
        out.push(new BasicConstraintsExtension(false, undefined, true));
        break;
      case "basicConstraints-ca":
        out.push(new BasicConstraintsExtension(true, 0, true));
        break;
      case "keyUsage":
        out.push(new KeyUsagesExtension(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyAgreement, true));
        break;
      case "keyUsage-certSign":
        out.push(new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true));
        break;
      case "clientAuth":
        out.push(new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth]));
        break;
      case "serverAuth":
        out.push(new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth]));
        break;
      case "codeSigning":
        out.push(new ExtendedKeyUsageExtension([ExtendedKeyUsage.codeSigning], true));
        break;
      case "authorityKeyIdentifier":
        out.push(await AuthorityKeyIdentifierExtension.create(signer.keys.publicKey));
        break;
      default:
        throw new Error(`unknown extension name ${name}`);
    }
  }
  return out;
}
