import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { MappingWarning, MappingWhatIf } from "../../../api/contract.ts";
import { CliError, printPage, printRows } from "../../output.ts";
import { addChangeHistoryCommand } from "./fleet.ts";
import {
  addGetCommand,
  type Common,
  collectList,
  connect,
  draftOf,
  handled,
  type PageOptions,
  type PutOptions,
  parseAttributes,
  printDeleted,
  printWritten,
  withApi,
  withPaging,
} from "./shared.ts";

interface MappingPutOptions extends PutOptions {
  template?: string;
  document?: string;
  policyName?: string;
  thingType?: string;
  thingGroup?: string[];
  groupPolicy?: string[];
  attribute?: string[];
  dryRun?: boolean;
  force?: boolean;
  allowBroadPolicy?: boolean;
}

/** Registers `jitr mappings put|get|list|remove`. */
export function registerMappings(program: Command): void {
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
      .option(
        "--group-policy <group[=template|=policy:name]>",
        "rights through a thing group (repeatable; replaces the list): group=sensor keeps that template's policy on the group, group=policy:Name attaches an existing policy, a bare group uses the group's own policies; documents go in --file",
        collectList,
      )
      .option("--attribute <name=value>", "thing attribute (repeatable)", collectList)
      .option("--file <mapping.json>", "fields from a JSON file (flags win)")
      .option("--unset <field>", "remove a field (repeatable)", collectList)
      .option("--replace", "replace the mapping instead of merging into it")
      .option("--if-match <version>", "expected version (default: the version just read)")
      .option("--dry-run", "save nothing: show which provisioned devices would get another policy")
      .option("--force", "save although a thing type, thing group or policy it names does not exist (warned)")
      .option(
        "--allow-broad-policy",
        "save an inline policy that grants more than a device's own resources (any client id, every topic, *)",
      ),
  ).action(
    handled(async (selector: string, opts: MappingPutOptions) => {
      const policy = await policyOf(opts);
      const api = await connect(opts);
      const fields = {
        policy,
        thingType: opts.thingType,
        thingGroups: opts.thingGroup,
        groupPolicies: groupPoliciesOf(opts.groupPolicy),
        attributes: parseAttributes(opts.attribute),
      };
      const read = () => api.mappings.get(selector);
      if (opts.dryRun) {
        const { body } = await draftOf(read, fields, opts, "dry-run");
        printWhatIf(await api.mappings.whatIf(selector, body), opts.json === true);
        return;
      }
      const { body, condition } = await draftOf(read, fields, opts, "put");
      const written = await api.mappings.put(selector, body, condition, {
        ...(opts.force ? { force: true } : {}),
        ...(opts.allowBroadPolicy ? { allowBroadPolicy: true } : {}),
      });
      const { warnings = [], ...mapping } = written.value;
      printWarnings(warnings);
      printWritten(selector, opts.json ? written : { ...written, value: mapping }, opts.json === true);
    }),
  );

  addGetCommand(mappings, "selector", "show a mapping", (api, name) => api.mappings.get(name));
  addChangeHistoryCommand(mappings, "selector", (api, name, page) => api.mappings.history(name, page));

  withApi(
    withPaging(
      mappings.command("list").description("list mappings (one page; --cursor for the next)"),
      "mappings",
    ),
  ).action(
    handled(async (opts: Common & PageOptions) => {
      const page = await (await connect(opts)).mappings.list({ limit: opts.limit, cursor: opts.cursor });
      printPage(page, ["selector", "policy", "thingType", "thingGroups", "version"], opts.json === true);
    }),
  );

  withApi(
    mappings
      .command("remove <selector>")
      .description("delete a mapping (devices already provisioned keep their policy)")
      .option("--if-match <version>", "only if the mapping is at this version"),
  ).action(
    handled(async (selector: string, opts: Common & { ifMatch?: string }) => {
      await (await connect(opts)).mappings.remove(
        selector,
        opts.ifMatch ? { ifMatch: opts.ifMatch } : undefined,
      );
      printDeleted(selector, opts.json === true);
    }),
  );
}

/** The policy the flags name: at most one of --template, --document, --policy-name. */
async function policyOf(opts: MappingPutOptions): Promise<Record<string, unknown> | undefined> {
  const chosen = [opts.template, opts.document, opts.policyName].filter((v) => v !== undefined);
  if (chosen.length > 1) throw new CliError("give at most one of --template, --document, --policy-name");
  if (opts.template !== undefined) return { template: opts.template };
  if (opts.policyName !== undefined) return { policyName: opts.policyName };
  if (opts.document !== undefined) return { document: await documentFrom(opts.document) };
  return undefined;
}

/** The `--group-policy` values as `groupPolicies` entries: `group`, `group=<template>` or `group=policy:<name>`. */
function groupPoliciesOf(values: string[] | undefined): Record<string, unknown>[] | undefined {
  return values?.map((value) => {
    const at = value.indexOf("=");
    if (at < 0) return { group: value };
    const group = value.slice(0, at);
    const source = value.slice(at + 1);
    if (group === "" || source === "" || source === "policy:")
      throw new CliError(`--group-policy ${value}: give group, group=<template> or group=policy:<name>`);
    return {
      group,
      policy: source.startsWith("policy:")
        ? { policyName: source.slice("policy:".length) }
        : { template: source },
    };
  });
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

/** Prints each warning about a mapping (saved, or as it would be) on stderr: `warning: <path>: <message>`. */
function printWarnings(warnings: MappingWarning[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
}

/** Prints what a mapping change would do: its warnings, a summary line and the devices whose policy would change. */
function printWhatIf(whatIf: MappingWhatIf, json: boolean): void {
  printWarnings(whatIf.warnings);
  if (json) {
    process.stdout.write(`${JSON.stringify(whatIf, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `dry run: ${whatIf.affectedCount} of ${whatIf.devicesExamined} provisioned device(s) would change policy; nothing saved\n`,
  );
  printRows(
    whatIf.affected.map((a) => ({
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
