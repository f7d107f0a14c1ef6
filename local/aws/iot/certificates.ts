import { randomUUID } from "node:crypto";
import type { X509Certificate } from "@peculiar/x509";
import { findCaForCertificate, requireCaCertificate } from "./ca-certificates.ts";
import { CERTIFICATE_ID, certificatePage, copy, nowSeconds, validity } from "./common.ts";
import {
  alreadyExists,
  certificateState,
  certificateValidation,
  deleteConflict,
  invalid,
  notFound,
  throttled,
} from "./errors.ts";
import type { RateLimiter } from "./limits.ts";
import type {
  CaCertificateRecord,
  CertificateMode,
  CertificateRecord,
  CertificateStatus,
  IotState,
} from "./state.ts";
import { certificateIdOf, isSignedBy, isWithinValidity, parseCertificate, toPem } from "./x509.ts";

/**
 * Device certificates of the IoT emulator: registration (with or without a CA, and
 * just-in-time on a device's first connection), description, status changes, deletion, listing.
 */

export interface RegisterCertificateInput {
  certificatePem?: string;
  caCertificatePem?: string;
  setAsActive?: boolean;
  status?: string;
}

export interface ListCertificatesInput {
  pageSize?: number;
  marker?: string;
  ascendingOrder?: boolean;
  caCertificateId?: string;
}

type Registered = { certificateArn: string; certificateId: string };

/** The certificate record for an id, or undefined. */
export function describeCertificateById(
  state: IotState,
  certificateId: string,
): CertificateRecord | undefined {
  const record = state.certificates.get(certificateId);
  return record ? copy(record) : undefined;
}

/** The certificate record for an id; InvalidRequest or ResourceNotFound otherwise. */
export function requireCertificate(state: IotState, certificateId: string): CertificateRecord {
  if (!CERTIFICATE_ID.test(certificateId)) throw invalid(`Invalid certificate id: ${certificateId}`);
  const record = state.certificates.get(certificateId);
  if (!record) throw notFound(`Certificate ${certificateId} does not exist`);
  return record;
}

function newCertificate(
  state: IotState,
  cert: X509Certificate,
  status: CertificateStatus,
  caCertificateId: string | undefined,
  certificateMode: CertificateMode,
): CertificateRecord {
  const id = certificateIdOf(cert);
  const now = nowSeconds();
  return {
    certificateId: id,
    certificateArn: state.arn("cert", id),
    certificatePem: toPem(cert),
    ...(caCertificateId ? { caCertificateId } : {}),
    status,
    ownedBy: state.accountId,
    creationDate: now,
    lastModifiedDate: now,
    customerVersion: 1,
    generationId: randomUUID(),
    validity: validity(cert),
    certificateMode,
  };
}

/**
 * Registers a device certificate as PENDING_ACTIVATION with its CA, as AWS IoT does on a
 * device's first TLS connection (just-in-time registration). Returns the existing record
 * when the certificate is already registered. Throws ThrottlingException beyond the
 * auto-registration quota (15/s) when quotas are enabled, ResourceNotFoundException /
 * CertificateStateException / CertificateValidationException when the CA is unknown,
 * not ACTIVE with auto-registration ENABLE, or did not sign the certificate.
 */
export async function autoRegisterCertificate(
  state: IotState,
  limiter: RateLimiter,
  pem: string,
  caCertificateId: string,
): Promise<CertificateRecord> {
  const cert = parseCertificate(pem);
  if (!cert) throw certificateValidation("The certificate is not a valid X.509 certificate");
  const id = certificateIdOf(cert);
  const existing = state.certificates.get(id);
  if (existing) return copy(existing);
  if (!limiter.tryAcquire("AutoRegisterCertificate"))
    throw throttled("Auto-registration rate exceeded for the account");
  const ca = state.caCertificates.get(caCertificateId);
  if (!ca) throw notFound(`CA certificate ${caCertificateId} does not exist`);
  if (ca.status !== "ACTIVE") throw certificateState(`CA certificate ${caCertificateId} is not ACTIVE`);
  if (ca.autoRegistrationStatus !== "ENABLE")
    throw certificateState(`CA certificate ${caCertificateId} does not allow auto-registration`);
  const caCert = parseCertificate(ca.certificatePem);
  if (!caCert || !(await isSignedBy(cert, caCert)))
    throw certificateValidation("The certificate is not signed by the given CA certificate");
  if (!isWithinValidity(cert)) throw certificateValidation("The certificate is expired or not yet valid");
  const raced = state.certificates.get(id);
  if (raced) return copy(raced);
  const record = newCertificate(state, cert, "PENDING_ACTIVATION", ca.certificateId, ca.certificateMode);
  state.certificates.set(id, record);
  state.save();
  return copy(record);
}

/** DescribeCertificate. */
export function describeCertificate(state: IotState, certificateId: string): CertificateRecord {
  return copy(requireCertificate(state, certificateId));
}

function parseDeviceCertificate(pem: string | undefined): X509Certificate {
  if (!pem) throw invalid("certificatePem is required");
  const cert = parseCertificate(pem);
  if (!cert) throw certificateValidation("The certificate is not a valid X.509 certificate");
  // Stricter reading: certificates outside their validity window are refused at registration.
  if (!isWithinValidity(cert)) throw certificateValidation("The certificate is expired or not yet valid");
  return cert;
}

/** Status for RegisterCertificate(WithoutCA): ACTIVE or INACTIVE only (stricter reading). */
function registrationStatus(status: string | undefined, setAsActive: boolean | undefined): CertificateStatus {
  if (status === undefined) return setAsActive ? "ACTIVE" : "INACTIVE";
  if (status !== "ACTIVE" && status !== "INACTIVE")
    throw invalid(`Invalid status for registration: ${status} (ACTIVE or INACTIVE)`);
  return status;
}

/** RegisterCertificate: the certificate must be signed by a registered, ACTIVE CA certificate. */
export async function registerCertificate(
  state: IotState,
  input: RegisterCertificateInput,
): Promise<Registered> {
  const cert = parseDeviceCertificate(input.certificatePem);
  const status = registrationStatus(input.status, input.setAsActive);
  let ca: CaCertificateRecord | undefined;
  if (input.caCertificatePem) {
    const caCert = parseCertificate(input.caCertificatePem);
    if (!caCert) throw certificateValidation("caCertificatePem is not a valid X.509 certificate");
    ca = state.caCertificates.get(certificateIdOf(caCert));
    if (!ca) throw certificateValidation("The CA certificate is not registered");
    if (!(await isSignedBy(cert, caCert)))
      throw certificateValidation("The certificate is not signed by the given CA certificate");
  } else {
    const match = await findCaForCertificate(state, new Uint8Array(cert.rawData));
    if (!match) throw certificateValidation("The certificate is not signed by a registered CA certificate");
    ca = state.caCertificates.get(match.caCertificateId);
    if (!ca) throw certificateValidation("The CA certificate is not registered");
  }
  // Stricter reading: the signing CA must be ACTIVE whatever status the certificate is registered with.
  if (ca.status !== "ACTIVE") throw certificateValidation(`CA certificate ${ca.certificateId} is not ACTIVE`);
  return storeRegistered(state, cert, status, ca.certificateId, ca.certificateMode);
}

/** RegisterCertificateWithoutCA: the certificate is kept in SNI_ONLY mode. */
export function registerCertificateWithoutCA(
  state: IotState,
  input: { certificatePem?: string; status?: string },
): Registered {
  const cert = parseDeviceCertificate(input.certificatePem);
  const status = registrationStatus(input.status, undefined);
  return storeRegistered(state, cert, status, undefined, "SNI_ONLY");
}

function storeRegistered(
  state: IotState,
  cert: X509Certificate,
  status: CertificateStatus,
  caCertificateId: string | undefined,
  mode: CertificateMode,
): Registered {
  const id = certificateIdOf(cert);
  const arn = state.arn("cert", id);
  if (state.certificates.has(id))
    throw alreadyExists("The certificate is already provisioned or registered", id, arn);
  state.certificates.set(id, newCertificate(state, cert, status, caCertificateId, mode));
  state.save();
  return { certificateArn: arn, certificateId: id };
}

/** UpdateCertificate: ACTIVE, INACTIVE or REVOKED; announces the new status. */
export function updateCertificate(
  state: IotState,
  certificateId: string,
  newStatus: string | undefined,
): void {
  const record = requireCertificate(state, certificateId);
  if (newStatus !== "ACTIVE" && newStatus !== "INACTIVE" && newStatus !== "REVOKED") {
    // PENDING_ACTIVATION, PENDING_TRANSFER and REGISTER_INACTIVE cannot be set through UpdateCertificate.
    throw invalid(`Invalid newStatus: ${newStatus ?? "(missing)"}`);
  }
  if (record.status === "REVOKED")
    throw certificateState(`Certificate ${certificateId} is REVOKED; its status cannot change`);
  if (record.status === "PENDING_TRANSFER")
    throw certificateState(`Certificate ${certificateId} is PENDING_TRANSFER`);
  if (newStatus === "ACTIVE" && record.caCertificateId) {
    // Stricter reading: a certificate cannot be activated while its CA is not ACTIVE.
    const ca = state.caCertificates.get(record.caCertificateId);
    if (ca && ca.status !== "ACTIVE")
      throw certificateState(
        `CA certificate ${ca.certificateId} is not ACTIVE; cannot activate ${certificateId}`,
      );
  }
  if (record.status === newStatus) return;
  record.status = newStatus;
  record.lastModifiedDate = nowSeconds();
  record.customerVersion += 1;
  record.generationId = randomUUID();
  state.save();
  state.events.emit("certificateStatusChanged", certificateId, newStatus);
}

/** DeleteCertificate: not while ACTIVE or attached to a thing; attached policies only with forceDelete. */
export function deleteCertificate(state: IotState, certificateId: string, forceDelete: boolean): void {
  const record = requireCertificate(state, certificateId);
  if (record.status === "ACTIVE")
    throw certificateState(
      `Certificate must be deactivated (not ACTIVE) before deletion. Id: ${certificateId}`,
    );
  if (record.status === "PENDING_TRANSFER")
    throw certificateState(`Certificate ${certificateId} is PENDING_TRANSFER and cannot be deleted`);
  const arn = record.certificateArn;
  if (state.thingPrincipals.some((tp) => tp.principal === arn))
    throw deleteConflict(`Certificate ${certificateId} is attached to one or more things`);
  const attached = [...state.policyTargets.values()].some((targets) => targets.has(arn));
  if (attached && !forceDelete)
    throw deleteConflict(`Certificate ${certificateId} has one or more policies attached`);
  for (const targets of state.policyTargets.values()) targets.delete(arn);
  state.certificates.delete(certificateId);
  state.save();
  state.events.emit("certificateDeleted", certificateId);
}

/** ListCertificates and ListCertificatesByCA, newest first unless ascending order is asked for. */
export function listCertificates(state: IotState, input: ListCertificatesInput) {
  if (input.caCertificateId !== undefined) requireCaCertificate(state, input.caCertificateId);
  const list = [...state.certificates.values()].filter(
    (c) => input.caCertificateId === undefined || c.caCertificateId === input.caCertificateId,
  );
  const page = certificatePage(list, input);
  return {
    certificates: page.items.map((c) => ({
      certificateArn: c.certificateArn,
      certificateId: c.certificateId,
      status: c.status,
      certificateMode: c.certificateMode,
      creationDate: c.creationDate,
    })),
    nextMarker: page.next,
  };
}
