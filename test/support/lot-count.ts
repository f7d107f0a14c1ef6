import type { AllowlistStore, LotPort } from "../../domain/ports.ts";

let counted = 0;

/**
 * Counts `n` more devices in the lot the way provisioning does: a record for each, bound to a
 * certificate, whose place is taken (the mark and the count in one write).
 */
export async function countInLot(
  stores: { allowlist: Pick<AllowlistStore, "create" | "claimBinding">; lots: Pick<LotPort, "takePlace"> },
  lot: string,
  n = 1,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    counted += 1;
    const deviceId = `counted-${lot}-${counted}`;
    const certificateId = `${counted}`.padStart(64, "c");
    await stores.allowlist.create({ deviceId, status: "allowed", lot, version: 1 });
    await stores.allowlist.claimBinding({ deviceId, certificateId, expectedCertificateId: undefined });
    const taken = await stores.lots.takePlace({ deviceId, certificateId, lot });
    if (taken !== "counted") throw new Error(`countInLot: ${deviceId} was not counted in ${lot} (${taken})`);
  }
}
