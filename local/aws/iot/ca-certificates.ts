import { randomBytes, randomUUID } from "node:crypto";
import { CERTIFICATE_ID, certificatePage, copy, nowSeconds, validity } from "./common.ts";
import { alreadyExists, certificateState, certificateValidation, invalid, notFound } from "./errors.ts";
import type {
  AutoRegistrationStatus,
  CaCertificateRecord,
  CaCertificateStatus,
  CertificateMode,
  IotState,
  RegistrationConfig,
} from "./state.ts";
import {
  certificateIdOf,
  commonNameOf,
  isSignedBy,
  isWithinValidity,
  mayBeCa,
  parseCertificate,
  pemBlocks,
  toPem,
} from "./x509.ts";

/**
 * CA certificates of the IoT emulator: the registration code, RegisterCACertificate and the
 * calls that describe, update, delete and list CA certificates, and the search for the
 * registered CA that signed a device certificate.
 */

/** What `findCaForCertificate` reports about the registered CA that signed a certificate. */
export interface CaMatch {
  caCertificateId: string;
  caCertificateArn: string;
  status: CaCertificateStatus;
  autoRegistrationStatus: AutoRegistrationStatus;
  certificateMode: CertificateMode;
  record: CaCertificateRecord;
}

export interface RegisterCaCertificateInput {
  caCertificate?: string;
  verificationCertificate?: string;
  setAsActive?: boolean;
  allowAutoRegistration?: boolean;
  registrationConfig?: RegistrationConfig;
  certificateMode?: string;
}

export interface UpdateCaCertificateInput {
  certificateId: string;
  newStatus?: string;
  newAutoRegistrationStatus?: string;
  registrationConfig?: RegistrationConfig;
  removeAutoRegistration?: boolean;
}

export interface ListCaCertificatesInput {
  pageSize?: number;
  marker?: string;
  ascendingOrder?: boolean;
  templateName?: string;
}

/** GetRegistrationCode: the account's registration code, created on first request. */
export function getRegistrationCode(state: IotState): string {
  if (!state.registrationCode) {
    state.registrationCode = randomBytes(32).toString("hex");
    state.save();
  }
  return state.registrationCode;
}

/** DeleteRegistrationCode. */
export function deleteRegistrationCode(state: IotState): void {
  state.registrationCode = undefined;
  state.save();
}

/** The CA certificate record for an id; InvalidRequest or ResourceNotFound otherwise. */
export function requireCaCertificate(state: IotState, certificateId: string): CaCertificateRecord {
  if (!CERTIFICATE_ID.test(certificateId)) throw invalid(`Invalid CA certificate id: ${certificateId}`);
  const record = state.caCertificates.get(certificateId);
  if (!record) throw notFound(`CA certificate ${certificateId} does not exist`);
  return record;
}

/** The CA certificate record for an id, or undefined. */
export function describeCaCertificateById(
  state: IotState,
  caCertificateId: string,
): CaCertificateRecord | undefined {
  const record = state.caCertificates.get(caCertificateId);
  return record ? copy(record) : undefined;
}

/**
 * The registered CA that issued a certificate (PEM, possibly a bundle whose first block is
 * the leaf, or DER). The CA must be the leaf's direct issuer: name chaining plus a valid
 * signature. Undefined when no registered CA signed it.
 */
export async function findCaForCertificate(
  state: IotState,
  derOrPem: string | Uint8Array,
): Promise<CaMatch | undefined> {
  const cert = parseCertificate(derOrPem);
  if (!cert) return undefined;
  for (const ca of [...state.caCertificates.values()]) {
    const caCert = parseCertificate(ca.certificatePem);
    if (caCert && (await isSignedBy(cert, caCert))) {
      const record = state.caCertificates.get(ca.certificateId);
      if (!record) continue; // deleted meanwhile
      return {
        caCertificateId: record.certificateId,
        caCertificateArn: record.certificateArn,
        status: record.status,
        autoRegistrationStatus: record.autoRegistrationStatus,
        certificateMode: record.certificateMode,
        record: copy(record),
      };
    }
  }
  return undefined;
}

/** RegisterCACertificate: in DEFAULT mode the verification certificate must carry the registration code. */
export async function registerCACertificate(
  state: IotState,
  input: RegisterCaCertificateInput,
): Promise<{ certificateArn: string; certificateId: string }> {
  if (!input.caCertificate) throw invalid("caCertificate is required");
  const mode = input.certificateMode ?? "DEFAULT";
  if (mode !== "DEFAULT" && mode !== "SNI_ONLY") throw invalid(`Invalid certificateMode: ${mode}`);
  if (pemBlocks(input.caCertificate).length !== 1)
    throw certificateValidation("caCertificate must contain exactly one PEM certificate");
  const caCert = parseCertificate(input.caCertificate);
  if (!caCert) throw certificateValidation("caCertificate is not a valid X.509 certificate");
  if (!mayBeCa(caCert))
    throw certificateValidation("The certificate is not a CA certificate (basicConstraints)");
  if (!isWithinValidity(caCert))
    throw certificateValidation("The CA certificate is expired or not yet valid");
  if (mode === "DEFAULT") {
    if (!input.verificationCertificate)
      throw invalid("verificationCertificate is required when certificateMode is DEFAULT");
    const verification = parseCertificate(input.verificationCertificate);
    if (!verification)
      throw certificateValidation("verificationCertificate is not a valid X.509 certificate");
    if (!state.registrationCode || commonNameOf(verification) !== state.registrationCode)
      throw certificateValidation(
        "The verification certificate's subject common name is not the registration code",
      );
    if (!(await isSignedBy(verification, caCert)))
      throw certificateValidation("The verification certificate is not signed by the CA certificate");
  }
  const id = certificateIdOf(caCert);
  const arn = state.arn("cacert", id);
  if (state.caCertificates.has(id)) throw alreadyExists("The CA certificate is already registered", id, arn);
  const now = nowSeconds();
  state.caCertificates.set(id, {
    certificateId: id,
    certificateArn: arn,
    certificatePem: toPem(caCert),
    status: input.setAsActive ? "ACTIVE" : "INACTIVE",
    autoRegistrationStatus: input.allowAutoRegistration ? "ENABLE" : "DISABLE",
    ownedBy: state.accountId,
    creationDate: now,
    lastModifiedDate: now,
    customerVersion: 1,
    generationId: randomUUID(),
    validity: validity(caCert),
    certificateMode: mode,
    ...(input.registrationConfig ? { registrationConfig: copy(input.registrationConfig) } : {}),
  });
  state.save();
  return { certificateArn: arn, certificateId: id };
}

/** DescribeCACertificate. */
export function describeCACertificate(state: IotState, certificateId: string): CaCertificateRecord {
  return copy(requireCaCertificate(state, certificateId));
}

/** UpdateCACertificate: status, auto-registration and registration config; announces a change. */
export function updateCACertificate(state: IotState, input: UpdateCaCertificateInput): void {
  const record = requireCaCertificate(state, input.certificateId);
  const { newStatus, newAutoRegistrationStatus } = input;
  if (newStatus !== undefined && newStatus !== "ACTIVE" && newStatus !== "INACTIVE")
    throw invalid(`Invalid newStatus: ${newStatus}`);
  if (
    newAutoRegistrationStatus !== undefined &&
    newAutoRegistrationStatus !== "ENABLE" &&
    newAutoRegistrationStatus !== "DISABLE"
  )
    throw invalid(`Invalid newAutoRegistrationStatus: ${newAutoRegistrationStatus}`);
  if (input.removeAutoRegistration && input.registrationConfig)
    throw invalid("registrationConfig and removeAutoRegistration are mutually exclusive");
  const before = JSON.stringify(record);
  if (newStatus) record.status = newStatus;
  if (newAutoRegistrationStatus) record.autoRegistrationStatus = newAutoRegistrationStatus;
  if (input.registrationConfig) record.registrationConfig = copy(input.registrationConfig);
  if (input.removeAutoRegistration) delete record.registrationConfig;
  if (JSON.stringify(record) === before) return;
  record.lastModifiedDate = nowSeconds();
  record.customerVersion += 1;
  record.generationId = randomUUID();
  state.save();
  state.events.emit("caCertificateChanged", record.certificateId, record.status);
}

/** DeleteCACertificate: only a CA certificate that is not ACTIVE. */
export function deleteCACertificate(state: IotState, certificateId: string): void {
  const record = requireCaCertificate(state, certificateId);
  if (record.status === "ACTIVE")
    throw certificateState(
      `CA certificate must be deactivated (not ACTIVE) before deletion. Id: ${certificateId}`,
    );
  state.caCertificates.delete(certificateId);
  state.save();
  state.events.emit("caCertificateChanged", certificateId, undefined);
}

/** ListCACertificates, newest first unless ascending order is asked for. */
export function listCACertificates(state: IotState, input: ListCaCertificatesInput) {
  const list = [...state.caCertificates.values()].filter(
    (c) => input.templateName === undefined || c.registrationConfig?.templateName === input.templateName,
  );
  const page = certificatePage(list, input);
  return {
    certificates: page.items.map((c) => ({
      certificateArn: c.certificateArn,
      certificateId: c.certificateId,
      status: c.status,
      creationDate: c.creationDate,
    })),
    nextMarker: page.next,
  };
}
