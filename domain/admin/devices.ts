import { describeError, NotFoundError, StateConflictError } from "../errors.ts";
import { giveBackLotPlace } from "../lot-place.ts";
import type { Page, PageRequest } from "../ports.ts";
import { type ProvisionResult, provision } from "../provision.ts";
import type { AllowlistStatus, LedgerEntry } from "../types.ts";
import { writeBlocked } from "./block.ts";
import type { AdminContext } from "./deps.ts";
import { type Explanation, explain } from "./explain.ts";
import { eventFor } from "./hypothetical.ts";
import { everything, perDevicePolicyOf } from "./ledger.ts";
import { requireDeviceId } from "./validation.ts";

/** What deprovisioning did to one of the device's certificates. */
export interface DeprovisionedCertificate {
  certificateId: string;
  /** Revoked by this deprovisioning (false: it was REVOKED already, or is gone from the registry). */
  revoked: boolean;
  detachedPolicies: string[];
  detachedThings: string[];
}

/** What deprovisioning took apart. */
export interface Deprovisioned {
  deviceId: string;
  /** The certificate the device was bound to. */
  certificateId: string;
  /** Whether any certificate was revoked now. */
  revoked: boolean;
  /** The policies detached, over all the certificates. */
  detachedPolicies: string[];
  /** The device's own (per-device) policy, deleted once detached. */
  deletedPolicies: string[];
  /** The things detached, over all the certificates. */
  detachedThings: string[];
  thingDeleted: boolean;
  lotReleased: string | undefined;
  /** Every certificate of the device: the bound one first, then the others its thing held. */
  certificates: DeprovisionedCertificate[];
  /**
   * The record's status afterwards: `allowed` (the default) lets the device come back with a new
   * certificate at once; `blocked` (deprovision with `block`) retires it.
   */
  recordStatus: AllowlistStatus;
  warnings: string[];
}

/** The certificate id in a certificate ARN (`arn:<partition>:iot:<region>:<account>:cert/<id>`). */
const certificateIdInArn = (principal: string): string | undefined =>
  /^arn:[\w-]+:iot:[\w-]*:\d*:cert\/([0-9a-f]{64})$/.exec(principal)?.[1];

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

  /**
   * Re-decides the device's quarantined (INACTIVE) certificate and provisions it when now allowed: the
   * bound certificate when a block suspended it (refused while the record is still blocked), else the
   * latest certificate the ledger shows quarantined.
   */
  async approve(actor: string, deviceId: string): Promise<ProvisionResult> {
    requireDeviceId(deviceId);
    const { deps, retried } = this.context;
    const record = await retried.allowlist.get(deviceId);
    if (record?.certificateId !== undefined) {
      const bound = await retried.iot.describeCertificate(record.certificateId);
      if (bound?.status === "INACTIVE") {
        if (record.status === "blocked") {
          throw new StateConflictError(
            `device ${deviceId} is blocked: set its record allowed before approving its suspended certificate ${bound.certificateId}`,
          );
        }
        const event = eventFor(
          bound.certificateId,
          bound.caCertificateId ?? "unknown",
          deps.settings.accountId,
          deps.clock.now(),
        );
        return provision({ ...event, certificateStatus: "INACTIVE" }, deps, { from: "INACTIVE", actor });
      }
    }
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

  /**
   * Takes every certificate of the device out: the bound one and every other certificate on the
   * device's thing (rotation `allow-multiple`) are all revoked first, then their policies and things
   * detached; then the device's own policy and its thing are deleted, the record unbound, and one
   * ledger entry lists each certificate. The record stays as it is (a device still `allowed` comes back
   * with a new certificate) unless `block` is given: then it is written `blocked` first, so no
   * certificate of the device is provisioned again, a racing one included.
   */
  async deprovision(
    actor: string,
    deviceId: string,
    options: { block?: boolean } = {},
  ): Promise<Deprovisioned> {
    requireDeviceId(deviceId);
    const { deps, retried } = this.context;
    const { iot } = retried;
    let record = await retried.allowlist.get(deviceId);
    if (record === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    if (record.certificateId === undefined)
      throw new StateConflictError(`device ${deviceId} is not provisioned (no certificate bound)`);
    if (options.block === true) record = (await writeBlocked(this.context, actor, deviceId)).record;
    const certificateId = record.certificateId;
    if (certificateId === undefined)
      throw new StateConflictError(`device ${deviceId} was unbound meanwhile; its record is blocked`);
    const warnings: string[] = [];
    const thingName = record.thingName ?? deviceId;
    const thingExists = (await iot.describeThing(thingName)) !== undefined;
    const principals = thingExists ? await iot.listThingPrincipals(thingName) : [];
    const others = principals.flatMap((principal) => {
      const id = certificateIdInArn(principal);
      return id === undefined || id === certificateId ? [] : [id];
    });
    const certificates: DeprovisionedCertificate[] = [certificateId, ...new Set(others)].map((id) => ({
      certificateId: id,
      revoked: false,
      detachedPolicies: [],
      detachedThings: [],
    }));

    // Revoke every certificate first: from here on none can connect, whatever else fails.
    const arns = new Map<DeprovisionedCertificate, string>();
    for (const certificate of certificates) {
      const description = await iot.describeCertificate(certificate.certificateId);
      if (description === undefined) {
        warnings.push(`certificate ${certificate.certificateId} no longer exists in the registry`);
        continue;
      }
      arns.set(certificate, description.certificateArn);
      if (description.status !== "REVOKED") {
        await iot.updateCertificateStatus(certificate.certificateId, "REVOKED");
        certificate.revoked = true;
      }
    }
    for (const [certificate, arn] of arns) {
      for (const policyName of await iot.listAttachedPolicies(arn)) {
        await iot.detachPolicy(policyName, arn);
        certificate.detachedPolicies.push(policyName);
      }
      for (const thing of await iot.listPrincipalThings(arn)) {
        await iot.detachThingPrincipal(thing, arn);
        certificate.detachedThings.push(thing);
      }
    }
    for (const principal of principals.filter((p) => certificateIdInArn(p) === undefined)) {
      await iot.detachThingPrincipal(thingName, principal);
      warnings.push(
        `principal ${principal} (not a certificate) detached from thing ${thingName}, not revoked`,
      );
    }

    const detachedPolicies = [...new Set(certificates.flatMap((c) => c.detachedPolicies))];
    const result: Deprovisioned = {
      deviceId,
      certificateId,
      revoked: certificates.some((c) => c.revoked),
      detachedPolicies,
      deletedPolicies: [],
      detachedThings: [...new Set(certificates.flatMap((c) => c.detachedThings))],
      thingDeleted: false,
      lotReleased: undefined,
      certificates,
      recordStatus: record.status,
      warnings,
    };
    const perDevice = new Set<string>();
    for (const certificate of certificates) {
      const policy = await perDevicePolicyOf(retried.ledger, deviceId, certificate.certificateId);
      if (policy !== undefined && detachedPolicies.includes(policy)) perDevice.add(policy);
    }
    for (const policy of perDevice) {
      try {
        await this.#deletePolicy(policy);
        result.deletedPolicies.push(policy);
      } catch (error) {
        warnings.push(`policy ${policy} kept: ${describeError(error)}`);
      }
    }
    if (thingExists) {
      const left = await iot.listThingPrincipals(thingName);
      if (left.length === 0) {
        await iot.deleteThing(thingName);
        result.thingDeleted = true;
      } else {
        warnings.push(`thing ${thingName} kept: ${left.length} certificate(s) attached meanwhile`);
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
        certificates: certificates.map((c) => ({ ...c })),
        recordStatus: record.status,
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
