import { describeError, NotFoundError, PreconditionFailedError } from "../errors.ts";
import { allowlistFieldsOf } from "../records.ts";
import type { AllowlistRecord, CertificateStatus } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { requireDeviceId } from "./validation.ts";
import { type Content, writeVersioned } from "./versioned.ts";

/*
 * Blocking a device, as one per-device step (a single request, or a job over many devices, drives it):
 *  1. the record is written `blocked` first, so a provisioning run that races the block sees it;
 *  2. then every certificate of the device (the bound one, and every certificate on its thing) still
 *     ACTIVE or PENDING_ACTIVATION is taken out of ACTIVE: REVOKED, or INACTIVE when the admin asks for a
 *     reversible suspension. AWS IoT (and the local gateway) drop a certificate's connections when it
 *     leaves ACTIVE;
 *  3. one ledger entry names each certificate changed (and any that could not be).
 * A certificate already INACTIVE (suspended) or REVOKED is left as it is: blocking never turns a
 * suspension into a revocation (deprovision does that). A failure part-way is reported in the result,
 * and running the step again finishes the work: it only touches what is still live.
 */

/** How blocking takes a device's certificates out of ACTIVE: for good, or reversibly. */
export type BlockMode = "revoke" | "suspend";

/** What blocking did to one certificate of the device. */
export interface BlockedCertificate {
  certificateId: string;
  /** The status found; `missing` when the registry no longer has the certificate. */
  before: CertificateStatus | "missing";
  /** The status it has now. */
  after: CertificateStatus | "missing";
  /** Why it could not be taken out of ACTIVE (retry the block). */
  error?: string;
}

/** What blocking a device did to its certificates. */
export interface CutOff {
  deviceId: string;
  mode: BlockMode;
  /** Every certificate of the device found, the bound one first. */
  certificates: BlockedCertificate[];
  /** The certificates taken out of ACTIVE now. */
  changed: string[];
  /** False when a certificate could not be taken out: it may still connect; run the block again. */
  complete: boolean;
  /** What went wrong outside one certificate (the device's thing could not be read). */
  errors: string[];
}

/** What the per-device block step did: the record, whether this step wrote it, and the certificates. */
export interface Blocked {
  record: AllowlistRecord;
  /** False when the record was blocked already. */
  recordChanged: boolean;
  cutOff: CutOff;
}

/** Statuses in which a certificate can connect, or is about to (being provisioned). */
const LIVE: ReadonlySet<CertificateStatus> = new Set(["ACTIVE", "PENDING_ACTIVATION"]);

/** How many times the step writes `blocked` over a record that keeps changing before it gives up. */
const WRITE_ATTEMPTS = 3;

/** The certificate id in a certificate ARN (`arn:<partition>:iot:<region>:<account>:cert/<id>`). */
const certificateIdInArn = (principal: string): string | undefined =>
  /^arn:[\w-]+:iot:[\w-]*:\d*:cert\/([0-9a-f]{64})$/.exec(principal)?.[1];

/** Blocks one device: writes its record `blocked` (when it is not), then cuts its certificates off. */
export async function blockDevice(
  context: AdminContext,
  actor: string,
  deviceId: string,
  mode: BlockMode,
): Promise<Blocked> {
  const { record, changed } = await writeBlocked(context, actor, deviceId);
  return { record, recordChanged: changed, cutOff: await cutOff(context, actor, record, mode) };
}

/** Writes the record `blocked` under its version; a record changed meanwhile is read and written again. */
export async function writeBlocked(
  context: AdminContext,
  actor: string,
  deviceId: string,
): Promise<{ record: AllowlistRecord; changed: boolean }> {
  requireDeviceId(deviceId);
  for (let attempt = 1; ; attempt++) {
    const current = await context.retried.allowlist.get(deviceId);
    if (current === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    if (current.status === "blocked") return { record: current, changed: false };
    try {
      const written = await writeVersioned<Content<AllowlistRecord>>(context, context.deps.allowlist, {
        actor,
        precondition: { version: current.version ?? 0 },
        key: deviceId,
        what: `allowlist record ${deviceId}`,
        ledgerKey: deviceId,
        compose: (stored) => {
          const { version: _v, createdAt: _c, updatedAt: _u, updatedBy: _b, ...content } = stored ?? current;
          return {
            content: { ...content, status: "blocked" },
            fields: { ...allowlistFieldsOf(stored ?? current), status: "blocked" },
          };
        },
        fieldsOf: allowlistFieldsOf,
      });
      return { record: written.value, changed: true };
    } catch (error) {
      if (!(error instanceof PreconditionFailedError) || attempt >= WRITE_ATTEMPTS) throw error;
    }
  }
}

/**
 * Takes every live certificate of a blocked device out of ACTIVE (see the steps at the top) and records
 * one ledger entry when any certificate changed or could not be changed.
 */
export async function cutOff(
  context: AdminContext,
  actor: string,
  record: AllowlistRecord,
  mode: BlockMode,
): Promise<CutOff> {
  const { deps, retried } = context;
  const { iot } = retried;
  const { deviceId } = record;
  const target: CertificateStatus = mode === "suspend" ? "INACTIVE" : "REVOKED";
  const result: CutOff = { deviceId, mode, certificates: [], changed: [], complete: true, errors: [] };
  const fail = (certificate: BlockedCertificate, error: unknown) => {
    certificate.error = describeError(error);
    result.complete = false;
  };

  const ids: string[] = record.certificateId !== undefined ? [record.certificateId] : [];
  try {
    const thingName = record.thingName ?? deviceId;
    if ((await iot.describeThing(thingName)) !== undefined) {
      for (const principal of await iot.listThingPrincipals(thingName)) {
        const id = certificateIdInArn(principal);
        if (id !== undefined && !ids.includes(id)) ids.push(id);
      }
    }
  } catch (error) {
    result.complete = false;
    result.errors.push(`the device's thing could not be read: ${describeError(error)}`);
  }

  for (const certificateId of ids) {
    const certificate: BlockedCertificate = { certificateId, before: "missing", after: "missing" };
    result.certificates.push(certificate);
    try {
      const description = await iot.describeCertificate(certificateId);
      if (description === undefined) continue;
      certificate.before = description.status;
      certificate.after = description.status;
      if (!LIVE.has(description.status)) continue;
      await iot.updateCertificateStatus(certificateId, target);
      certificate.after = target;
      result.changed.push(certificateId);
    } catch (error) {
      fail(certificate, error);
    }
  }

  if (result.changed.length > 0 || !result.complete) {
    await retried.ledger.append({
      deviceId,
      at: deps.clock.now().toISOString(),
      ...(record.certificateId !== undefined ? { certificateId: record.certificateId } : {}),
      kind: "admin",
      actor,
      change: {
        action: "block",
        mode,
        certificates: result.certificates.map((c) => ({ ...c })),
        changed: result.changed,
        complete: result.complete,
        ...(result.errors.length > 0 ? { errors: result.errors } : {}),
      },
    });
  }
  return result;
}
