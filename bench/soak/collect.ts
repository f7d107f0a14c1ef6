/**
 * Reads what the soak's checker needs from the registry and the tables through the real AWS SDK, against
 * the endpoint the service used (local or not): certificates with their things and policies, things with
 * their principals, the fleet's per-device policies, and the allowlist, lots and ledger tables.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  GetPolicyCommand,
  type IoTClient,
  ListAttachedPoliciesCommand,
  ListCertificatesCommand,
  ListPrincipalThingsCommand,
  ListTargetsForPolicyCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
} from "@aws-sdk/client-iot";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import type { TableNames } from "../../adapters/tables.ts";
import { policyNameFor } from "../../domain/decide.ts";
import type { AllowlistRecord, LedgerEntry, Lot } from "../../domain/types.ts";
import type { FleetCertificate, RegistryCertificate, RegistryPolicy, SoakState } from "./check.ts";

export interface CollectTarget {
  clients: { iot: IoTClient; dynamo: DynamoDBClient };
  tables: TableNames;
}

export interface CollectOptions {
  fleet: FleetCertificate[];
  /** Per-device policies to look for: the template they are rendered from and the deployment's policy prefix. */
  perDevicePolicy?: { template: string; prefix: string };
  /** Registry calls in flight at once. */
  parallel?: number;
}

/** Runs `fn` over `items`, `parallel` at a time. */
async function mapLimited<T, R>(items: T[], parallel: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  return out;
}

async function scanAll<T>(target: CollectTarget, table: string): Promise<T[]> {
  const doc = createDocumentClient(target.clients.dynamo);
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...((page.Items ?? []) as T[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The id at the end of a certificate ARN. */
export const idOfArn = (arn: string) => arn.slice(arn.lastIndexOf("/") + 1);

/** Every certificate in the registry, page by page. */
export async function listCertificates(
  iot: IoTClient,
): Promise<{ certificateId: string; certificateArn: string; status: string }[]> {
  const listed: { certificateId: string; certificateArn: string; status: string }[] = [];
  let marker: string | undefined;
  do {
    const page = await iot.send(new ListCertificatesCommand({ pageSize: 250, marker }));
    for (const c of page.certificates ?? [])
      if (c.certificateId && c.certificateArn)
        listed.push({
          certificateId: c.certificateId,
          certificateArn: c.certificateArn,
          status: c.status ?? "",
        });
    marker = page.nextMarker;
  } while (marker);
  return listed;
}

/** The state after a run, as the checker reads it. */
export async function collectSoakState(target: CollectTarget, options: CollectOptions): Promise<SoakState> {
  const { iot } = target.clients;
  const parallel = options.parallel ?? 8;

  const listed = await listCertificates(iot);
  const certificates: RegistryCertificate[] = await mapLimited(listed, parallel, async (c) => {
    const [things, policies] = await Promise.all([
      iot.send(new ListPrincipalThingsCommand({ principal: c.certificateArn })),
      iot.send(new ListAttachedPoliciesCommand({ target: c.certificateArn })),
    ]);
    return {
      certificateId: c.certificateId,
      status: c.status,
      things: things.things ?? [],
      policies: (policies.policies ?? []).flatMap((p) => (p.policyName ? [p.policyName] : [])),
    };
  });
  const thingNames: string[] = [];
  let token: string | undefined;
  do {
    const page = await iot.send(new ListThingsCommand({ maxResults: 250, nextToken: token }));
    for (const t of page.things ?? []) if (t.thingName) thingNames.push(t.thingName);
    token = page.nextToken;
  } while (token);
  const things = await mapLimited(thingNames, parallel, async (thingName) => {
    const page = await iot.send(new ListThingPrincipalsCommand({ thingName }));
    return { thingName, principals: (page.principals ?? []).map(idOfArn) };
  });

  const perDevicePolicies: RegistryPolicy[] = [];
  const spec = options.perDevicePolicy;
  if (spec) {
    const deviceIds = [...new Set(options.fleet.map((f) => f.deviceId))];
    const found = await mapLimited(deviceIds, parallel, async (deviceId) => {
      const policyName = policyNameFor(spec.prefix, spec.template, deviceId);
      const exists = await iot
        .send(new GetPolicyCommand({ policyName }))
        .then(() => true)
        .catch((error: { name?: string }) => {
          if (error.name === "ResourceNotFoundException") return false;
          throw error;
        });
      if (!exists) return undefined;
      const targets = await iot.send(new ListTargetsForPolicyCommand({ policyName }));
      return { policyName, deviceId, targets: (targets.targets ?? []).map(idOfArn) };
    });
    for (const p of found) if (p) perDevicePolicies.push(p);
  }

  const [records, lots, ledger] = await Promise.all([
    scanAll<AllowlistRecord>(target, target.tables.allowlist),
    scanAll<Lot>(target, target.tables.lots),
    scanAll<LedgerEntry>(target, target.tables.ledger),
  ]);
  return { fleet: options.fleet, certificates, things, perDevicePolicies, records, lots, ledger };
}
