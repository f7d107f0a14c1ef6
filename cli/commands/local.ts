import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { LogLevel } from "@aws-lambda-powertools/logger/types";
import type { Command } from "commander";
import { defaultDataDir, ENDPOINTS_FILE, LOCAL_PORTS } from "../../local/contract.ts";
import { CliError } from "../output.ts";

const port = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliError(`${name} must be a port number; got "${value}"`);
  return n;
};

/** Adds `jitr local`. */
export function registerLocalCommands(program: Command): void {
  program
    .command("local")
    .description(
      "run the whole service locally in one process: AWS endpoint (IoT emulator + DynamoDB), admin API, " +
        "device gateway (MQTT over TLS) and the provisioning handler behind the rule path",
    )
    .option("--data <dir>", "state directory (env JITR_DATA)", defaultDataDir())
    .option("--devices <n>", "run a demo fleet of N devices after start", "0")
    .option("--exit", "exit after the demo; status 0 only if every device ended as expected")
    .option(
      "--host <host>",
      "address to listen on (env JITR_LOCAL_HOST)",
      process.env.JITR_LOCAL_HOST ?? "127.0.0.1",
    )
    .option(
      "--aws-port <port>",
      "AWS endpoint port (env JITR_LOCAL_AWS_PORT)",
      process.env.JITR_LOCAL_AWS_PORT,
    )
    .option(
      "--admin-port <port>",
      "admin API port (env JITR_LOCAL_ADMIN_PORT)",
      process.env.JITR_LOCAL_ADMIN_PORT,
    )
    .option(
      "--mqtt-port <port>",
      "device gateway port (env JITR_LOCAL_MQTT_PORT)",
      process.env.JITR_LOCAL_MQTT_PORT,
    )
    .option(
      "--concurrency <n>",
      "provisioning batches handled at once (the deployed MaximumConcurrency)",
      "4",
    )
    .option("--quotas", "enforce AWS IoT's default API rates (env JITR_LOCAL_QUOTAS=1)")
    .option("--log-level <level>", "provisioning log level: DEBUG, INFO, WARN, ERROR", "ERROR")
    .option("--json", "print the demo summary as JSON")
    .action(async (opts) => {
      const devices = Number(opts.devices);
      if (!Number.isInteger(devices) || devices < 0) throw new CliError("--devices must be a whole number");
      const logLevel = String(opts.logLevel).toUpperCase();
      if (!["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL", "SILENT"].includes(logLevel)) {
        throw new CliError(
          `--log-level must be one of DEBUG, INFO, WARN, ERROR, SILENT; got "${opts.logLevel}"`,
        );
      }
      const { startLocalStack } = await import("../../local/stack.ts");
      const stack = await startLocalStack({
        dataDir: opts.data,
        host: opts.host,
        awsPort: port("--aws-port", opts.awsPort, LOCAL_PORTS.aws),
        adminPort: port("--admin-port", opts.adminPort, LOCAL_PORTS.admin),
        mqttPort: port("--mqtt-port", opts.mqttPort, LOCAL_PORTS.mqtt),
        concurrency: Number(opts.concurrency) || 4,
        logLevel: logLevel as LogLevel,
        ...(opts.quotas ? { quotas: { enabled: true } } : {}),
      });
      // Signal handlers go in before "ready" is printed: a supervisor may signal as soon as it reads it.
      let stopping = false;
      const stop = async (code: number) => {
        if (stopping) return;
        stopping = true;
        await stack.close();
        process.exit(code);
      };
      process.once("SIGINT", () => void stop(0));
      process.once("SIGTERM", () => void stop(0));
      const e = stack.endpoints;
      const { replayed } = stack.rulePath.stats();
      process.stdout.write(
        [
          `AWS endpoint    ${e.awsEndpoint}   (AWS_ENDPOINT_URL=${e.awsEndpoint})`,
          `admin API       ${e.adminApi}   (token in ${e.adminTokenFile})`,
          `device gateway  mqtts://${e.mqttHost}:${e.mqttPort}   (server CA ${e.gatewayCaFile})`,
          `state           ${join(opts.data, ENDPOINTS_FILE)}`,
          ...(replayed > 0
            ? [`queue           ${replayed} unacked events from the last run queued again`]
            : []),
          ...(stack.aws.indexRepair
            ? [
                `tables          the last run was killed: ${stack.aws.indexRepair.tables} tables checked against their indexes, ${stack.aws.indexRepair.items} items written again`,
              ]
            : []),
          "jitr local ready",
          "",
        ].join("\n"),
      );

      if (devices > 0) {
        const [{ prepareDemo, demoOracles }, { runFleet }, { printFleetSummary, progressBar }] =
          await Promise.all([import("../demo.ts"), import("../fleet.ts"), import("../report.ts")]);
        const fleet = await prepareDemo(stack, opts.data, devices);
        const bar = progressBar(fleet.length, "devices");
        const summary = await runFleet({
          endpoint: { host: e.mqttHost, port: e.mqttPort, caPem: await readFile(e.gatewayCaFile, "utf8") },
          devices: fleet,
          ...demoOracles(stack, (id) => stack.aws.iot.describeCertificateById(id)?.status),
          onOutcome: (o, done) => bar.update(done, `${o.deviceId}: ${o.actual}`),
        });
        bar.stop();
        printFleetSummary(summary, opts.json === true);
        if (opts.exit) await stop(summary.allAsExpected ? 0 : 1);
        else process.stdout.write("still running; Ctrl-C to stop\n");
      } else if (opts.exit) {
        await stop(0);
      }
    });
}
