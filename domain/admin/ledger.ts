import type { LedgerStore, Page, PageRequest } from "../ports.ts";
import type { AllowlistRecord } from "../types.ts";

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

/** The per-device policy the certificate was provisioned with, from its `provisioned` ledger entry. */
export async function perDevicePolicyOf(
  ledger: LedgerStore,
  deviceId: string,
  certificateId: string,
): Promise<string | undefined> {
  for await (const entry of everything((page) => ledger.history(deviceId, page), 25)) {
    if (entry.certificateId === certificateId && entry.kind === "provisioned") {
      return entry.perDevicePolicy === true ? entry.policyName : undefined;
    }
  }
  return undefined;
}

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
