import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetRegistrationCodeCommand, IoTClient, RegisterCACertificateCommand } from "@aws-sdk/client-iot";
import type { Command } from "commander";
import { CliError, printObject } from "../output.ts";
import { certificateIdOf, createCa, issueCertificate, loadKeyedCertificate } from "../pki.ts";

/** File names inside a CA directory. */
export const CA_FILES = { certificate: "ca.pem", key: "ca.key", id: "ca-id" } as const;

/** Writes a private key readable by its owner only. */
export const writeSecret = (path: string, pem: string) => writeFile(path, pem, { mode: 0o600 });

/** Loads a CA created by `jitr ca create`. */
export async function loadCa(dir: string) {
  try {
    const [cert, key] = await Promise.all([
      readFile(join(dir, CA_FILES.certificate), "utf8"),
      readFile(join(dir, CA_FILES.key), "utf8"),
    ]);
    return await loadKeyedCertificate(cert, key);
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

export function registerCaCommands(program: Command): void {
  const ca = program.command("ca").description("create and register the CA that signs device certificates");

  ca.command("create")
    .description("create a CA (EC P-256) in a directory: ca.pem and ca.key (owner-only)")
    .requiredOption("--out <dir>", "directory to write the CA into")
    .option("--name <cn>", "subject common name", "JITR Fleet CA")
    .option("--days <n>", "validity in days", "3650")
    .option("--json", "print JSON")
    .action(async (opts: { out: string; name: string; days: string; json?: boolean }) => {
      const days = Number(opts.days);
      if (!Number.isInteger(days) || days < 1) throw new CliError("--days must be a whole number of days");
      await mkdir(opts.out, { recursive: true });
      const created = await createCa({ commonName: opts.name, days });
      await writeFile(join(opts.out, CA_FILES.certificate), created.certificatePem);
      await writeSecret(join(opts.out, CA_FILES.key), created.privateKeyPem);
      printObject(
        {
          certificate: join(opts.out, CA_FILES.certificate),
          key: join(opts.out, CA_FILES.key),
          certificateId: certificateIdOf(created.certificatePem),
        },
        opts.json === true,
      );
    });

  ca.command("register")
    .description(
      "register the CA with AWS IoT (GetRegistrationCode, verification certificate, RegisterCACertificate); " +
        "uses AWS_ENDPOINT_URL when set, e.g. local mode",
    )
    .requiredOption("--ca <dir>", "directory made by `jitr ca create`")
    .option("--no-auto-registration", "do not turn on auto-registration of device certificates")
    .option("--region <region>", "AWS region (default from the environment)")
    .option("--json", "print JSON")
    .action(async (opts: { ca: string; autoRegistration: boolean; region?: string; json?: boolean }) => {
      const iot = new IoTClient(opts.region ? { region: opts.region } : {});
      try {
        const result = await registerCa(iot, opts.ca, { autoRegistration: opts.autoRegistration });
        printObject({ ...result, autoRegistration: opts.autoRegistration }, opts.json === true);
      } finally {
        iot.destroy();
      }
    });
}
