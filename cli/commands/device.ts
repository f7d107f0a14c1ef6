import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { isValidThingName } from "../../domain/device-id.ts";
import { CliError, printObject } from "../output.ts";
import { certificateIdOf, issueCertificate } from "../pki.ts";
import { loadCa, writeSecret } from "./ca.ts";

/** Where `jitr device create` writes a device's certificate and key. */
export const deviceFiles = (dir: string, id: string) => ({
  certificate: join(dir, `${id}.cert.pem`),
  key: join(dir, `${id}.key.pem`),
});

export function registerDeviceCommands(program: Command): Command {
  const device = program.command("device").description("make device certificates and connect as a device");

  device
    .command("create")
    .description("issue a device certificate signed by the CA: <id>.cert.pem and <id>.key.pem (owner-only)")
    .requiredOption("--ca <dir>", "directory made by `jitr ca create`")
    .requiredOption("--id <deviceId>", "device id, written as the subject CN (a valid thing name)")
    .requiredOption("--out <dir>", "directory to write into")
    .option("--serial-number <sn>", "also set the subject serialNumber (OID 2.5.4.5)")
    .option("--san-uri <uri>", "also add a URI subject alternative name")
    .option("--days <n>", "validity in days", "365")
    .option("--json", "print JSON")
    .action(
      async (opts: {
        ca: string;
        id: string;
        out: string;
        serialNumber?: string;
        sanUri?: string;
        days: string;
        json?: boolean;
      }) => {
        if (!isValidThingName(opts.id)) {
          throw new CliError(
            `--id "${opts.id}" is not a valid thing name ([a-zA-Z0-9:_-], 1 to 128 characters)`,
          );
        }
        const days = Number(opts.days);
        if (!Number.isInteger(days) || days < 1) throw new CliError("--days must be a whole number of days");
        const ca = await loadCa(opts.ca);
        const issued = await issueCertificate(ca, {
          subject: { CN: opts.id, ...(opts.serialNumber ? { serialNumber: opts.serialNumber } : {}) },
          ...(opts.sanUri ? { sanUris: [opts.sanUri] } : {}),
          notAfter: new Date(Date.now() + days * 86_400_000),
        });
        await mkdir(opts.out, { recursive: true });
        const files = deviceFiles(opts.out, opts.id);
        await writeFile(files.certificate, issued.certificatePem);
        await writeSecret(files.key, issued.privateKeyPem);
        printObject(
          { deviceId: opts.id, ...files, certificateId: certificateIdOf(issued.certificatePem) },
          opts.json === true,
        );
      },
    );
  return device;
}
