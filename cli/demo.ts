/**
 * The demo fleet of `jitr local --devices N`: a demo CA registered with auto-registration, example
 * allowlist records, mappings and a lot, then N devices — most allowlisted, a few unknown, one blocked,
 * one clone of an allowlisted device — each behaving as real firmware does.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  type IoTClient,
} from "@aws-sdk/client-iot";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoLedger } from "../adapters/dynamo/ledger.ts";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import type { TableNames } from "../adapters/tables.ts";
import type { AllowlistRecord, Lot, PolicyMapping } from "../domain/types.ts";
import { certificateIdOf, createCa, issueCertificate } from "../pki/certificates.ts";
import { readKeyFilePems, readKeyFiles, writeKeyFiles } from "../pki/key-files.ts";
import { caKeyFiles, deviceFiles, registerCa, writeCa } from "./ca.ts";
import type { Expectation, FleetDevice, FleetOptions } from "./fleet.ts";

/** Where a demo fleet is set up: SDK clients pointed at an AWS endpoint, and the service's tables. */
export interface DemoTarget {
  clients: { iot: IoTClient; dynamo: DynamoDBClient };
  tables: TableNames;
}

/** Names that keep two fleets (the `jitr local` demo, a `jitr simulate` run) apart. */
export interface FleetNaming {
  prefix: string;
  lot: string;
}

/** The names of the `jitr local` demo fleet. */
export const DEMO_NAMING: FleetNaming = { prefix: "demo", lot: "demo-lot-1" };

/** How a fleet of N splits: most allowlisted, about a tenth unknown, one blocked and one clone (N >= 4). */
export function demoComposition(n: number): {
  allowlisted: number;
  unknown: number;
  blocked: number;
  clone: number;
} {
  if (n < 4) return { allowlisted: n, unknown: 0, blocked: 0, clone: 0 };
  const unknown = Math.max(1, Math.round(n / 10));
  return { allowlisted: n - unknown - 2, unknown, blocked: 1, clone: 1 };
}

const pad = (i: number) => String(i).padStart(4, "0");

async function ensureDemoCa(stack: DemoTarget, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const files = caKeyFiles(dir);
  if (!existsSync(files.certificate))
    await writeCa(dir, await createCa({ commonName: "JITR Simulated Fleet CA" }));
  const caId = certificateIdOf(await readFile(files.certificate, "utf8"));
  const registered = await stack.clients.iot
    .send(new DescribeCACertificateCommand({ certificateId: caId }))
    .then(() => true)
    .catch(() => false);
  if (!registered) await registerCa(stack.clients.iot, dir, { autoRegistration: true });
  return caId;
}

/** Device material kept under the data directory, so a restart reconnects the same devices. */
async function ensureDevice(dir: string, caDir: string, fileId: string, cn: string) {
  const files = deviceFiles(dir, fileId);
  if (!existsSync(files.certificate)) {
    const ca = await readKeyFiles(caKeyFiles(caDir));
    await writeKeyFiles(files, await issueCertificate(ca, { subject: { CN: cn, O: "JITR Demo" } }));
  }
  const { certificatePem, privateKeyPem } = await readKeyFilePems(files);
  return { certificatePem, privateKeyPem, certificateId: certificateIdOf(certificatePem) };
}

/** Writes a record unless one exists, so a restart keeps what an admin changed. */
async function putIfAbsent(stack: DemoTarget, table: string, key: string, item: Record<string, unknown>) {
  const doc = createDocumentClient(stack.clients.dynamo);
  await doc
    .send(
      new PutCommand({ TableName: table, Item: item, ConditionExpression: `attribute_not_exists(${key})` }),
    )
    .catch((error: { name?: string }) => {
      if (error.name !== "ConditionalCheckFailedException") throw error;
    });
}

/** Sets up the demo CA, records and devices; returns the fleet to run. */
export async function prepareDemo(
  stack: DemoTarget,
  dataDir: string,
  n: number,
  naming: FleetNaming = DEMO_NAMING,
): Promise<FleetDevice[]> {
  const caDir = join(dataDir, naming.prefix, "ca");
  const deviceDir = join(dataDir, naming.prefix, "devices");
  await mkdir(deviceDir, { recursive: true });
  const caId = await ensureDemoCa(stack, caDir);
  const mix = demoComposition(n);
  const now = new Date().toISOString();
  const meta = { version: 1, createdAt: now, updatedAt: now, updatedBy: "jitr-local-demo" };

  const mappings: PolicyMapping[] = [
    { selector: "default", policy: { template: "sensor" }, attributes: { fleet: "demo" }, ...meta },
    { selector: "profile:gateway", policy: { template: "gateway" }, ...meta },
  ];
  const lot: Lot & Record<string, unknown> = {
    lot: naming.lot,
    maxDevices: Math.max(1, mix.allowlisted),
    provisionedCount: 0,
    version: 1,
  };
  await Promise.all([
    ...mappings.map((m) => putIfAbsent(stack, stack.tables.mappings, "selector", { ...m })),
    putIfAbsent(stack, stack.tables.lots, "lot", lot),
  ]);

  const devices: FleetDevice[] = [];
  const add = async (
    deviceId: string,
    kind: string,
    expect: Expectation,
    record?: AllowlistRecord,
    fileId = deviceId,
    after?: string,
  ) => {
    if (record) await putIfAbsent(stack, stack.tables.allowlist, "deviceId", { ...record });
    const material = await ensureDevice(deviceDir, caDir, fileId, deviceId);
    devices.push({
      deviceId,
      kind,
      expect,
      certificateId: material.certificateId,
      identity: {
        clientId: deviceId,
        certificatePem: material.certificatePem,
        privateKeyPem: material.privateKeyPem,
      },
      ...(after ? { after } : {}),
    });
  };
  for (let i = 1; i <= mix.allowlisted; i++) {
    const id = `${naming.prefix}-sensor-${pad(i)}`;
    await add(id, "allowlisted", "provisioned", {
      deviceId: id,
      status: "allowed",
      lot: naming.lot,
      caCertificateId: caId,
      attributes: { model: "ds-1" },
      ...meta,
    });
  }
  for (let i = 1; i <= mix.unknown; i++)
    await add(`${naming.prefix}-unknown-${pad(i)}`, "unknown", "quarantined");
  if (mix.blocked > 0) {
    const id = `${naming.prefix}-blocked-0001`;
    await add(id, "blocked", "revoked", {
      deviceId: id,
      status: "blocked",
      note: "reported stolen",
      ...meta,
    });
  }
  if (mix.clone > 0) {
    const original = `${naming.prefix}-sensor-0001`;
    await add(original, "clone", "revoked", undefined, `${naming.prefix}-clone-0001`, original);
  }
  return devices;
}

/**
 * The oracles a fleet run needs, answered by the registry and the ledger. `statusOf` replaces the
 * DescribeCertificate call when the caller can read the registry directly (in the same process), so the
 * oracle does not spend the API quota the service is measured against.
 */
export function demoOracles(
  stack: DemoTarget,
  statusOf?: (certificateId: string) => string | undefined,
): Pick<FleetOptions, "certificateStatus" | "reasonFor"> {
  const ledger = new DynamoLedger({
    doc: createDocumentClient(stack.clients.dynamo),
    table: stack.tables.ledger,
  });
  return {
    certificateStatus: async (certificateId) =>
      statusOf
        ? statusOf(certificateId)
        : stack.clients.iot
            .send(new DescribeCertificateCommand({ certificateId }))
            .then((r) => r.certificateDescription?.status)
            .catch(() => undefined),
    // The certificate's status is set before its ledger entry is written, so the entry may lag a moment.
    reasonFor: async (_deviceId, certificateId) => {
      for (let attempt = 0; attempt < 30; attempt++) {
        const page = await ledger.historyOfCertificate(certificateId, { limit: 5 });
        const reason = page.items.find((e) => e.kind === "denied")?.reason;
        if (reason !== undefined) return reason;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return undefined;
    },
  };
}
