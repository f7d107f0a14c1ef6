import { describeError, NotFoundError, StateConflictError } from "../errors.ts";
import { giveBackLotPlace } from "../lot-place.ts";
import type { Page, PageRequest } from "../ports.ts";
import { type ProvisionResult, provision } from "../provision.ts";
import type { LedgerEntry } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { type Explanation, explain } from "./explain.ts";
import { eventFor } from "./hypothetical.ts";
import { everything, perDevicePolicyOf } from "./ledger.ts";
import { requireDeviceId } from "./validation.ts";

/** What deprovisioning took apart. */
export interface Deprovisioned {
  deviceId: string;
  certificateId: string;
  revoked: boolean;
  detachedPolicies: string[];
  /** The device's own (per-device) policy, deleted once detached. */
  deletedPolicies: string[];
  detachedThings: string[];
  thingDeleted: boolean;
  lotReleased: string | undefined;
  warnings: string[];
}

/** How many times deprovision gives back a lot place marked while it unbinds before it gives up. */
const UNBIND_ATTEMPTS = 3;

/** How many of a device's latest ledger entries approve looks through for a quarantined certificate. */
const APPROVE_SCAN_LIMIT = 500;

/** Explain, approve, deprovision and history: the use cases about one device's certificates. */
export class DeviceAdmin {
  constructor(private readonly context: AdminContext) {}

  /** A dry run of the decision for a device id or a certificate PEM; changes nothing. */
  explain(body: unknown): Promise<Explanation> {
    return explain(this.context, body);
  }

  /** Re-decides the device's latest quarantined (INACTIVE) certificate and provisions it when now allowed. */
  async approve(actor: string, deviceId: string): Promise<ProvisionResult> {
    requireDeviceId(deviceId);
    const { deps, retried } = this.context;
    const seen = new Set<string>();
    let scanned = 0;
    for await (const entry of everything((page) => retried.ledger.history(deviceId, page), 50)) {
      if (++scanned > APPROVE_SCAN_LIMIT) break;
      const certificateId = entry.certificateId;
      if (entry.kind !== "denied" || entry.certificateStatus !== "INACTIVE" || certificateId === undefined)
        continue;
      if (seen.has(certificateId)) continue;
      seen.add(certificateId);
      const description = await retried.iot.describeCertificate(certificateId);
      if (description?.status !== "INACTIVE") continue;
      const event = eventFor(
        certificateId,
        description.caCertificateId ?? entry.caCertificateId ?? "unknown",
        deps.settings.accountId,
        deps.clock.now(),
      );
      return provision({ ...event, certificateStatus: "INACTIVE" }, deps, { from: "INACTIVE", actor });
    }
    throw new NotFoundError(`device ${deviceId} has no quarantined (INACTIVE) certificate to approve`);
  }

  /** Revokes the bound certificate, detaches its policies and thing, deletes the thing, unbinds and records. */
  async deprovision(actor: string, deviceId: string): Promise<Deprovisioned> {
    requireDeviceId(deviceId);
    const { deps, retried } = this.context;
    const { iot } = retried;
    const record = await retried.allowlist.get(deviceId);
    if (record === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    const certificateId = record.certificateId;
    if (certificateId === undefined)
      throw new StateConflictError(`device ${deviceId} is not provisioned (no certificate bound)`);
    const warnings: string[] = [];
    const result: Deprovisioned = {
      deviceId,
      certificateId,
      revoked: false,
      detachedPolicies: [],
      deletedPolicies: [],
      detachedThings: [],
      thingDeleted: false,
      lotReleased: undefined,
      warnings,
    };
    const certificate = await iot.describeCertificate(certificateId);
    if (certificate === undefined) {
      warnings.push(`certificate ${certificateId} no longer exists in the registry`);
    } else {
      const arn = certificate.certificateArn;
      // Revoke first: from here on the device cannot connect, whatever else fails.
      if (certificate.status !== "REVOKED") {
        await iot.updateCertificateStatus(certificateId, "REVOKED");
        result.revoked = true;
      }
      for (const policyName of await iot.listAttachedPolicies(arn)) {
        await iot.detachPolicy(policyName, arn);
        result.detachedPolicies.push(policyName);
      }
      for (const thingName of await iot.listPrincipalThings(arn)) {
        await iot.detachThingPrincipal(thingName, arn);
        result.detachedThings.push(thingName);
      }
    }
    const perDevice = await perDevicePolicyOf(retried.ledger, deviceId, certificateId);
    if (perDevice !== undefined && result.detachedPolicies.includes(perDevice)) {
      try {
        await this.#deletePolicy(perDevice);
        result.deletedPolicies.push(perDevice);
      } catch (error) {
        warnings.push(`policy ${perDevice} kept: ${describeError(error)}`);
      }
    }
    const thingName = record.thingName ?? deviceId;
    if ((await iot.describeThing(thingName)) !== undefined) {
      const others = await iot.listThingPrincipals(thingName);
      if (others.length === 0) {
        await iot.deleteThing(thingName);
        result.thingDeleted = true;
      } else {
        warnings.push(`thing ${thingName} kept: ${others.length} other certificate(s) still attached`);
      }
    }
    result.lotReleased = await this.#giveBackAndUnbind(deviceId, certificateId);
    await retried.ledger.append({
      deviceId,
      at: deps.clock.now().toISOString(),
      certificateId,
      kind: "admin",
      actor,
      change: {
        action: "deprovision",
        revoked: result.revoked,
        detachedPolicies: result.detachedPolicies,
        deletedPolicies: result.deletedPolicies,
        thingDeleted: result.thingDeleted,
        ...(warnings.length > 0 ? { warnings } : {}),
      },
    });
    return result;
  }

  /** The device's ledger entries, newest first. */
  async history(deviceId: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    requireDeviceId(deviceId);
    return this.context.retried.ledger.history(deviceId, page);
  }

  /**
   * Gives back the device's lot place (see ../lot-place.ts), then unbinds; a place a provisioning run
   * marked meanwhile is given back too. The lot given back, if any.
   */
  async #giveBackAndUnbind(deviceId: string, certificateId: string): Promise<string | undefined> {
    const { deps, retried } = this.context;
    let released: string | undefined;
    for (let attempt = 1; attempt <= UNBIND_ATTEMPTS; attempt++) {
      const given = await giveBackLotPlace(retried, deviceId, certificateId, deps.clock.now());
      if (given.outcome === "busy") {
        throw new StateConflictError(
          `device ${deviceId}: its lot place is being given back by another request; try again shortly`,
        );
      }
      if (given.outcome === "released") released = given.lot;
      if (await retried.allowlist.unbind(deviceId, certificateId)) return released;
      if ((await retried.allowlist.get(deviceId))?.certificateId !== certificateId) {
        throw new StateConflictError(
          `device ${deviceId} was bound to another certificate meanwhile; nothing unbound`,
        );
      }
    }
    throw new StateConflictError(`device ${deviceId}: its lot place kept changing; nothing unbound`);
  }

  /** Deletes a policy: its non-default versions first, as AWS IoT requires. */
  async #deletePolicy(policyName: string): Promise<void> {
    const { iot } = this.context.retried;
    for (const version of await iot.listPolicyVersions(policyName)) {
      if (!version.isDefault) await iot.deletePolicyVersion(policyName, version.versionId);
    }
    await iot.deletePolicy(policyName);
  }
}
