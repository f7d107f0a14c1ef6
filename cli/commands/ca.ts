import { mkdir } from "node:fs/promises";
import { IoTClient } from "@aws-sdk/client-iot";
import type { Command } from "commander";
import { certificateIdOf, createCa } from "../../pki/certificates.ts";
import { caKeyFiles, registerCa, writeCa } from "../ca.ts";
import { CliError, printObject } from "../output.ts";

/** Adds `jitr ca create` and `jitr ca register`. */
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
      await writeCa(opts.out, created);
      const files = caKeyFiles(opts.out);
      printObject(
        {
          certificate: files.certificate,
          key: files.key,
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
