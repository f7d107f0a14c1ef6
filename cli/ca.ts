/**
 * A fleet CA kept in a directory (`jitr ca create`), loaded for signing and registered with AWS IoT,
 * and where the device certificates it issues are kept.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  GetRegistrationCodeCommand,
  type IoTClient,
  RegisterCACertificateCommand,
} from "@aws-sdk/client-iot";
import { certificateIdOf, issueCertificate, type KeyedCertificate } from "../pki/certificates.ts";
import { type KeyFiles, readKeyFiles, writeKeyFiles } from "../pki/key-files.ts";
import { CliError } from "./output.ts";

/** File names inside a CA directory. */
export const CA_FILES = { certificate: "ca.pem", key: "ca.key", id: "ca-id" } as const;

/** The certificate and key files of the CA in `dir`. */
export const caKeyFiles = (dir: string): KeyFiles => ({
  certificate: join(dir, CA_FILES.certificate),
  key: join(dir, CA_FILES.key),
});

/** Where a device's certificate and key are kept (`jitr device create`, the demo fleet). */
export const deviceFiles = (dir: string, id: string): KeyFiles => ({
  certificate: join(dir, `${id}.cert.pem`),
  key: join(dir, `${id}.key.pem`),
});

/** Writes a CA's certificate and its private key (owner-only) into `dir`. */
export const writeCa = (dir: string, ca: Pick<KeyedCertificate, "certificatePem" | "privateKeyPem">) =>
  writeKeyFiles(caKeyFiles(dir), ca);

/** Loads a CA created by `jitr ca create`. */
export async function loadCa(dir: string): Promise<KeyedCertificate> {
  try {
    return await readKeyFiles(caKeyFiles(dir));
  } catch (error) {
    throw new CliError(
      `cannot load the CA from ${dir} (${CA_FILES.certificate} and ${CA_FILES.key}): ${(error as Error).message}`,
    );
  }
}

/** Registers a CA with AWS IoT (or local mode), proving possession with a verification certificate. */
export async function registerCa(
  iot: IoTClient,
  caDir: string,
  opts: { autoRegistration: boolean },
): Promise<{ certificateId: string; certificateArn: string }> {
  const ca = await loadCa(caDir);
  const { registrationCode } = await iot.send(new GetRegistrationCodeCommand({}));
  if (!registrationCode) throw new CliError("AWS IoT returned no registration code");
  const verification = await issueCertificate(ca, { subject: { CN: registrationCode } });
  const result = await iot.send(
    new RegisterCACertificateCommand({
      caCertificate: ca.certificatePem,
      verificationCertificate: verification.certificatePem,
      setAsActive: true,
      allowAutoRegistration: opts.autoRegistration,
    }),
  );
  const certificateId = result.certificateId ?? certificateIdOf(ca.certificatePem);
  await writeFile(join(caDir, CA_FILES.id), `${certificateId}\n`);
  return { certificateId, certificateArn: result.certificateArn ?? "" };
}
