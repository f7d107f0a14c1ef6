import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { ApiError, orNone } from "../../../api/client.ts";
import {
  type CutOff,
  fieldIssuesOf,
  type Versioned,
  type WriteCondition,
  withoutServiceFields,
} from "../../../api/contract.ts";
import type { ApiOptions, NodeAdminClient } from "../../api-client.ts";
import { CliError, printObject } from "../../output.ts";

/** The options every admin command takes. */
export interface Common extends ApiOptions {
  json?: boolean;
}

/** The options of a put: a file of fields, fields to drop, replace instead of merge, and the version. */
export interface PutOptions extends Common {
  file?: string;
  replace?: boolean;
  ifMatch?: string;
  unset?: string[];
}

/** Adds the options every admin command shares. */
export function withApi(command: Command): Command {
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

/** The admin API client the flags point at (its HTTP and signing code loaded only now, not at start). */
export async function connect(opts: Common): Promise<NodeAdminClient> {
  const { connectAdminApi } = await import("../../api-client.ts");
  return connectAdminApi({
    ...(opts.api !== undefined ? { api: opts.api } : {}),
    ...(opts.data !== undefined ? { data: opts.data } : {}),
    ...(opts.token !== undefined ? { token: opts.token } : {}),
  });
}

/** An API error as a CLI error: its message, then one line per field at fault (unless the message is that one line). */
export function explainError(error: ApiError): CliError {
  const details = fieldIssuesOf(error.details)
    .map((d) => `${d.path ? `${d.path}: ` : ""}${d.message}`)
    .filter((line) => line !== error.message)
    .map((line) => `\n  ${line}`)
    .join("");
  return new CliError(`${error.message}${details}`, 1, {
    code: error.code,
    ...(error.details !== undefined ? { details: error.details } : {}),
  });
}

/** A command action whose API errors end the command as CLI errors (exit status 1). */
export function handled<A extends unknown[]>(action: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await action(...args);
    } catch (error) {
      throw error instanceof ApiError ? explainError(error) : error;
    }
  };
}

/** Collects a repeatable option's values. */
export const collectList = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `--attribute name=value` pairs as attributes (undefined when none were given). */
export function parseAttributes(pairs: string[] | undefined): Record<string, string> | undefined {
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
  return { ...parsed };
}

const defined = (value: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));

/** What a put sends: the merged body and its precondition. */
export interface Draft {
  body: Record<string, unknown>;
  condition: WriteCondition;
}

/**
 * The body of a put or a dry run: the current record's fields (unless --replace), then the file's, then
 * the flags'; --unset removes fields. A put writes with If-Match (--if-match, else the ETag just read), or
 * If-None-Match: * when there is no record; a dry run with --replace reads nothing.
 */
export async function draftOf(
  read: () => Promise<Versioned<object>>,
  fields: Record<string, unknown>,
  opts: PutOptions,
  purpose: "put" | "dry-run",
): Promise<Draft> {
  const fromFile = opts.file === undefined ? {} : await readJsonFile(opts.file);
  const current = purpose === "dry-run" && opts.replace ? undefined : await orNone(read());
  const base = current === undefined || opts.replace ? {} : withoutServiceFields(current.value);
  const body: Record<string, unknown> = { ...base, ...withoutServiceFields(fromFile), ...defined(fields) };
  for (const field of opts.unset ?? []) delete body[field];
  const condition: WriteCondition =
    current === undefined ? { ifNoneMatch: "*" } : { ifMatch: opts.ifMatch ?? current.etag };
  return { body, condition };
}

/** Reports a put on stderr (people only), then prints the record. */
export function printWritten(
  what: string,
  written: { value: { version?: number }; created: boolean },
  json: boolean,
): void {
  if (!json)
    process.stderr.write(
      `${written.created ? "created" : "updated"} ${what} (version ${String(written.value.version)})\n`,
    );
  printObject(written.value, json);
}

/** Prints a deletion: `deleted <name>`, or `{"deleted":"<name>"}` with --json. */
export function printDeleted(name: string, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ deleted: name })}\n`);
  else process.stdout.write(`deleted ${name}\n`);
}

/** Adds `get <name>` to a resource's commands: reads one record and prints it. */
export function addGetCommand(
  parent: Command,
  argument: string,
  description: string,
  read: (api: NodeAdminClient, name: string) => Promise<Versioned<object>>,
): void {
  withApi(parent.command(`get <${argument}>`).description(description)).action(
    handled(async (name: string, opts: Common) => {
      const { value } = await read(await connect(opts), name);
      printObject(value, opts.json === true);
    }),
  );
}

/** The paging options of a list command. */
export interface PageOptions {
  limit: string;
  cursor?: string;
}

/** Adds a list command's paging options: `--limit` (default 100) and `--cursor`. */
export function withPaging(command: Command, items: string): Command {
  return command
    .option("--limit <n>", `${items} per page (1-1000)`, "100")
    .option("--cursor <cursor>", "the cursor printed with the previous page");
}

/**
 * Asks before a destructive change: passes with `--yes`; otherwise asks on the terminal (y/N) and throws
 * when the answer is not yes, and refuses outright when there is no terminal to ask on.
 */
export async function confirmed(question: string, opts: { yes?: boolean }): Promise<void> {
  if (opts.yes === true) return;
  if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
    throw new CliError(`${question}\nrefusing without a terminal to confirm: add --yes to go ahead`, 1);
  }
  const { createInterface } = await import("node:readline/promises");
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("cancelled: nothing changed", 1);
  } finally {
    prompt.close();
  }
}

/** Adds `--yes` to a destructive command. */
export function withYes(command: Command): Command {
  return command.option("--yes", "do not ask for confirmation (required without a terminal)");
}

/** What blocking did to a device's certificates, as a person reads it (on stderr). */
export function describeCutOff(cutOff: CutOff): string {
  const verb = cutOff.mode === "suspend" ? "suspended (INACTIVE)" : "revoked";
  const lines = [
    cutOff.changed.length > 0
      ? `${verb} ${cutOff.changed.length} certificate(s) of ${cutOff.deviceId}: ${cutOff.changed.join(", ")}; their connections are dropped`
      : `no live certificate of ${cutOff.deviceId} to take out of ACTIVE`,
  ];
  for (const certificate of cutOff.certificates) {
    if (certificate.error !== undefined)
      lines.push(
        `certificate ${certificate.certificateId} is still ${certificate.after}: ${certificate.error}`,
      );
  }
  lines.push(...cutOff.errors);
  if (!cutOff.complete) lines.push(`not every certificate was taken out: block ${cutOff.deviceId} again`);
  return `${lines.join("\n")}\n`;
}
