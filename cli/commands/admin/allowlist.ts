import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Command, Option } from "commander";
import { ApiError, orNone } from "../../../api/client.ts";
import {
  type AllowlistStatus,
  type CutOff,
  type ImportFormat,
  type ImportMode,
  type ImportReport,
  withoutServiceFields,
} from "../../../api/contract.ts";
import { CliError, printObject, printPage, printRows } from "../../output.ts";
import { changesText } from "./changes.ts";
import {
  addGetCommand,
  type Common,
  collectList,
  confirmed,
  connect,
  describeCutOff,
  draftOf,
  handled,
  type PageOptions,
  type PutOptions,
  parseAttributes,
  printDeleted,
  printWritten,
  withApi,
  withPaging,
  withYes,
} from "./shared.ts";

interface AllowlistPutOptions extends PutOptions {
  status?: string;
  profile?: string;
  thingType?: string;
  thingGroup?: string[];
  attribute?: string[];
  caCertificateId?: string;
  fingerprint?: string;
  notBefore?: string;
  notAfter?: string;
  lot?: string;
  rotation?: string;
  note?: string;
  removeAttribute?: string[];
  removeThingGroup?: string[];
  suspend?: boolean;
  yes?: boolean;
}

/** `jitr block`'s options: one device blocked directly, several or a lot (`--lot`) as a block job. */
type BlockCommandOptions = Common & { suspend?: boolean; yes?: boolean; lot?: string };

/** Registers `jitr allowlist put|get|list|remove|import|export`, and `jitr block`. */
export function registerAllowlist(program: Command): void {
  const allowlist = program
    .command("allowlist")
    .description("allowlist records: which devices may be provisioned, and how (through the admin API)");

  withApi(
    allowlist
      .command("put <deviceId>")
      .description(
        "create or update a record; given fields are merged into the current record (--replace: replace it). " +
          "Uses If-Match with the version read, so a concurrent change fails instead of being overwritten",
      )
      .addOption(new Option("--status <status>", "allowed or blocked").choices(["allowed", "blocked"]))
      .option("--profile <profile>", "profile (selects mapping profile:<profile>)")
      .option("--thing-type <type>", "thing type of the device's thing")
      .option("--thing-group <group>", "add the thing to this thing group (repeatable; merged)", collectList)
      .option(
        "--remove-thing-group <group>",
        "take a thing group out of the record (repeatable)",
        collectList,
      )
      .option(
        "--attribute <name=value>",
        "set one thing attribute (repeatable; merged key by key)",
        collectList,
      )
      .option("--remove-attribute <name>", "remove one thing attribute (repeatable)", collectList)
      .option("--ca-certificate-id <id>", "pin the CA (64 hex)")
      .option("--fingerprint <sha256>", "pin the certificate fingerprint (64 hex, colons allowed)")
      .option("--not-before <date>", "valid from (ISO 8601)")
      .option("--not-after <date>", "valid until (ISO 8601)")
      .option("--lot <lot>", "manufacturing lot")
      .addOption(
        new Option("--rotation <rotation>", "a second certificate").choices([
          "reject",
          "replace",
          "allow-multiple",
        ]),
      )
      .option("--note <text>", "free text")
      .option("--file <record.json>", "fields from a JSON file (flags win)")
      .option("--unset <field>", "remove a field (repeatable)", collectList)
      .option("--replace", "replace the record instead of merging into it")
      .option("--if-match <version>", "expected version (default: the version just read)")
      .option(
        "--suspend",
        "with --status blocked: set the device's certificates INACTIVE (reversible: unblock, then approve) instead of revoking them",
      )
      .option("--yes", "do not ask before blocking a provisioned device (required without a terminal)"),
  ).action(
    handled(async (deviceId: string, opts: AllowlistPutOptions) => {
      const api = await connect(opts);
      if (opts.suspend === true && opts.status !== "blocked")
        throw new CliError("--suspend goes with --status blocked");
      const current = await orNone(api.allowlist.get(deviceId));
      const fields = {
        status: opts.status,
        profile: opts.profile,
        thingType: opts.thingType,
        caCertificateId: opts.caCertificateId,
        certificateFingerprint: opts.fingerprint,
        notBefore: opts.notBefore,
        notAfter: opts.notAfter,
        lot: opts.lot,
        rotation: opts.rotation,
        note: opts.note,
      };
      const read = () => (current !== undefined ? Promise.resolve(current) : api.allowlist.get(deviceId));
      const { body, condition } = await draftOf(read, fields, opts, "put");
      mergeAttributes(body, parseAttributes(opts.attribute), opts.removeAttribute ?? []);
      mergeThingGroups(body, opts.thingGroup ?? [], opts.removeThingGroup ?? []);
      const record = current?.value;
      if (body.status === "blocked" && record?.status !== "blocked" && record?.certificateId !== undefined) {
        const what = opts.suspend === true ? "set INACTIVE (suspended)" : "revoked for good";
        await confirmed(
          `block ${deviceId}: its certificates will be ${what} and its connections dropped.`,
          opts,
        );
      }
      const written = await api.allowlist.put(deviceId, body, condition, { suspend: opts.suspend === true });
      printWritten(deviceId, written, opts.json === true);
      reportBlock(written.value.block, opts.json === true);
    }),
  );

  withApi(
    withYes(
      program
        .command("block [deviceIds...]")
        .description(
          "block a device: write its record blocked, then revoke every live certificate of the device " +
            "(--suspend: set them INACTIVE, reversible: unblock with allowlist put --status allowed, then approve); " +
            "its connections drop. Asks first unless --yes. Running it again finishes a block that failed part-way. " +
            "Several device ids, or --lot, block them all as a job followed with a progress bar",
        )
        .option("--suspend", "set the certificates INACTIVE instead of revoking them")
        .option("--lot <lot>", "block every device whose record names this lot (as a job)"),
    ),
  ).action(
    handled(async (deviceIds: string[], opts: BlockCommandOptions) => {
      const [deviceId] = deviceIds;
      if (deviceIds.length !== 1 || opts.lot !== undefined || deviceId === undefined) {
        const { blockJob } = await import("./block.ts");
        return blockJob(deviceIds, opts);
      }
      const api = await connect(opts);
      const current = await api.allowlist.get(deviceId);
      const what = opts.suspend === true ? "set INACTIVE (suspended)" : "revoked for good";
      await confirmed(
        `block ${deviceId}: its certificates will be ${what} and its connections dropped.`,
        opts,
      );
      const body = { ...withoutServiceFields(current.value), status: "blocked" };
      const written = await api.allowlist.put(
        deviceId,
        body,
        { ifMatch: current.etag },
        {
          suspend: opts.suspend === true,
        },
      );
      if (opts.json === true) printObject(written.value, true);
      reportBlock(written.value.block, opts.json === true);
    }),
  );

  addGetCommand(allowlist, "deviceId", "show a record", (api, name) => api.allowlist.get(name));

  withApi(
    withPaging(
      allowlist
        .command("list")
        .description(
          "list records, optionally by status, lot, device id prefix or profile (one page; --cursor for the next)",
        )
        .addOption(new Option("--status <status>", "only this status").choices(["allowed", "blocked"]))
        .option("--lot <lot>", "only this lot")
        .option("--prefix <prefix>", "only device ids starting with this")
        .option("--profile <profile>", "only this profile"),
      "records",
    ),
  ).action(
    handled(
      async (
        opts: Common & {
          status?: AllowlistStatus;
          lot?: string;
          prefix?: string;
          profile?: string;
        } & PageOptions,
      ) => {
        const page = await (await connect(opts)).allowlist.list({
          status: opts.status,
          lot: opts.lot,
          prefix: opts.prefix,
          profile: opts.profile,
          limit: opts.limit,
          cursor: opts.cursor,
        });
        printPage(
          page,
          ["deviceId", "status", "profile", "lot", "thingType", "certificateId", "version"],
          opts.json === true,
        );
      },
    ),
  );

  withApi(
    withYes(
      allowlist
        .command("remove <deviceId>")
        .description(
          "delete a record (refused while it is bound to an ACTIVE certificate: deprovision first); asks first unless --yes",
        )
        .option("--if-match <version>", "only if the record is at this version"),
    ),
  ).action(
    handled(async (deviceId: string, opts: Common & { ifMatch?: string; yes?: boolean }) => {
      await confirmed(
        `remove the allowlist record of ${deviceId}: the device is no longer allowlisted.`,
        opts,
      );
      await (await connect(opts)).allowlist.remove(
        deviceId,
        opts.ifMatch ? { ifMatch: opts.ifMatch } : undefined,
      );
      printDeleted(deviceId, opts.json === true);
    }),
  );

  withApi(
    allowlist
      .command("import <file>")
      .description(
        "import records from JSON lines or CSV (or an AWS bulk-provisioning parameter file); prints a report. " +
          "CSV columns: deviceId, status, profile, thingType, thingGroups (a;b), lot, ..., attributes.<name>",
      )
      .addOption(
        new Option(
          "--mode <mode>",
          "best-effort writes every valid line; all-or-nothing writes nothing if one is bad",
        )
          .choices(["best-effort", "all-or-nothing"])
          .default("best-effort"),
      )
      .addOption(
        new Option("--format <format>", "input format (default: by extension, else sniffed)").choices([
          "jsonl",
          "csv",
        ]),
      )
      .option("--dry-run", "say what each line would do to each record; write nothing")
      .option("--job", "run as a job through an upload URL (the default for a file over 5 MiB)"),
  ).action(handled(importFile));

  withApi(
    allowlist
      .command("export")
      .description("print every record as JSON lines (the form import reads back)")
      .option("--out <file>", "write to a file instead of stdout")
      .option("--job", "run as a job that writes the file, then download it (for a large allowlist)"),
  ).action(
    handled(async (opts: Common & { out?: string; job?: boolean }) => {
      if (opts.job) {
        await exportJob(opts);
        return;
      }
      const chunks = await (await connect(opts)).allowlist.export();
      if (opts.out === undefined) {
        for await (const chunk of chunks) process.stdout.write(chunk);
        return;
      }
      const lines = lineCounter();
      await pipeline(chunks, lines.counting, createWriteStream(opts.out));
      process.stderr.write(`wrote ${lines.count()} records to ${opts.out}\n`);
    }),
  );
}

/** Merges `--attribute` pairs into the body's attributes key by key, then removes `--remove-attribute` names. */
function mergeAttributes(
  body: Record<string, unknown>,
  set: Record<string, string> | undefined,
  remove: string[],
): void {
  const stored = body.attributes;
  const merged: Record<string, unknown> =
    typeof stored === "object" && stored !== null && !Array.isArray(stored) ? { ...stored } : {};
  for (const name of remove) {
    if (set?.[name] !== undefined) throw new CliError(`attribute ${name} is both set and removed`);
    if (!(name in merged))
      throw new CliError(`--remove-attribute ${name}: the record has no attribute ${name} to remove`);
    delete merged[name];
  }
  Object.assign(merged, set ?? {});
  if (Object.keys(merged).length > 0) body.attributes = merged;
  else delete body.attributes;
}

/** Adds `--thing-group` groups to the body's thing groups, then removes `--remove-thing-group` ones. */
function mergeThingGroups(body: Record<string, unknown>, add: string[], remove: string[]): void {
  const stored = Array.isArray(body.thingGroups) ? body.thingGroups.map(String) : [];
  for (const group of remove) {
    if (add.includes(group)) throw new CliError(`thing group ${group} is both added and removed`);
    if (!stored.includes(group))
      throw new CliError(`--remove-thing-group ${group}: the record has no thing group ${group} to remove`);
  }
  const merged = [...new Set([...stored, ...add])].filter((group) => !remove.includes(group));
  if (merged.length > 0) body.thingGroups = merged;
  else delete body.thingGroups;
}

/** Says what a block did to the device's certificates (stderr for people); exit status 1 when unfinished. */
function reportBlock(block: CutOff | undefined, json: boolean): void {
  if (block === undefined) return;
  if (!json) process.stderr.write(describeCutOff(block));
  if (!block.complete) throw new CliError(`block of ${block.deviceId} unfinished: run it again`, 1);
}

/** The largest file `allowlist import` sends in one request; a larger one goes through a job. */
const DIRECT_IMPORT_BYTES = 5 * 1024 * 1024;

/** `jitr allowlist import`: streams the file to the API (with a progress bar on a terminal), prints the report. */
async function importFile(
  file: string,
  opts: Common & { mode: ImportMode; format?: ImportFormat; dryRun?: boolean; job?: boolean },
) {
  const api = await connect(opts);
  const size = await stat(file).then(
    (s) => s.size,
    () => {
      throw new CliError(`cannot read ${file}`);
    },
  );
  const format =
    opts.format ?? (/\.csv$/i.test(file) ? "csv" : /\.(jsonl|ndjson)$/i.test(file) ? "jsonl" : undefined);
  if (opts.job || size > DIRECT_IMPORT_BYTES) {
    await importJob(api, file, size, { ...opts, ...(format ? { format } : {}) });
    return;
  }
  const bar = process.stderr.isTTY
    ? new (await import("cli-progress")).SingleBar({
        stream: process.stderr,
        format: "importing [{bar}] {percentage}% | {value}/{total} bytes",
      })
    : undefined;
  let sent = 0;
  const progress = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      bar?.update(sent);
      done(null, chunk);
    },
  });
  bar?.start(size, 0);
  let report: ImportReport;
  try {
    report = await api.allowlist.import(createReadStream(file).pipe(progress), {
      mode: opts.mode,
      ...(format ? { format } : {}),
      ...(opts.dryRun ? { dryRun: true } : {}),
    });
  } catch (error) {
    // A refused import (a bad line in all-or-nothing, a limit broken) still answers with its report.
    if (!(error instanceof ApiError) || !isReport(error.details)) throw error;
    report = error.details;
    process.stderr.write(`${error.message}\n`);
  } finally {
    bar?.stop();
  }
  printReport(report, opts.json === true);
  if (report.stopped !== undefined) throw new CliError(`import stopped at line ${report.stopped.line}`, 1);
  if (report.rejectedCount > 0) throw new CliError(`${report.rejectedCount} line(s) rejected`, 1);
}

/** The job flow of an import: an upload URL, the file put there, the job started and followed, its report. */
async function importJob(
  api: Awaited<ReturnType<typeof connect>>,
  file: string,
  size: number,
  opts: Common & { mode: ImportMode; format?: ImportFormat; dryRun?: boolean },
) {
  const { followJob, uploadFile } = await import("./jobs.ts");
  const ticket = await api.jobs.requestUpload(size);
  await uploadFile(ticket.upload, file);
  const started = await api.jobs.startImport({
    file: ticket.file,
    mode: opts.mode,
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.dryRun ? { dryRun: true } : {}),
  });
  if (!opts.json) process.stderr.write(`import job ${started.id}\n`);
  const job = await followJob(api, started.id);
  if (isReport(job.result)) printReport(job.result, opts.json === true);
  if (job.state !== "succeeded")
    throw new CliError(`import job ${job.id} ${job.state}: ${job.error ?? ""}`, 1);
  if (isReport(job.result) && job.result.rejectedCount > 0)
    throw new CliError(`${job.result.rejectedCount} line(s) rejected`, 1);
}

/** `jitr allowlist export --job`: an export job followed to its end, its file downloaded. */
async function exportJob(opts: Common & { out?: string }) {
  const api = await connect(opts);
  const { downloadJobFile } = await import("./jobs.ts");
  await downloadJobFile(api, await api.jobs.startExport(), opts.out);
}

const isReport = (details: unknown): details is ImportReport =>
  typeof details === "object" && details !== null && "mode" in details && "rejectedCount" in details;

function printReport(report: ImportReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  printObject(
    {
      mode: report.mode,
      ...(report.dryRun ? { "dry run": "nothing written; the counts say what the import would do" } : {}),
      format: report.format,
      accepted: report.accepted,
      created: report.created,
      replaced: report.replaced,
      merged: report.merged,
      unchanged: report.unchanged,
      rejected: report.rejectedCount,
      warnings: report.warnings.length,
      ...(report.stopped ? { stopped: `at line ${report.stopped.line}: ${report.stopped.reason}` } : {}),
    },
    false,
  );
  if (report.records.length > 0) {
    const rows = report.records.map((r) => ({ ...r, changes: changesText(r.changes) }));
    printRows(rows, ["line", "deviceId", "outcome", "changes"], false);
  }
  if (report.rejected.length > 0) printRows(report.rejected, ["line", "reason"], false);
  if (report.warnings.length > 0) printRows(report.warnings, ["line", "message"], false);
  if (report.truncated) process.stdout.write("(lists cut at 1,000 lines; the counts are complete)\n");
}

/** A pass-through stream that counts the non-empty lines going through it. */
function lineCounter(): { counting: Transform; count: () => number } {
  let count = 0;
  let partial = "";
  const counting = new Transform({
    transform(chunk: Buffer | string, _encoding, done) {
      const lines = (partial + String(chunk)).split("\n");
      partial = lines.pop() ?? "";
      count += lines.filter(Boolean).length;
      done(null, chunk);
    },
  });
  return { counting, count: () => count + (partial === "" ? 0 : 1) };
}
