import type { AllowlistPort, LotMark, LotPort } from "./ports.ts";

/*
 * A device's place in its lot (invariant I6: a device is counted in its lot at most once, whatever
 * retries, crashes or races happen). Two items take part, the device's allowlist record and the lot's
 * count, and DynamoDB writes one item conditionally; the order of the writes carries the guarantee.
 *
 * Taking a place (a device's first provisioning, bound to the run's certificate):
 *  T1. mark the record `lotCounted: <lot>`: a conditional write that only one run wins;
 *  T2. only that run counts the device in the lot (conditional on `maxDevices`);
 *  T3. a full lot: the run takes its mark back, unless a release claimed it or a binding was completed
 *      on it meanwhile; then the place is counted anyway (see `takeLotPlace`).
 *  A run that finds the record marked relies on the mark and counts nothing; its binding completes only
 *  while the mark is there and not being given back.
 *
 * Giving a place back (deprovision, removing the record, undoing a failed first provisioning):
 *  G1. claim the release on the record (`lotReleaseStartedAt`): a conditional write that one releaser
 *      wins, against the record as read (the mark, the binding, the claim under way if any);
 *  G2. the winner gives back one in the lot's count;
 *  G3. it removes the mark and its claim.
 *  A claim older than LOT_RELEASE_STALE_MS was interrupted and is taken over (G1-G3 again).
 *
 * A crash (or an error whose outcome is unknown) between two writes leaves the count at most one too
 * low, never too high: after T1 the mark is there and T2 not (a retry relies on the mark); after G2 the
 * count is given back and the mark still there (a take-over gives it back again). A claim interrupted
 * after G1 keeps the device counted until a later release takes it over. A count that is too low is
 * repaired by recounting the records marked with the lot.
 */

/** How long a claim to give back a place may stay before another releaser takes it over. */
export const LOT_RELEASE_STALE_MS = 5 * 60_000;

/** The ports a lot place is taken and given back through. */
export interface LotPlacePorts {
  allowlist: Pick<
    AllowlistPort,
    "get" | "markLotCounted" | "unmarkLotCounted" | "claimLotRelease" | "endLotRelease"
  >;
  lots: Pick<LotPort, "reserve" | "reserveBeyondQuota" | "release">;
}

/**
 * What taking a place ended in: `counted` (this run counted the device), `lost` (another run marked it,
 * or the binding moved: decide again), `full` (the lot refused it; the mark is taken back).
 */
export type TakeOutcome = "counted" | "lost" | "full";

/** Takes the device's place in its lot for the certificate bound to it (T1-T3 above). */
export async function takeLotPlace(ports: LotPlacePorts, mark: LotMark): Promise<TakeOutcome> {
  if (!(await ports.allowlist.markLotCounted(mark))) return "lost";
  if (await ports.lots.reserve(mark.lot)) return "counted";
  if (await ports.allowlist.unmarkLotCounted(mark)) return "full";
  // The mark is relied on now: a release claimed it (and gives one back) or a binding completed on it.
  await ports.lots.reserveBeyondQuota(mark.lot);
  return "counted";
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

/** Gives back the device's lot place if its record holds one and is bound to `boundTo` (G1-G3 above). */
export async function giveBackLotPlace(
  ports: LotPlacePorts,
  deviceId: string,
  boundTo: string | undefined,
  now: Date,
): Promise<GiveBackOutcome> {
  const record = await ports.allowlist.get(deviceId);
  const lot = record?.lotCounted;
  if (record === undefined || lot === undefined || record.certificateId !== boundTo)
    return { outcome: "none" };
  const previousClaim = record.lotReleaseStartedAt;
  if (previousClaim !== undefined && !isStale(previousClaim, now)) return { outcome: "busy" };
  const startedAt = now.toISOString();
  const claim = { deviceId, lot, boundTo, previousClaim, startedAt };
  if (!(await ports.allowlist.claimLotRelease(claim))) return { outcome: "busy" };
  await ports.lots.release(lot);
  await ports.allowlist.endLotRelease({ deviceId, startedAt });
  return { outcome: "released", lot };
}

/** True when a release claim started long enough ago to count as interrupted (an unreadable one too). */
function isStale(startedAt: string, now: Date): boolean {
  const started = Date.parse(startedAt);
  return Number.isNaN(started) || now.getTime() - started >= LOT_RELEASE_STALE_MS;
}
