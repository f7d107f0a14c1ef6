import { createReadStream, createWriteStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { Transform } from "node:stream";
import { SingleBar } from "cli-progress";
import { type Command, Option } from "commander";
import type { ImportReport } from "../../domain/admin/index.ts";
import { AdminApiClient, type ApiError, type ApiOptions, apiError } from "../api-client.ts";
import { CliError, printObject, printRows } from "../output.ts";

interface Common extends ApiOptions {
  json?: boolean;
}

const SERVICE_FIELDS = [
  "version",
  "createdAt",
  "updatedAt",
  "updatedBy",
  "certificateId",
  "thingName",
  "policyName",
  "provisionedAt",
  "provisionedCount",
];

/** Adds the options every admin command shares. */
function withApi(command: Command): Command {
  return command
    .option("--api <url>", "admin API URL (default: adminApi in <data>/endpoints.json)")
    .option("--data <dir>", "local state directory holding endpoints.json", ".jitr")
    .addOption(
      new Option(
        "--token <token>",
        "bearer token (local mode); default: the token file of endpoints.json",
      ).env("JITR_ADMIN_TOKEN"),
    )
    .option("--json", "print JSON for scripts");
}

const client = (opts: Common) =>
  AdminApiClient.connect({
    ...(opts.api !== undefined ? { api: opts.api } : {}),
    ...(opts.data !== undefined ? { data: opts.data } : {}),
    ...(opts.token !== undefined ? { token: opts.token } : {}),
  });

/** An API error as a CLI error: its message, then one line per field at fault. */
function explainError(error: ApiError): CliError {
  const details = Array.isArray(error.details)
    ? (error.details as { path?: string; message?: string }[])
        .map((d) => `\n  ${d.path ? `${d.path}: ` : ""}${d.message ?? ""}`)
        .join("")
    : "";
  return new CliError(`${error.message}${details}`, 1);
}

async function call<T>(
  api: AdminApiClient,
  request: Parameters<AdminApiClient["call"]>[0],
): Promise<{ value: T; etag: string | undefined }> {
  const response = await api.send(request);
  if (response.status >= 400) throw explainError(apiError(response));
  const value = (response.text === "" ? undefined : JSON.parse(response.text)) as T;
  const etag = response.headers.etag;
  return { value, etag: typeof etag === "string" ? etag : undefined };
}

const enc = encodeURIComponent;

const collectList = (value: string, previous: string[] = []) => [...previous, value];

function parseAttributes(pairs: string[] | undefined): Record<string, string> | undefined {
  if (pairs === undefined) return undefined;
  const attributes: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--attribute takes name=value; got "${pair}"`);
    attributes[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return attributes;
}

async function readJsonFile(path: string): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new CliError(`cannot read JSON from ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CliError(`${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

const withoutServiceFields = (value: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(value).filter(([key]) => !SERVICE_FIELDS.includes(key)));

const defined = (value: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));

interface PutOptions extends Common {
  file?: string;
  replace?: boolean;
  ifMatch?: string;
  unset?: string[];
}

/**
 * PUT with optimistic concurrency: reads the current record (for its version, and to merge the given
 * fields into it unless --replace), then writes with If-Match, or If-None-Match: * when there is none.
 */
async function putResource(
  api: AdminApiClient,
  path: string,
  fields: Record<string, unknown>,
  opts: PutOptions,
  query: Record<string, string> = {},
): Promise<{ value: Record<string, unknown>; created: boolean }> {
  const fromFile = opts.file === undefined ? {} : await readJsonFile(opts.file);
  const current = await api.send({ method: "GET", path });
  let base: Record<string, unknown> = {};
  let headers: Record<string, string>;
  if (current.status === 404) headers = { "if-none-match": "*" };
  else if (current.status >= 400) throw explainError(apiError(current));
  else {
    const stored = JSON.parse(current.text) as Record<string, unknown>;
    if (!opts.replace) base = withoutServiceFields(stored);
    headers = { "if-match": opts.ifMatch ?? `"${String(stored.version ?? 0)}"` };
  }
  const body: Record<string, unknown> = { ...base, ...withoutServiceFields(fromFile), ...defined(fields) };
  for (const field of opts.unset ?? []) delete body[field];
  const response = await api.send({ method: "PUT", path, body, headers, query });
  if (response.status >= 400) throw explainError(apiError(response));
  return { value: JSON.parse(response.text) as Record<string, unknown>, created: response.status === 201 };
}

function printPage(
  page: { items: Record<string, unknown>[]; cursor?: string },
  columns: string[],
  json: boolean,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return;
  }
  printRows(page.items, columns, false);
  if (page.cursor !== undefined) process.stderr.write(`more: --cursor ${page.cursor}\n`);
}

/** Registers `jitr allowlist|mappings|lots|explain|approve|deprovision|history`. */
export function registerAdminCommands(program: Command): void {
  registerAllowlist(program);
  registerMappings(program);
  registerLots(program);
  registerDevices(program);
}

function registerAllowlist(program: Command): void {
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
      .option("--thing-group <group>", "thing group to add the thing to (repeatable)", collectList)
      .option("--attribute <name=value>", "thing attribute (repeatable)", collectList)
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
      .option("--if-match <version>", "expected version (default: the version just read)"),
  ).action(
    async (
      deviceId: string,
      opts: PutOptions & {
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
      },
    ) => {
      const api = await client(opts);
      const { value, created } = await putResource(
        api,
        `allowlist/${enc(deviceId)}`,
        {
          status: opts.status,
          profile: opts.profile,
          thingType: opts.thingType,
          thingGroups: opts.thingGroup,
          attributes: parseAttributes(opts.attribute),
          caCertificateId: opts.caCertificateId,
          certificateFingerprint: opts.fingerprint,
          notBefore: opts.notBefore,
          notAfter: opts.notAfter,
          lot: opts.lot,
          rotation: opts.rotation,
          note: opts.note,
        },
        opts,
      );
      if (!opts.json)
        process.stderr.write(
          `${created ? "created" : "updated"} ${deviceId} (version ${String(value.version)})\n`,
        );
      printObject(value, opts.json === true);
    },
  );

  withApi(allowlist.command("get <deviceId>").description("show a record")).action(
    async (deviceId: string, opts: Common) => {
      const { value } = await call<Record<string, unknown>>(await client(opts), {
        method: "GET",
        path: `allowlist/${enc(deviceId)}`,
      });
      printObject(value, opts.json === true);
    },
  );

  withApi(
    allowlist
      .command("list")
      .description("list records, optionally by status or lot (one page; --cursor for the next)")
      .addOption(new Option("--status <status>", "only this status").choices(["allowed", "blocked"]))
      .option("--lot <lot>", "only this lot")
      .option("--limit <n>", "records per page (1-1000)", "100")
      .option("--cursor <cursor>", "the cursor printed with the previous page"),
  ).action(async (opts: Common & { status?: string; lot?: string; limit: string; cursor?: string }) => {
    const { value } = await call<{ items: Record<string, unknown>[]; cursor?: string }>(await client(opts), {
      method: "GET",
      path: "allowlist",
      query: { status: opts.status, lot: opts.lot, limit: opts.limit, cursor: opts.cursor },
    });
    printPage(
      value,
      ["deviceId", "status", "profile", "lot", "thingType", "certificateId", "version"],
      opts.json === true,
    );
  });

  withApi(
    allowlist
      .command("remove <deviceId>")
      .description("delete a record (refused while it is bound to an ACTIVE certificate: deprovision first)")
      .option("--if-match <version>", "only if the record is at this version"),
  ).action(async (deviceId: string, opts: Common & { ifMatch?: string }) => {
    await call(await client(opts), {
      method: "DELETE",
      path: `allowlist/${enc(deviceId)}`,
      ...(opts.ifMatch ? { headers: { "if-match": opts.ifMatch } } : {}),
    });
    if (opts.json) process.stdout.write(`${JSON.stringify({ deleted: deviceId })}\n`);
    else process.stdout.write(`deleted ${deviceId}\n`);
  });

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
      ),
  ).action(async (file: string, opts: Common & { mode: string; format?: string }) => {
    const api = await client(opts);
    const size = await stat(file).then(
      (s) => s.size,
      () => {
        throw new CliError(`cannot read ${file}`);
      },
    );
    const format =
      opts.format ?? (/\.csv$/i.test(file) ? "csv" : /\.(jsonl|ndjson)$/i.test(file) ? "jsonl" : undefined);
    const bar = process.stderr.isTTY
      ? new SingleBar({
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
    let response: Awaited<ReturnType<AdminApiClient["send"]>>;
    try {
      response = await api.send({
        method: "POST",
        path: "allowlist/import",
        query: { mode: opts.mode, ...(format ? { format } : {}) },
        headers: { "content-type": format === "csv" ? "text/csv" : "application/x-ndjson" },
        stream: createReadStream(file).pipe(progress),
      });
    } finally {
      bar?.stop();
    }
    let report: ImportReport;
    if (response.status === 400) {
      const error = apiError(response);
      if (error.code !== "ImportRejected") throw explainError(error);
      report = error.details as ImportReport;
      process.stderr.write(`${error.message}\n`);
    } else if (response.status >= 400) throw explainError(apiError(response));
    else report = JSON.parse(response.text) as ImportReport;
    printReport(report, opts.json === true);
    if (report.rejectedCount > 0) throw new CliError(`${report.rejectedCount} line(s) rejected`, 1);
  });

  withApi(
    allowlist
      .command("export")
      .description("print every record as JSON lines (the form import reads back)")
      .option("--out <file>", "write to a file instead of stdout"),
  ).action(async (opts: Common & { out?: string }) => {
    const response = await (await client(opts)).send({ method: "GET", path: "allowlist/export" });
    if (response.status >= 400) throw explainError(apiError(response));
    if (opts.out !== undefined) {
      const out = createWriteStream(opts.out);
      await new Promise<void>((resolve, reject) => {
        out.on("error", reject);
        out.end(response.text, () => resolve());
      });
      process.stderr.write(
        `wrote ${response.text.split("\n").filter(Boolean).length} records to ${opts.out}\n`,
      );
    } else process.stdout.write(response.text);
  });
}

function printReport(report: ImportReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  printObject(
    {
      mode: report.mode,
      format: report.format,
      accepted: report.accepted,
      created: report.created,
      updated: report.updated,
      unchanged: report.unchanged,
      rejected: report.rejectedCount,
      warnings: report.warnings.length,
    },
    false,
  );
  if (report.rejected.length > 0) printRows(report.rejected, ["line", "reason"], false);
  if (report.warnings.length > 0) printRows(report.warnings, ["line", "message"], false);
}

function registerMappings(program: Command): void {
  const mappings = program
    .command("mappings")
    .description(
      "policy mappings: selector device:<id> > profile:<p> > thingType:<t> > ca:<64 hex> > default, each naming a policy",
    );

  withApi(
    mappings
      .command("put <selector>")
      .description(
        "create or update a mapping (merged into the current one unless --replace); --dry-run lists the devices whose policy would change",
      )
      .option("--template <name>", "a policy template from policies/")
      .option("--document <json-or-file>", "an inline policy document (JSON, or a file holding it)")
      .option("--policy-name <name>", "an existing IoT policy")
      .option("--thing-type <type>", "thing type for devices it maps")
      .option("--thing-group <group>", "thing group (repeatable)", collectList)
      .option("--attribute <name=value>", "thing attribute (repeatable)", collectList)
      .option("--file <mapping.json>", "fields from a JSON file (flags win)")
      .option("--unset <field>", "remove a field (repeatable)", collectList)
      .option("--replace", "replace the mapping instead of merging into it")
      .option("--if-match <version>", "expected version (default: the version just read)")
      .option("--dry-run", "save nothing: show which provisioned devices would get another policy"),
  ).action(
    async (
      selector: string,
      opts: PutOptions & {
        template?: string;
        document?: string;
        policyName?: string;
        thingType?: string;
        thingGroup?: string[];
        attribute?: string[];
        dryRun?: boolean;
      },
    ) => {
      const chosen = [opts.template, opts.document, opts.policyName].filter((v) => v !== undefined);
      if (chosen.length > 1) throw new CliError("give at most one of --template, --document, --policy-name");
      let policy: Record<string, unknown> | undefined;
      if (opts.template !== undefined) policy = { template: opts.template };
      if (opts.policyName !== undefined) policy = { policyName: opts.policyName };
      if (opts.document !== undefined) policy = { document: await documentFrom(opts.document) };
      const api = await client(opts);
      const fields = {
        policy,
        thingType: opts.thingType,
        thingGroups: opts.thingGroup,
        attributes: parseAttributes(opts.attribute),
      };
      const path = `mappings/${enc(selector)}`;
      if (opts.dryRun) {
        const { value } = await putDryRun(api, path, fields, opts);
        if (opts.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
        else {
          process.stdout.write(
            `dry run: ${value.affectedCount} of ${value.devicesExamined} provisioned device(s) would change policy; nothing saved\n`,
          );
          printRows(
            value.affected.map((a) => ({
              deviceId: a.deviceId,
              from: a.from.policyName ?? "(none)",
              to: a.to.policyName ?? "(none)",
              selector: a.to.selector ?? "(none)",
              documentChanged: a.documentChanged,
            })),
            ["deviceId", "from", "to", "selector", "documentChanged"],
            false,
          );
        }
        return;
      }
      const { value, created } = await putResource(api, path, fields, opts);
      if (!opts.json)
        process.stderr.write(
          `${created ? "created" : "updated"} ${selector} (version ${String(value.version)})\n`,
        );
      printObject(value, opts.json === true);
    },
  );

  withApi(mappings.command("get <selector>").description("show a mapping")).action(
    async (selector: string, opts: Common) => {
      const { value } = await call<Record<string, unknown>>(await client(opts), {
        method: "GET",
        path: `mappings/${enc(selector)}`,
      });
      printObject(value, opts.json === true);
    },
  );

  withApi(
    mappings
      .command("list")
      .description("list mappings (one page; --cursor for the next)")
      .option("--limit <n>", "mappings per page (1-1000)", "100")
      .option("--cursor <cursor>", "the cursor printed with the previous page"),
  ).action(async (opts: Common & { limit: string; cursor?: string }) => {
    const { value } = await call<{ items: Record<string, unknown>[]; cursor?: string }>(await client(opts), {
      method: "GET",
      path: "mappings",
      query: { limit: opts.limit, cursor: opts.cursor },
    });
    printPage(value, ["selector", "policy", "thingType", "thingGroups", "version"], opts.json === true);
  });

  withApi(
    mappings
      .command("remove <selector>")
      .description("delete a mapping (devices already provisioned keep their policy)")
      .option("--if-match <version>", "only if the mapping is at this version"),
  ).action(async (selector: string, opts: Common & { ifMatch?: string }) => {
    await call(await client(opts), {
      method: "DELETE",
      path: `mappings/${enc(selector)}`,
      ...(opts.ifMatch ? { headers: { "if-match": opts.ifMatch } } : {}),
    });
    if (opts.json) process.stdout.write(`${JSON.stringify({ deleted: selector })}\n`);
    else process.stdout.write(`deleted ${selector}\n`);
  });
}

interface WhatIf {
  devicesExamined: number;
  affectedCount: number;
  affected: {
    deviceId: string;
    from: { policyName?: string; selector?: string };
    to: { policyName?: string; selector?: string };
    documentChanged: boolean;
  }[];
}

async function putDryRun(
  api: AdminApiClient,
  path: string,
  fields: Record<string, unknown>,
  opts: PutOptions,
): Promise<{ value: WhatIf }> {
  const fromFile = opts.file === undefined ? {} : await readJsonFile(opts.file);
  let base: Record<string, unknown> = {};
  if (!opts.replace) {
    const current = await api.send({ method: "GET", path });
    if (current.status < 300)
      base = withoutServiceFields(JSON.parse(current.text) as Record<string, unknown>);
    else if (current.status !== 404) throw explainError(apiError(current));
  }
  const body: Record<string, unknown> = { ...base, ...withoutServiceFields(fromFile), ...defined(fields) };
  for (const field of opts.unset ?? []) delete body[field];
  const { value } = await call<WhatIf>(api, { method: "PUT", path, body, query: { dryRun: "true" } });
  return { value };
}

async function documentFrom(value: string): Promise<unknown> {
  const text = value.trimStart().startsWith("{")
    ? value
    : await readFile(value, "utf8").catch(() => {
        throw new CliError(`--document is neither JSON nor a readable file: ${value}`);
      });
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError("--document is not valid JSON");
  }
}

function registerLots(program: Command): void {
  const lots = program.command("lots").description("manufacturing lots and their device quotas");

  withApi(
    lots
      .command("put <lot>")
      .description("create or update a lot (merged into the current one unless --replace)")
      .option("--max-devices <n>", "how many devices of the lot may be provisioned")
      .option("--not-before <date>", "valid from (ISO 8601)")
      .option("--not-after <date>", "valid until (ISO 8601)")
      .option("--file <lot.json>", "fields from a JSON file (flags win)")
      .option("--unset <field>", "remove a field (repeatable)", collectList)
      .option("--replace", "replace the lot instead of merging into it")
      .option("--if-match <version>", "expected version (default: the version just read)"),
  ).action(
    async (
      lot: string,
      opts: PutOptions & { maxDevices?: string; notBefore?: string; notAfter?: string },
    ) => {
      let maxDevices: number | undefined;
      if (opts.maxDevices !== undefined) {
        maxDevices = Number(opts.maxDevices);
        if (!Number.isInteger(maxDevices) || maxDevices < 0)
          throw new CliError("--max-devices must be a non-negative whole number");
      }
      const { value, created } = await putResource(
        await client(opts),
        `lots/${enc(lot)}`,
        { maxDevices, notBefore: opts.notBefore, notAfter: opts.notAfter },
        opts,
      );
      if (!opts.json)
        process.stderr.write(
          `${created ? "created" : "updated"} lot ${lot} (version ${String(value.version)})\n`,
        );
      printObject(value, opts.json === true);
    },
  );

  withApi(lots.command("get <lot>").description("show a lot")).action(async (lot: string, opts: Common) => {
    const { value } = await call<Record<string, unknown>>(await client(opts), {
      method: "GET",
      path: `lots/${enc(lot)}`,
    });
    printObject(value, opts.json === true);
  });

  withApi(
    lots
      .command("list")
      .description("list lots (one page; --cursor for the next)")
      .option("--limit <n>", "lots per page (1-1000)", "100")
      .option("--cursor <cursor>", "the cursor printed with the previous page"),
  ).action(async (opts: Common & { limit: string; cursor?: string }) => {
    const { value } = await call<{ items: Record<string, unknown>[]; cursor?: string }>(await client(opts), {
      method: "GET",
      path: "lots",
      query: { limit: opts.limit, cursor: opts.cursor },
    });
    printPage(
      value,
      ["lot", "maxDevices", "provisionedCount", "notBefore", "notAfter", "version"],
      opts.json === true,
    );
  });
}

function registerDevices(program: Command): void {
  withApi(
    program
      .command("explain [deviceId]")
      .description(
        "dry run of the decision for a device (its bound certificate, else a new one) or a certificate: " +
          "decision, reason, record, mapping, policy document, thing; changes nothing",
      )
      .option("--cert <file>", "explain for this certificate (PEM) instead of a device id")
      .option(
        "--ca <caCertificateId>",
        "the CA that issued it, when the registry does not know the certificate",
      ),
  ).action(async (deviceId: string | undefined, opts: Common & { cert?: string; ca?: string }) => {
    if ((deviceId === undefined) === (opts.cert === undefined))
      throw new CliError("give a device id or --cert <file>, not both");
    const body: Record<string, unknown> = {};
    if (deviceId !== undefined) body.deviceId = deviceId;
    if (opts.cert !== undefined) {
      body.certificatePem = await readFile(opts.cert, "utf8").catch(() => {
        throw new CliError(`cannot read ${opts.cert}`);
      });
    }
    if (opts.ca !== undefined) body.caCertificateId = opts.ca;
    const { value } = await call<Record<string, unknown>>(await client(opts), {
      method: "POST",
      path: "explain",
      body,
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const policy = value.policy as { policyName?: string; document?: string } | undefined;
    const thing = value.thing as Record<string, unknown> | undefined;
    const mapping = value.mapping as { selector?: string; version?: number } | undefined;
    printObject(
      {
        deviceId: value.deviceId,
        decision: value.decision,
        reason: value.reason,
        detail: value.detail,
        certificateStatus: value.certificateStatus,
        mapping: mapping ? `${mapping.selector} (version ${mapping.version})` : undefined,
        policyName: policy?.policyName,
        thingName: thing?.thingName,
        thingType: thing?.thingTypeName,
        thingGroups: thing?.thingGroups,
        attributes: thing?.attributes,
        assumptions: value.assumptions,
      },
      false,
    );
    if (policy?.document)
      process.stdout.write(`policy document:\n${JSON.stringify(JSON.parse(policy.document), null, 2)}\n`);
  });

  withApi(
    program
      .command("approve <deviceId>")
      .description(
        "re-run the decision for the device's latest quarantined (INACTIVE) certificate; provision it if now allowed",
      ),
  ).action(async (deviceId: string, opts: Common) => {
    const { value } = await call<Record<string, unknown>>(await client(opts), {
      method: "POST",
      path: `devices/${enc(deviceId)}/approve`,
    });
    printObject(value, opts.json === true);
    if (value.outcome !== "provisioned") {
      throw new CliError(`not provisioned: ${String(value.reason ?? value.detail ?? value.outcome)}`, 1);
    }
  });

  withApi(
    program
      .command("deprovision <deviceId>")
      .description(
        "revoke the device's certificate, detach its policies and thing, delete the thing, unbind the record",
      ),
  ).action(async (deviceId: string, opts: Common) => {
    const { value } = await call<Record<string, unknown>>(await client(opts), {
      method: "POST",
      path: `devices/${enc(deviceId)}/deprovision`,
    });
    printObject(value, opts.json === true);
  });

  withApi(
    program
      .command("history <deviceId>")
      .description("the device's ledger entries, newest first (one page; --cursor for the next)")
      .option("--limit <n>", "entries per page (1-1000)", "100")
      .option("--cursor <cursor>", "the cursor printed with the previous page"),
  ).action(async (deviceId: string, opts: Common & { limit: string; cursor?: string }) => {
    const { value } = await call<{ items: Record<string, unknown>[]; cursor?: string }>(await client(opts), {
      method: "GET",
      path: `devices/${enc(deviceId)}/history`,
      query: { limit: opts.limit, cursor: opts.cursor },
    });
    printPage(value, ["at", "kind", "reason", "certificateId", "policyName", "actor"], opts.json === true);
  });
}
