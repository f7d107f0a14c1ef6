import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { isThingName, THING_NAME_RULE } from "../../domain/naming.ts";
import { defaultDataDir, loadLocalEndpoints } from "../../local/contract.ts";
import { defaultCaDir, defaultDeviceDir, prepareKeyDirectory } from "../key-directory.ts";
import { CliError, printObject } from "../output.ts";

/** Adds `jitr device create` and `jitr device connect`. */
export function registerDeviceCommands(program: Command): Command {
  const device = program.command("device").description("make device certificates and connect as a device");

  device
    .command("create")
    .description("issue a device certificate signed by the CA: <id>.cert.pem and <id>.key.pem (owner-only)")
    .option("--ca <dir>", "directory made by `jitr ca create`", defaultCaDir())
    .requiredOption("--id <deviceId>", "device id, written as the subject CN (a valid thing name)")
    .option("--out <dir>", "directory to write into", defaultDeviceDir())
    .option("--serial-number <sn>", "also set the subject serialNumber (OID 2.5.4.5)")
    .option("--san-uri <uri>", "also add a URI subject alternative name")
    .option("--days <n>", "validity in days", "365")
    .option("--force", "replace the device's certificate and key if --out already holds them")
    .option("--json", "print JSON")
    .action(
      async (opts: {
        ca: string;
        id: string;
        out: string;
        serialNumber?: string;
        sanUri?: string;
        days: string;
        force?: boolean;
        json?: boolean;
      }) => {
        if (!isThingName(opts.id)) {
          throw new CliError(`--id "${opts.id}" is not a valid thing name (${THING_NAME_RULE})`);
        }
        const days = Number(opts.days);
        if (!Number.isInteger(days) || days < 1) throw new CliError("--days must be a whole number of days");
        const [{ deviceFiles, loadCa }, { certificateIdOf, issueCertificate }, { writeKeyFiles }] =
          await Promise.all([
            import("../ca.ts"),
            import("../../pki/certificates.ts"),
            import("../../pki/key-files.ts"),
          ]);
        const files = deviceFiles(opts.out, opts.id);
        const ca = await loadCa(opts.ca);
        const issued = await issueCertificate(ca, {
          subject: { CN: opts.id, ...(opts.serialNumber ? { serialNumber: opts.serialNumber } : {}) },
          ...(opts.sanUri ? { sanUris: [opts.sanUri] } : {}),
          notAfter: new Date(Date.now() + days * 86_400_000),
        });
        await prepareKeyDirectory(opts.out, [files.certificate, files.key], opts.force === true);
        await writeKeyFiles(files, issued);
        printObject(
          { deviceId: opts.id, ...files, certificateId: certificateIdOf(issued.certificatePem) },
          opts.json === true,
        );
      },
    );
  device
    .command("connect")
    .description(
      "connect as a real device would (MQTT over TLS with the certificate), retrying with backoff while the " +
        "certificate is registered and provisioned; then publish one message. Defaults to the local gateway.",
    )
    .requiredOption("--cert <file>", "device certificate (PEM)")
    .requiredOption("--key <file>", "device private key (PEM)")
    .option("--client-id <id>", "MQTT client id (default: the certificate's subject CN)")
    .option(
      "--host <host>",
      "MQTT endpoint host (default: the local gateway; on AWS, your iot:Data-ATS endpoint)",
    )
    .option("--port <port>", "MQTT endpoint port", "8883")
    .option(
      "--ca <file>",
      "CA of the endpoint's server certificate (default: the local gateway CA; on AWS, AmazonRootCA1.pem)",
    )
    .option("--data <dir>", "state directory of `jitr local`", defaultDataDir())
    .option("--topic <topic>", "publish here once connected (default devices/<client id>/telemetry)")
    .option("--message <json>", "payload to publish", '{"hello":"world"}')
    .option("--deadline <seconds>", "give up after this long", "60")
    .option("--json", "print JSON")
    .action(async (opts) => {
      const [{ readCertificate }, { connectWithRetry, publishAcknowledged }] = await Promise.all([
        import("../../domain/certificate.ts"),
        import("../device-client.ts"),
      ]);
      const [certificatePem, privateKeyPem] = await Promise.all([
        readFile(opts.cert, "utf8"),
        readFile(opts.key, "utf8"),
      ]);
      let clientId: string | undefined = opts.clientId;
      if (clientId === undefined) {
        try {
          clientId = readCertificate(certificatePem).commonName;
        } catch {
          throw new CliError(`${opts.cert} is not a PEM certificate`);
        }
      }
      if (!clientId) throw new CliError("the certificate has no subject CN: pass --client-id");
      let host: string = opts.host;
      let port = Number(opts.port);
      let caPem: string;
      if (host === undefined) {
        const endpoints = await loadLocalEndpoints(opts.data);
        host = endpoints.mqttHost;
        port = endpoints.mqttPort;
        caPem = await readFile(opts.ca ?? endpoints.gatewayCaFile, "utf8");
      } else {
        if (opts.ca === undefined) throw new CliError("--ca is required with --host");
        caPem = await readFile(opts.ca, "utf8");
      }
      const started = Date.now();
      const result = await connectWithRetry(
        { clientId, certificatePem, privateKeyPem },
        { host, port, caPem },
        {
          deadlineMs: Number(opts.deadline) * 1000,
          onAttempt: (attempt, outcome, error) => {
            if (!opts.json)
              process.stderr.write(`attempt ${attempt}: ${outcome}${error ? ` (${error})` : ""}\n`);
          },
        },
      );
      if (!result.client)
        throw new CliError(`not connected after ${result.attempts} attempts (${result.stopReason})`);
      const topic = opts.topic ?? `devices/${clientId}/telemetry`;
      const published = await publishAcknowledged(result.client, topic, opts.message);
      result.client.end(true);
      printObject(
        {
          clientId,
          attempts: result.attempts,
          connectedAfterMs: (result.connectedAt ?? Date.now()) - started,
          topic,
          published,
        },
        opts.json === true,
      );
      if (!published) throw new CliError(`publishing to ${topic} was not authorized`);
    });
  return device;
}
