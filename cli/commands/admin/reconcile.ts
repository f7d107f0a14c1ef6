import type { Command } from "commander";
import { ApiError } from "../../../api/client.ts";
import type { DeviceReconciliation, ReconcileJobResult, ReconcileSlice } from "../../../api/contract.ts";
import type { NodeAdminClient } from "../../api-client.ts";
import { CliError, printObject, printRows } from "../../output.ts";
import { type Common, confirmed, connect, handled, withApi } from "./shared.ts";

interface ReconcileOptions extends Common {
  dryRun?: boolean;
  yes?: boolean;
  limit: string;
}

/** What a whole reconcile run found, over every slice. */
interface ReconcileRun {
  dryRun: boolean;
  examined: number;
  devices: DeviceReconciliation[];
  /** Devices by outcome, when the run listed fewer devices than it counted (a job's result). */
  outcomes?: Record<DeviceReconciliation["outcome"], number>;
  /** The job that ran it. */
  job?: string;
  /** The lots whose count differed from their records' marks (a job's lot recount). */
  lots?: ReconcileJobResult["lots"];
}

/** Registers `jitr reconcile`: bring provisioned devices' policies, thing and groups to what their records select. */
export function registerReconcile(program: Command): void {
  withApi(
    program
      .command("reconcile")
      .description(
        "bring every provisioned device's attached policies, thing (type, attributes), groups and per-device " +
          "policy names to what its records select now, repairing drift; shows the changes and asks first " +
          "unless --yes",
      )
      .option("--dry-run", "change nothing: list the devices that would change and how")
      .option("--yes", "apply without asking (needed when stdin is not a terminal)")
      .option(
        "--limit <n>",
        "devices per request (1-100), where the deployment runs no jobs and reconcile goes slice by slice",
        "20",
      ),
  ).action(
    handled(async (opts: ReconcileOptions) => {
      const api = await connect(opts);
      const json = opts.json === true;
      if (opts.dryRun) {
        const run = await reconcileRun(api, true, opts.limit, json);
        printRun(run, json);
        return;
      }
      if (opts.yes !== true) {
        // Off a terminal this refuses before the preview, so a script without --yes does no work.
        if (process.stdin.isTTY !== true) await confirmed("reconcile changes devices", {});
        const preview = await reconcileRun(api, true, opts.limit, json);
        printRun(preview, json);
        const changing =
          preview.outcomes?.["would-change"] ??
          preview.devices.filter((d) => d.outcome === "would-change").length;
        if (changing === 0) return;
        await confirmed(`apply these changes to ${changing} device(s)?`, {});
      }
      const run = await reconcileRun(api, false, opts.limit, json);
      printRun(run, json);
      const failed = run.outcomes?.failed ?? run.devices.filter((d) => d.outcome === "failed").length;
      if (failed > 0) throw new CliError(`${failed} device(s) could not be reconciled`, 1);
    }),
  );
}

/**
 * Runs reconcile as a job (POST /reconcile-jobs) followed to its end with a progress bar; where the deployment
 * runs no jobs (404), slice by slice through POST /reconcile.
 */
async function reconcileRun(
  api: NodeAdminClient,
  dryRun: boolean,
  limit: string,
  json: boolean,
): Promise<ReconcileRun> {
  let started: Awaited<ReturnType<NodeAdminClient["jobs"]["startReconcile"]>>;
  try {
    started = await api.jobs.startReconcile(dryRun ? { dryRun: true } : {});
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return reconcileAll(api, dryRun, limit, json);
    throw error;
  }
  if (!json) process.stderr.write(`reconcile job ${started.id}${dryRun ? " (dry run)" : ""}\n`);
  const { followJob } = await import("./jobs.ts");
  const job = await followJob(api, started.id);
  const result = job.result as ReconcileJobResult | undefined;
  if (job.state !== "succeeded" || result === undefined)
    throw new CliError(`reconcile job ${job.id} ${job.state}${job.error ? `: ${job.error}` : ""}`, 1);
  return {
    dryRun: result.dryRun,
    examined: result.examined,
    devices: result.devices,
    ...(result.truncated ? { outcomes: result.outcomes } : {}),
    ...(result.lots !== undefined ? { lots: result.lots } : {}),
    job: job.id,
  };
}

/** Runs slices until the last, with a progress bar on a terminal. */
async function reconcileAll(
  api: NodeAdminClient,
  dryRun: boolean,
  limit: string,
  json: boolean,
): Promise<ReconcileRun> {
  const size = Number(limit);
  const bar =
    process.stderr.isTTY === true && !json
      ? new (await import("cli-progress")).SingleBar({
          stream: process.stderr,
          format: `${dryRun ? "examining" : "reconciling"} [{bar}] {value} devices | {changed} to change`,
        })
      : undefined;
  const run: ReconcileRun = { dryRun, examined: 0, devices: [] };
  bar?.start(size, 0, { changed: 0 });
  try {
    let cursor: string | undefined;
    let slice: ReconcileSlice;
    do {
      slice = await api.reconcile.slice({
        limit,
        ...(dryRun ? { dryRun: true } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      run.examined += slice.examined;
      run.devices.push(...slice.devices);
      cursor = slice.cursor;
      bar?.setTotal(slice.done ? run.examined : run.examined + size);
      bar?.update(run.examined, { changed: run.devices.length });
    } while (!slice.done && cursor !== undefined);
  } finally {
    bar?.stop();
  }
  return run;
}

/** Prints a run: a summary, then one row per device that changed or was left; or all of it as JSON. */
function printRun(run: ReconcileRun, json: boolean): void {
  const count = (outcome: DeviceReconciliation["outcome"]) =>
    run.outcomes?.[outcome] ?? run.devices.filter((d) => d.outcome === outcome).length;
  const summary = {
    dryRun: run.dryRun,
    examined: run.examined,
    [run.dryRun ? "wouldChange" : "changed"]: count(run.dryRun ? "would-change" : "changed"),
    unresolved: count("unresolved"),
    skipped: count("skipped"),
    failed: count("failed"),
    ...(run.outcomes !== undefined ? { listed: run.devices.length } : {}),
    ...(run.job !== undefined ? { job: run.job } : {}),
  };
  if (json) {
    const lots = run.lots !== undefined ? { lots: run.lots } : {};
    process.stdout.write(`${JSON.stringify({ ...summary, devices: run.devices, ...lots }, null, 2)}\n`);
    return;
  }
  printObject(summary, false);
  printRows(
    run.devices.map((d) => ({
      deviceId: d.deviceId,
      outcome: d.outcome,
      actions: d.actions.join("\n"),
      detail: d.detail ?? "",
    })),
    ["deviceId", "outcome", "actions", "detail"],
    false,
  );
  if (run.lots !== undefined && run.lots.length > 0) {
    process.stdout.write("lot counts that differed from their records' marks:\n");
    printRows(run.lots, ["lot", "before", "after", "outcome"], false);
  }
}
