/**
 * Runs one measurement of `npm run bench` in a process of its own, so each starts from a fresh heap and
 * an empty emulator whatever ran before it (a later section would otherwise pay for the garbage and the
 * state of the earlier ones). The child runs this same file: it receives the measurement over IPC, runs it
 * and sends back the figures.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type EndToEndFigures, type EndToEndOptions, endToEnd } from "./e2e.ts";
import { runServiceThroughput, type ServiceRunOptions, type ServiceRunResult } from "./service.ts";

export type Measurement =
  | { kind: "service"; options: ServiceRunOptions }
  | { kind: "e2e"; options: EndToEndOptions };

type Reply = { ok: true; figures: ServiceRunResult | EndToEndFigures } | { ok: false; error: string };

const THIS_FILE = fileURLToPath(import.meta.url);

async function measure(measurement: Measurement): Promise<ServiceRunResult | EndToEndFigures> {
  return measurement.kind === "service"
    ? runServiceThroughput(measurement.options)
    : endToEnd(measurement.options);
}

/** Forks a process for one measurement and resolves with its figures; rejects if it fails or exits early. */
export function runIsolated(measurement: {
  kind: "service";
  options: ServiceRunOptions;
}): Promise<ServiceRunResult>;
export function runIsolated(measurement: { kind: "e2e"; options: EndToEndOptions }): Promise<EndToEndFigures>;
export function runIsolated(measurement: Measurement): Promise<ServiceRunResult | EndToEndFigures> {
  return new Promise((resolve, reject) => {
    const child = fork(THIS_FILE, ["--measure"], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let replied = false;
    child.once("message", (reply: Reply) => {
      replied = true;
      if (reply.ok) resolve(reply.figures);
      else reject(new Error(`${measurement.kind} measurement failed: ${reply.error}`));
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (!replied)
        reject(
          new Error(`${measurement.kind} measurement process exited (${signal ?? code}) before reporting`),
        );
    });
    child.send(measurement);
  });
}

if (process.argv[1] === THIS_FILE && process.argv.includes("--measure")) {
  process.once("message", (measurement: Measurement) => {
    measure(measurement)
      .then((figures): Reply => ({ ok: true, figures }))
      .catch(
        (error: unknown): Reply => ({
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
      )
      .then((reply) => process.send?.(reply, () => process.exit(reply.ok ? 0 : 1)));
  });
}
