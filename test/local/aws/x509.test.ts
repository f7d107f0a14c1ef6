import type { X509Certificate } from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { certificateIdOf, isSignedBy, parseCertificate } from "../../../local/aws/iot/x509.ts";
import { createCa, issueCertificate, type TestCertificate } from "./certs.ts";

function parsed(certificate: TestCertificate): X509Certificate {
  const cert = parseCertificate(certificate.pem);
  if (!cert) throw new Error("test certificate does not parse");
  return cert;
}

describe("the emulator's certificate parsing and signature checks, remembered", () => {
  it("answers a repeated signature check as the first time, and never carries it to another CA of the same name", async () => {
    // Prepare: the fleet's CA and an attacker's CA with the same subject, each with a device certificate
    const fleet = await createCa({ commonName: "Fleet CA" });
    const forged = await createCa({ commonName: "Fleet CA" });
    const device = await issueCertificate(fleet, { commonName: "dev-1" });
    const impostor = await issueCertificate(forged, { commonName: "dev-1" });
    const fleetCa = parsed(fleet);
    const forgedCa = parsed(forged);
    const deviceCert = parsed(device);
    const impostorCert = parsed(impostor);
    // Act: each check twice, the genuine one first
    const answers: boolean[] = [];
    for (let round = 0; round < 2; round++) {
      answers.push(await isSignedBy(deviceCert, fleetCa));
      answers.push(await isSignedBy(impostorCert, fleetCa));
      answers.push(await isSignedBy(deviceCert, forgedCa));
      answers.push(await isSignedBy(impostorCert, forgedCa));
    }
    // Assess
    expect(answers).toEqual([true, false, false, true, true, false, false, true]);
  });

  it("parses PEM, a bundle's first block and DER of one certificate to the same certificate", async () => {
    // Prepare
    const ca = await createCa();
    const device = await issueCertificate(ca, { commonName: "dev-2" });
    const der = new Uint8Array(Buffer.from(device.pem.replace(/-----[A-Z ]+-----|\s+/g, ""), "base64"));
    // Act
    const fromPem = parseCertificate(device.pem);
    const fromBundle = parseCertificate(`${device.pem}${ca.pem}`);
    const fromDer = parseCertificate(der);
    // Assess
    expect([fromPem, fromBundle, fromDer].map((c) => c && certificateIdOf(c))).toEqual([
      device.id,
      device.id,
      device.id,
    ]);
    expect(fromDer?.subject).toBe("CN=dev-2");
  });

  it("still refuses what is not a certificate, however often it is asked", () => {
    // Act
    const answers = [1, 2].flatMap(() => [
      parseCertificate("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"),
      parseCertificate("no PEM here"),
      parseCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])),
    ]);
    // Assess
    expect(answers).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });
});
