import type { BlockJobRequest, BlockJobResult } from "../../../api/contract.ts";
import { CliError, printObject, printRows } from "../../output.ts";
import { type Common, confirmed, connect } from "./shared.ts";

interface BlockOptions extends Common {
  lot?: string;
  suspend?: boolean;
  yes?: boolean;
}

/**
 * `jitr block ID ID... | --lot L` (registered with the one-device `jitr block` in ./allowlist.ts): many devices
 * blocked as a job, followed with a progress bar; asks first unless --yes.
 */
export async function blockJob(deviceIds: string[], opts: BlockOptions): Promise<void> {
  if (deviceIds.length > 0 === (opts.lot !== undefined))
    throw new CliError("name the devices to block: device ids, or --lot <lot> (not both)", 2);
  const what = opts.lot !== undefined ? `every device of lot ${opts.lot}` : `${deviceIds.length} device(s)`;
  const how = opts.suspend === true ? "set INACTIVE (suspended)" : "revoked for good";
  await confirmed(`block ${what}: their certificates will be ${how} and their connections dropped.`, opts);
  const api = await connect(opts);
  const request: BlockJobRequest = {
    ...(opts.lot !== undefined ? { lot: opts.lot } : { deviceIds }),
    ...(opts.suspend === true ? { suspend: true } : {}),
  };
  const started = await api.jobs.startBlock(request);
  const json = opts.json === true;
  if (!json) process.stderr.write(`block job ${started.id}\n`);
  const { followJob } = await import("./jobs.ts");
  const job = await followJob(api, started.id);
  const result = job.result as BlockJobResult | undefined;
  if (result !== undefined) printResult(job.id, result, json);
  if (job.state !== "succeeded")
    throw new CliError(`block job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ""}`, 1);
  const unfinished = (result?.outcomes.incomplete ?? 0) + (result?.outcomes.failed ?? 0);
  if (unfinished > 0) throw new CliError(`${unfinished} device(s) not fully blocked: run it again`, 1);
}

/** Prints a block job's result: a summary, then one row per device blocked now or left. */
function printResult(id: string, result: BlockJobResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ job: id, ...result }, null, 2)}\n`);
    return;
  }
  printObject({ job: id, mode: result.mode, examined: result.examined, ...result.outcomes }, false);
  printRows(
    result.devices.map((d) => ({
      deviceId: d.deviceId,
      outcome: d.outcome,
      certificates: d.certificates.join("\n"),
      detail: d.detail ?? "",
    })),
    ["deviceId", "outcome", "certificates", "detail"],
    false,
  );
}
