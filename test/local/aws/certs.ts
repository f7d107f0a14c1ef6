/**
 * Certificate helpers for the emulator's tests, in the shape those tests use, made by the project's
 * own PKI (`pki/certificates.ts`: ECDSA P-256 CAs and leaf certificates).
 */
import {
  certificateIdOf,
  createCa as createKeyedCa,
  issueCertificate as issueKeyed,
  type KeyedCertificate,
} from "../../../pki/certificates.ts";

export interface TestCertificate extends KeyedCertificate {
  cert: KeyedCertificate["certificate"];
  pem: string;
  /** Lowercase hex SHA-256 of the DER (the AWS IoT certificate id). */
  id: string;
}

function wrap(keyed: KeyedCertificate): TestCertificate {
  return {
    ...keyed,
    cert: keyed.certificate,
    pem: `${keyed.certificatePem}\n`,
    id: certificateIdOf(keyed.certificatePem),
  };
}

/** A self-signed CA certificate (basicConstraints cA=true). */
export async function createCa(options: { commonName?: string } = {}): Promise<TestCertificate> {
  return wrap(await createKeyedCa({ commonName: options.commonName ?? "Test CA" }));
}

/** A leaf certificate signed by `issuer`, with the given subject common name. */
export async function issueCertificate(
  issuer: TestCertificate,
  options: { commonName: string; notBefore?: Date; notAfter?: Date },
): Promise<TestCertificate> {
  return wrap(
    await issueKeyed(issuer, {
      subject: { CN: options.commonName },
      ...(options.notBefore ? { notBefore: options.notBefore } : {}),
      ...(options.notAfter ? { notAfter: options.notAfter } : {}),
    }),
  );
}

/** The verification certificate RegisterCACertificate wants: CN = registration code, signed by the CA. */
export function verificationCertificate(
  ca: TestCertificate,
  registrationCode: string,
): Promise<TestCertificate> {
  return issueCertificate(ca, { commonName: registrationCode });
}
