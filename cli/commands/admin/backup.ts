import { stat } from "node:fs/promises";
import type { Command } from "commander";
import type { JobView, RestoreReport } from "../../../api/contract.ts";
import type { NodeAdminClient } from "../../api-client.ts";
import { CliError, printObject, printRows } from "../../output.ts";
import { changesText } from "./changes.ts";
import { type Common, confirmed, connect, handled, withApi } from "./shared.ts";

interface RestoreOptions extends Common {
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  allowBroadPolicy?: boolean;
}

/** Registers `jitr backup` and `jitr restore`: every lot, mapping and allowlist record in one file, and back. */
export function registerBackup(program: Command): void {
  withApi(
    program
      .command("backup")
      .description(
        "write every lot, mapping and allowlist record (admin fields only) to one JSON-lines file, " +
          "through a backup job (a progress bar on a terminal)",
      )
      .option("--out <file>", "write to a file instead of stdout"),
  ).action(
    handled(async (opts: Common & { out?: string }) => {
      const api = await connect(opts);
      const { downloadJobFile } = await import("./jobs.ts");
      await downloadJobFile(api, await api.jobs.startBackup(), opts.out);
    }),
  );

  withApi(
    program
      .command("restore <file>")
      .description(
        "restore a backup file: every line validated first (one bad line and nothing is written), shows what " +
          "would be created and updated (the fields that change) and asks first unless --yes; bindings of " +
          "devices to certificates and lot counts are never taken from a file",
      )
      .option("--dry-run", "change nothing: show what the restore would create, update and refuse")
      .option("--yes", "restore without asking (needed when stdin is not a terminal)")
      .option("--force", "restore mappings that name thing types, groups or policies that do not exist")
      .option("--allow-broad-policy", "restore mappings whose inline policy grants broadly"),
  ).action(handled(restore));
}

/** `jitr restore`: upload, a dry run shown (and confirmed), then the restore. */
async function restore(file: string, opts: RestoreOptions): Promise<void> {
  const api = await connect(opts);
  const json = opts.json === true;
  const size = await stat(file).then(
    (s) => s.size,
    () => {
      throw new CliError(`cannot read ${file}`);
    },
  );
  if (size === 0) throw new CliError(`${file} is empty: a backup starts with its header line`);
  // Off a terminal without --yes this refuses before uploading, so a script does no work.
  if (!opts.dryRun && opts.yes !== true && process.stdin.isTTY !== true)
    await confirmed(`restore ${file} into the store`, {});
  const { uploadFile } = await import("./jobs.ts");
  const ticket = await api.jobs.requestUpload(size);
  await uploadFile(ticket.upload, file);
  const checks = {
    ...(opts.force ? { force: true } : {}),
    ...(opts.allowBroadPolicy ? { allowBroadPolicy: true } : {}),
  };
  if (opts.dryRun || opts.yes !== true) {
    const preview = await runRestore(api, { file: ticket.file, dryRun: true, ...checks }, json);
    if (opts.dryRun) return;
    const report = preview.result as RestoreReport;
    const changing = changeCount(report);
    if (changing === 0) {
      process.stderr.write("the store holds the backup's records already: nothing to restore\n");
      return;
    }
    await confirmed(`create or update these ${changing} record(s)?`, {});
  }
  await runRestore(api, { file: ticket.file, ...checks }, json);
}

/** Starts a restore job, follows it to its end, prints its report; throws unless it succeeded. */
async function runRestore(
  api: NodeAdminClient,
  request: { file: string; dryRun?: boolean; force?: boolean; allowBroadPolicy?: boolean },
  json: boolean,
): Promise<JobView> {
  const { followJob } = await import("./jobs.ts");
  const started = await api.jobs.startRestore(request);
  if (!json) process.stderr.write(`restore job ${started.id}${request.dryRun ? " (dry run)" : ""}\n`);
  const job = await followJob(api, started.id);
  if (isRestoreReport(job.result)) printRestore(job.result, json);
  if (job.state !== "succeeded")
    throw new CliError(`restore job ${job.id} ${job.state}: ${job.error ?? ""}`, 1);
  return job;
}

const changeCount = (r: RestoreReport): number =>
  r.lots.created +
  r.lots.updated +
  r.mappings.created +
  r.mappings.updated +
  r.allowlist.created +
  r.allowlist.updated;

const isRestoreReport = (value: unknown): value is RestoreReport =>
  typeof value === "object" && value !== null && "lots" in value && "allowlist" in value;

/** Prints a restore report: counts by kind, each created or updated record (with its changes), refusals. */
export function printRestore(report: RestoreReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const { lots, mappings, allowlist } = report;
  if (report.dryRun) process.stdout.write("dry run: nothing written; this is what the restore would do\n");
  printRows(
    [
      { kind: "lots", created: lots.created, updated: lots.updated, unchanged: lots.unchanged },
      {
        kind: "mappings",
        created: mappings.created,
        updated: mappings.updated,
        unchanged: mappings.unchanged,
      },
      {
        kind: "allowlist",
        created: allowlist.created,
        updated: allowlist.updated,
        unchanged: allowlist.unchanged,
      },
    ].map((row) => ({ ...row, rejected: row.kind === "allowlist" ? allowlist.rejectedCount : "" })),
    ["kind", "created", "updated", "unchanged", "rejected"],
    false,
  );
  const rows = [
    ...lots.records.map((r) => ({ kind: "lot", ...r })),
    ...mappings.records.map((r) => ({ kind: "mapping", ...r })),
    ...allowlist.records.map((r) => ({ kind: "allowlist", key: r.deviceId, ...r })),
  ]
    .filter((r) => r.outcome !== "unchanged")
    .map((r) => ({
      line: r.line,
      kind: r.kind,
      key: r.key,
      outcome: r.outcome,
      changes: changesText(r.changes),
    }));
  if (rows.length > 0) printRows(rows, ["line", "kind", "key", "outcome", "changes"], false);
  const rejected = [...report.rejected, ...allowlist.rejected].sort((a, b) => a.line - b.line);
  if (rejected.length > 0) printRows(rejected, ["line", "reason"], false);
  const warnings = [...report.warnings, ...allowlist.warnings];
  if (warnings.length > 0) printRows(warnings, ["line", "message"], false);
  if (report.truncated || allowlist.truncated)
    process.stdout.write("(lists cut at 200 entries; the counts are complete)\n");
  if (report.backup)
    printObject({ backup: `version ${report.backup.version}, ${report.backup.createdAt ?? ""}` }, false);
}
