import type { AllowlistPort, LotPort } from "./ports.ts";

/*
 * A device's place in its lot (invariant I6: a device is counted in its lot exactly once while it holds
 * a place, whatever retries, crashes or races happen). Two items take part, the device's allowlist
 * record (its mark `lotCounted: <lot>`) and the lot's `provisionedCount`, and they are written together,
 * in one transaction: a place is taken (mark + count) or given back (unmark + count down) whole or not at
 * all. A run that crashes, or loses the answer, leaves either both writes or neither; its retry reads the
 * record, and a marked record means a counted device.
 *
 * Taking a place (a device's first provisioning, bound to the run's certificate): the mark is written only
 * if the record is bound to the certificate and holds no place, the count only under `maxDevices`. A run
 * that finds the record marked relies on the mark and counts nothing; its binding completes only while
 * the mark is there.
 *
 * Giving a place back (deprovision, removing the record, undoing a failed first provisioning): the mark
 * goes only if the record is still as read (the lot, the binding), so of two releasers one gives it back.
 *
 * Records written by an earlier version may carry a release claim (`lotReleaseStartedAt`, a release done
 * in three writes that stopped half way). A fresh one is taken as a release under way (`busy`); one older
 * than LOT_RELEASE_STALE_MS is given back over. Such a record's count may be one low (the earlier design's
 * gap); reconcile recounts lots from the marks.
 */

/** How long a release claim left by an earlier version may stay before a release goes over it. */
export const LOT_RELEASE_STALE_MS = 5 * 60_000;

/** The ports a lot place is given back through (it is taken with `LotPort.takePlace`, one write). */
export interface LotPlacePorts {
  allowlist: Pick<AllowlistPort, "get">;
  lots: Pick<LotPort, "givePlaceBack">;
}

/**
 * What giving a place back ended in: `released` (this call gave back the place in `lot`), `none` (the
 * record holds no place, or is bound otherwise than expected), `busy` (another request is giving it
 * back, or the record changed while this one tried).
 */
export type GiveBackOutcome =
  | { outcome: "released"; lot: string }
  | { outcome: "none" }
  | { outcome: "busy" };

/** Reads of the record a release makes in all, when the record keeps changing under it. */
const GIVE_BACK_ATTEMPTS = 3;

/**
 * Gives back the device's lot place if its record holds one and is bound to `boundTo`. A record that
 * changed between the read and the write is read again: another request may have given the place back.
 */
export async function giveBackLotPlace(
  ports: LotPlacePorts,
  deviceId: string,
  boundTo: string | undefined,
  now: Date,
): Promise<GiveBackOutcome> {
  for (let attempt = 1; attempt <= GIVE_BACK_ATTEMPTS; attempt++) {
    const record = await ports.allowlist.get(deviceId);
    const lot = record?.lotCounted;
    if (record === undefined || lot === undefined || record.certificateId !== boundTo)
      return { outcome: "none" };
    const releaseClaim = record.lotReleaseStartedAt;
    if (releaseClaim !== undefined && !isStale(releaseClaim, now)) return { outcome: "busy" };
    if (await ports.lots.givePlaceBack({ deviceId, lot, boundTo, releaseClaim }))
      return { outcome: "released", lot };
  }
  return { outcome: "busy" };
}

/** True when a release claim started long enough ago to count as interrupted (an unreadable one too). */
function isStale(startedAt: string, now: Date): boolean {
  const started = Date.parse(startedAt);
  return Number.isNaN(started) || now.getTime() - started >= LOT_RELEASE_STALE_MS;
}
