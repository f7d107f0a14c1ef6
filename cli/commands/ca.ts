import type { Command } from "commander";
import { defaultCaDir, prepareKeyDirectory } from "../key-directory.ts";
import { CliError, printObject } from "../output.ts";

/** Adds `jitr ca create` and `jitr ca register`. */
export function registerCaCommands(program: Command): void {
  const ca = program.command("ca").description("create and register the CA that signs device certificates");

  ca.command("create")
    .description("create a CA (EC P-256) in a directory: ca.pem and ca.key (owner-only)")
    .option("--out <dir>", "directory to write the CA into (env JITR_DATA moves the default)", defaultCaDir())
    .option("--name <cn>", "subject common name", "JITR Fleet CA")
    .option("--days <n>", "validity in days", "3650")
    .option("--force", "replace a CA already in --out (devices it signed lose their issuer's key)")
    .option("--json", "print JSON")
    .action(async (opts: { out: string; name: string; days: string; force?: boolean; json?: boolean }) => {
      const days = Number(opts.days);
      if (!Number.isInteger(days) || days < 1) throw new CliError("--days must be a whole number of days");
      const { caKeyFiles, writeCa } = await import("../ca.ts");
      const files = caKeyFiles(opts.out);
      await prepareKeyDirectory(opts.out, [files.certificate, files.key], opts.force === true);
      const { certificateIdOf, createCa } = await import("../../pki/certificates.ts");
      const created = await createCa({ commonName: opts.name, days });
      await writeCa(opts.out, created);
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
    .option("--ca <dir>", "directory made by `jitr ca create`", defaultCaDir())
    .option("--no-auto-registration", "do not turn on auto-registration of device certificates")
    .option("--region <region>", "AWS region (default from the environment)")
    .option("--json", "print JSON")
    .action(async (opts: { ca: string; autoRegistration: boolean; region?: string; json?: boolean }) => {
      const [{ IoTClient }, { registerCa }] = await Promise.all([
        import("@aws-sdk/client-iot"),
        import("../ca.ts"),
      ]);
      const iot = new IoTClient(opts.region ? { region: opts.region } : {});
      try {
        const result = await registerCa(iot, opts.ca, { autoRegistration: opts.autoRegistration });
        printObject({ ...result, autoRegistration: opts.autoRegistration }, opts.json === true);
      } finally {
        iot.destroy();
      }
    });
}
