import type { LedgerStore, Page, PageRequest } from "../ports.ts";
import type { AllowlistRecord, LedgerEntry } from "../types.ts";

/** Ledger key of changes to a mapping ('#' is outside the thing-name set, so no device collides). */
export const mappingLedgerKey = (selector: string): string => `#mapping:${selector}`;
/** Ledger key of changes to a lot. */
export const lotLedgerKey = (lot: string): string => `#lot:${lot}`;

/** Every page of a listing, in order. */
export async function* everything<T>(
  read: (page: PageRequest) => Promise<Page<T>>,
  limit = 500,
): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await read(cursor === undefined ? { limit } : { limit, cursor });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** The ledger entry that last set the certificate's policy: its provisioning, or a reconcile since. */
export async function provisionedEntryOf(
  ledger: LedgerStore,
  deviceId: string,
  certificateId: string,
): Promise<LedgerEntry | undefined> {
  for await (const entry of everything((page) => ledger.history(deviceId, page), 25)) {
    if (entry.certificateId !== certificateId) continue;
    if (entry.kind === "provisioned" || isReconcileEntry(entry)) return entry;
  }
  return undefined;
}

/** The per-device policy the certificate holds, from its `provisioned` ledger entry or a reconcile since. */
export async function perDevicePolicyOf(
  ledger: LedgerStore,
  deviceId: string,
  certificateId: string,
): Promise<string | undefined> {
  const entry = await provisionedEntryOf(ledger, deviceId, certificateId);
  return entry?.perDevicePolicy === true ? entry.policyName : undefined;
}

/** True for the entry of a reconcile that set a device's policy. */
export const isReconcileEntry = (entry: LedgerEntry): boolean =>
  entry.kind === "admin" && entry.change?.action === "reconcile" && entry.policyName !== undefined;

/** The CA of the certificate a device is bound to, from its ledger (pinned on the record when it is). */
export async function caOf(ledger: LedgerStore, record: AllowlistRecord): Promise<string | undefined> {
  if (record.caCertificateId !== undefined) return record.caCertificateId;
  for await (const entry of everything((page) => ledger.history(record.deviceId, page), 25)) {
    if (
      entry.caCertificateId !== undefined &&
      (record.certificateId === undefined || entry.certificateId === record.certificateId)
    ) {
      return entry.caCertificateId;
    }
  }
  return undefined;
}
