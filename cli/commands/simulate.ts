import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { defaultDataDir, LOCAL_CREDENTIALS, LOCAL_TABLES, loadLocalEndpoints } from "../../local/contract.ts";
import { CliError } from "../output.ts";

/** Adds `jitr simulate`. */
export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description(
      "run a simulated fleet against a running `jitr local`: a simulation CA, allowlist records and N devices " +
        "(most allowlisted, some unknown, one blocked, one clone), with a progress bar and a summary",
    )
    .option("--data <dir>", "state directory of the running `jitr local`", defaultDataDir())
    .option("--devices <n>", "number of devices", "50")
    .option("--concurrency <n>", "devices connecting at once", "16")
    .option("--prefix <name>", "device id prefix, so runs do not collide", "sim")
    .option("--deadline <seconds>", "give up on a device after this long", "120")
    .option("--json", "print the summary as JSON")
    .action(async (opts) => {
      const devices = Number(opts.devices);
      const concurrency = Number(opts.concurrency);
      const deadline = Number(opts.deadline);
      if (!Number.isInteger(devices) || devices < 1)
        throw new CliError("--devices must be a whole number >= 1");
      if (!Number.isInteger(concurrency) || concurrency < 1)
        throw new CliError("--concurrency must be a whole number >= 1");
      if (!Number.isFinite(deadline) || deadline <= 0)
        throw new CliError("--deadline must be a number of seconds");
      if (!/^[a-z0-9-]{1,20}$/.test(opts.prefix)) throw new CliError("--prefix must be 1-20 of [a-z0-9-]");
      const endpoints = await loadLocalEndpoints(opts.data);
      const [
        { DynamoDBClient },
        { IoTClient },
        { demoOracles, prepareDemo },
        { runFleet },
        { printFleetSummary, progressBar },
      ] = await Promise.all([
        import("@aws-sdk/client-dynamodb"),
        import("@aws-sdk/client-iot"),
        import("../demo.ts"),
        import("../fleet.ts"),
        import("../report.ts"),
      ]);
      const config = {
        endpoint: endpoints.awsEndpoint,
        region: endpoints.region,
        credentials: LOCAL_CREDENTIALS,
      };
      const target = {
        clients: { iot: new IoTClient(config), dynamo: new DynamoDBClient(config) },
        tables: LOCAL_TABLES,
      };
      try {
        const fleet = await prepareDemo(target, opts.data, devices, {
          prefix: opts.prefix,
          lot: `${opts.prefix}-lot-1`,
        });
        const bar = progressBar(fleet.length, "devices", process.stderr.isTTY === true && opts.json !== true);
        const summary = await runFleet({
          endpoint: {
            host: endpoints.mqttHost,
            port: endpoints.mqttPort,
            caPem: await readFile(endpoints.gatewayCaFile, "utf8"),
          },
          devices: fleet,
          concurrency,
          deadlineMs: deadline * 1000,
          ...demoOracles(target),
          onOutcome: (o, done) => bar.update(done, `${o.deviceId}: ${o.actual}`),
        });
        bar.stop();
        printFleetSummary(summary, opts.json === true);
        if (!summary.allAsExpected) throw new CliError("some devices did not end as expected");
      } finally {
        target.clients.iot.destroy();
        target.clients.dynamo.destroy();
      }
    });
}
