import { createHash } from "node:crypto";
import { X509Certificate } from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { readCertificate } from "../../domain/certificate.ts";
import { deriveDeviceId } from "../../domain/device-id.ts";
import { ValidationError } from "../../domain/errors.ts";
import { issueCertificate } from "../../pki/certificates.ts";
import { CertificateFactory } from "../support/certificate-specs.ts";
import { testCa } from "../support/world.ts";

describe("readCertificate", () => {
  it("reads subject CN, serialNumber (OID 2.5.4.5), SANs, issuer, validity and the SHA-256 fingerprint", async () => {
    // Prepare
    const ca = await testCa();
    const notBefore = new Date("2026-01-01T00:00:00Z");
    const notAfter = new Date("2030-01-01T00:00:00Z");
    const issued = await issueCertificate(ca, {
      subject: { CN: "sensor-001", serialNumber: "SN-42", O: "Acme" },
      sanUris: ["urn:device:sensor-001"],
      sanDnsNames: ["sensor-001.local"],
      notBefore,
      notAfter,
    });
    // Act
    const facts = readCertificate(issued.certificatePem);
    // Assess
    const der = Buffer.from(new X509Certificate(issued.certificatePem).rawData);
    expect(facts.fingerprint).toBe(createHash("sha256").update(der).digest("hex"));
    expect(facts.commonName).toBe("sensor-001");
    expect(facts.serialNumber).toBe("SN-42");
    expect(facts.subjectAttributes.O).toBe("Acme");
    expect(facts.sanUris).toEqual(["urn:device:sensor-001"]);
    expect(facts.sanDnsNames).toEqual(["sensor-001.local"]);
    expect(facts.issuer).toContain("Test Fleet CA");
    expect(facts.notBefore.toISOString()).toBe(notBefore.toISOString());
    expect(facts.notAfter.toISOString()).toBe(notAfter.toISOString());
  });

  it("names no device by an identity attribute given twice, and keeps the first of other attributes", async () => {
    // Prepare: two CNs, two serialNumbers, two OUs
    const pem = await new CertificateFactory(await testCa()).build({
      subject: [
        { CN: ["dev-a", "dev-b"] },
        { "2.5.4.5": ["SN-1"] },
        { "2.5.4.5": ["SN-2"] },
        { OU: ["Sensors"] },
        { OU: ["Plant-3"] },
      ],
    });
    // Act
    const facts = readCertificate(pem);
    // Assess
    expect(facts.commonName).toBeUndefined();
    expect(facts.serialNumber).toBeUndefined();
    expect(deriveDeviceId(facts, "cn")).toBeUndefined();
    expect(deriveDeviceId(facts, "serialNumber")).toBeUndefined();
    expect(facts.subjectAttributes.OU).toBe("Sensors");
  });

  it.each(["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])(
    "refuses a PEM that is not a certificate: %j",
    (pem) => {
      expect(() => readCertificate(pem)).toThrow(ValidationError);
    },
  );
});

describe("deriveDeviceId", () => {
  const facts = (over: Partial<ReturnType<typeof readCertificate>>) => ({
    fingerprint: "f".repeat(64),
    subject: "",
    issuer: "",
    subjectAttributes: {},
    sanUris: [],
    sanDnsNames: [],
    notBefore: new Date(0),
    notAfter: new Date(0),
    ...over,
  });

  it("uses the subject CN by default strategy `cn`", () => {
    expect(deriveDeviceId(facts({ commonName: "dev-1" }), "cn")).toBe("dev-1");
  });

  it("uses the subject serialNumber with strategy `serialNumber`", () => {
    expect(deriveDeviceId(facts({ commonName: "x", serialNumber: "SN:0042" }), "serialNumber")).toBe(
      "SN:0042",
    );
    expect(deriveDeviceId(facts({ commonName: "x" }), "serialNumber")).toBeUndefined();
  });

  it("uses the last part of a URI SAN with strategy `san-uri`", () => {
    expect(deriveDeviceId(facts({ sanUris: ["urn:device:pump-7"] }), "san-uri")).toBe("pump-7");
    expect(deriveDeviceId(facts({ sanUris: ["spiffe://fleet.example/device/pump-8"] }), "san-uri")).toBe(
      "pump-8",
    );
    expect(deriveDeviceId(facts({ sanUris: [] }), "san-uri")).toBeUndefined();
  });

  it("accepts exactly the thing-name set, up to 128 characters", () => {
    expect(deriveDeviceId(facts({ commonName: "a".repeat(128) }), "cn")).toBe("a".repeat(128));
    expect(deriveDeviceId(facts({ commonName: "a".repeat(129) }), "cn")).toBeUndefined();
    expect(deriveDeviceId(facts({ commonName: "has space" }), "cn")).toBeUndefined();
    expect(deriveDeviceId(facts({ commonName: "dev/1" }), "cn")).toBeUndefined();
    expect(deriveDeviceId(facts({ commonName: "dev.1" }), "cn")).toBeUndefined();
    expect(deriveDeviceId(facts({ commonName: "" }), "cn")).toBeUndefined();
    expect(deriveDeviceId(facts({}), "cn")).toBeUndefined();
  });
});
