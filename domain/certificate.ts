import "reflect-metadata";
import { SubjectAlternativeNameExtension, X509Certificate } from "@peculiar/x509";
import { certificateIdOfDer } from "../pki/certificate-id.ts";
import { ValidationError } from "./errors.ts";
import type { CertificateFacts } from "./types.ts";

const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.46": "dnQualifier",
};

/** The subject attributes a device id can be taken from. */
const IDENTITY_ATTRIBUTES = new Set(["CN", "serialNumber"]);

/**
 * Reads the facts the service decides on from a PEM certificate; throws ValidationError on garbage. An
 * identity attribute (CN, serialNumber) that occurs more than once is left out of the facts.
 */
export function readCertificate(pem: string): CertificateFacts {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (cause) {
    throw new ValidationError("certificate is not a valid X.509 PEM", [], { cause });
  }
  // An identity attribute the subject carries more than once (two CN RDNs, a multi-valued RDN) names no
  // device: which value is meant would be a guess, so it is left out and the identity fails closed. Other
  // attributes (several OUs are common) keep their first value.
  const subjectAttributes: Record<string, string> = {};
  for (const [oid, name] of Object.entries(SHORT_NAMES)) {
    const values = cert.subjectName.getField(oid);
    const [first] = values;
    if (first !== undefined && (values.length === 1 || !IDENTITY_ATTRIBUTES.has(name)))
      subjectAttributes[name] = first;
  }
  const san = cert.getExtension(SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  return {
    fingerprint: certificateIdOfDer(cert.rawData),
    subject: cert.subject,
    issuer: cert.issuer,
    subjectAttributes,
    commonName: subjectAttributes.CN,
    serialNumber: subjectAttributes.serialNumber,
    sanUris: names.filter((n) => n.type === "url").map((n) => n.value),
    sanDnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
