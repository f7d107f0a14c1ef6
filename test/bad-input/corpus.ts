import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { paginateScan } from "@aws-sdk/lib-dynamodb";
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
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { createCa, type KeyedCertificate } from "../../pki/certificates.ts";
import type { startTestStack } from "../support/local-stack.ts";

/*
 * The bad-input corpus: cases are data under test/fixtures/bad-input/ (one JSON object per line, see its
 * README); this module reads them, builds the certificates they describe, and snapshots what a case may
 * change (the tables and the IoT registry), so a runner can check that nothing changed beyond the answer.
 */

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "bad-input");

/** The cases of one manifest: every non-empty line that is not a `//` comment, parsed, with its line number. */
export function readCases<T extends { name: string }>(file: string): (T & { line: number })[] {
  const text = readFileSync(join(FIXTURES, file), "utf8");
  const cases: (T & { line: number })[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("//")) return;
    let value: T;
    try {
      value = JSON.parse(line) as T;
    } catch {
      throw new Error(`${file}:${index + 1}: not a JSON object`);
    }
    if (typeof value.name !== "string") throw new Error(`${file}:${index + 1}: a case needs a name`);
    cases.push({ ...value, line: index + 1 });
  });
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`${file}:${c.line}: the name ${c.name} is taken`);
    names.add(c.name);
  }
  return cases;
}

/** Expands the corpus's string templates: `{{repeat:N:s}}` is s repeated N times. */
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

/** What a case may change: every table's items (the idempotency store aside: Powertools' own) and the IoT registry. */
export interface Snapshot {
  tables: Record<string, Record<string, unknown>[]>;
  /** Certificates by id: status, CA, attached policies and things. */
  certificates: Record<
    string,
    { status: string; caCertificateId?: string; policies: string[]; things: string[] }
  >;
  /** The rest of the registry as it persists it (things, types, groups, policies, attachments). */
  registry: Omit<ReturnType<TestStack["stack"]["aws"]["iot"]["inventory"]>, "certificates">;
}

/** Reads the tables through the real SDK, and the IoT registry's whole inventory. */
export async function snapshot(t: TestStack): Promise<Snapshot> {
  const doc = createDocumentClient(t.stack.clients.dynamo);
  const tables: Snapshot["tables"] = {};
  const names = t.stack.tables;
  const jobs = names.jobs === undefined ? [] : [names.jobs];
  for (const table of [names.allowlist, names.mappings, names.lots, names.ledger, ...jobs]) {
    const items: Record<string, unknown>[] = [];
    for await (const page of paginateScan({ client: doc }, { TableName: table }))
      items.push(...(page.Items ?? []));
    tables[table] = items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  const { certificates: records, ...registry } = t.stack.aws.iot.inventory();
  const certificates: Snapshot["certificates"] = {};
  for (const c of records) {
    certificates[c.certificateId] = {
      status: c.status,
      ...(c.caCertificateId !== undefined ? { caCertificateId: c.caCertificateId } : {}),
      policies: t.stack.aws.iot.policiesForPrincipal(c.certificateArn).sort(),
      things: t.stack.aws.iot.thingsForPrincipal(c.certificateArn).sort(),
    };
  }
  return { tables, certificates, registry };
}

/** The ledger entries `after` holds that `before` does not. */
export function newLedgerEntries(t: TestStack, before: Snapshot, after: Snapshot): Record<string, unknown>[] {
  const table = t.stack.tables.ledger;
  const seen = new Set((before.tables[table] ?? []).map((e) => JSON.stringify(e)));
  return (after.tables[table] ?? []).filter((e) => !seen.has(JSON.stringify(e)));
}

/** `after` with the ledger's new entries dropped, to compare the rest with `before`. */
export function withoutLedgerGrowth(t: TestStack, before: Snapshot, after: Snapshot): Snapshot {
  const table = t.stack.tables.ledger;
  return { ...after, tables: { ...after.tables, [table]: before.tables[table] ?? [] } };
}
