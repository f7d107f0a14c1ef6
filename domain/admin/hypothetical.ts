import type { CertificateFacts, RegisteredEvent } from "../types.ts";

/** The certificate id of a certificate that does not exist (explaining a device that has none yet). */
export const NO_CERTIFICATE = "0".repeat(64);

/** A certificate valid at any time, for decisions about a device's policy rather than its certificate. */
export const anyCertificate = (fingerprint = NO_CERTIFICATE): CertificateFacts => ({
  fingerprint,
  subject: "",
  issuer: "",
  subjectAttributes: {},
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date(0),
  notAfter: new Date(8.64e15),
});

/** The registered event AWS IoT would send for the certificate now. */
export const eventFor = (
  certificateId: string,
  caCertificateId: string,
  accountId: string,
  now: Date,
): RegisteredEvent => ({
  certificateId,
  caCertificateId,
  timestamp: now.getTime(),
  certificateStatus: "PENDING_ACTIVATION",
  awsAccountId: accountId,
  certificateRegistrationTimestamp: null,
});
