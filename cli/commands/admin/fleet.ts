import type { Command } from "commander";
import { pages } from "../../../api/client.ts";
import type { Approval, HistoryPage, LedgerEntry, LedgerQuery } from "../../../api/contract.ts";
import type { NodeAdminClient } from "../../api-client.ts";
import { CliError, printPage, printRows } from "../../output.ts";
import { type Common, confirmed, connect, handled, type PageOptions, withApi, withPaging } from "./shared.ts";

interface LedgerOptions extends Common, PageOptions {
  kind?: string;
  reason?: string;
  lot?: string;
  since?: string;
}

/** Registers `jitr ledger` and `jitr approvals`: the fleet seen across devices. */
export function registerFleet(program: Command): void {
  withApi(
    withPaging(
      program
        .command("ledger")
        .description(
          "every device's outcomes and admin changes, newest first (one page; --cursor for the next)",
        )
        .option("--kind <kind>", "provisioned, denied, failed or admin")
        .option("--reason <reason>", "a denial reason (not-allowlisted, blocked, no-policy, ...)")
        .option("--lot <lot>", "outcomes of devices whose record named this lot")
        .option("--since <when>", "an ISO 8601 time, or a duration back from now (30m, 12h, 7d)"),
      "entries",
    ),
  ).action(
    handled(async (opts: LedgerOptions) => {
      const query: LedgerQuery = { limit: opts.limit };
      if (opts.kind !== undefined) query.kind = opts.kind as LedgerQuery["kind"];
      if (opts.reason !== undefined) query.reason = opts.reason;
      if (opts.lot !== undefined) query.lot = opts.lot;
      if (opts.since !== undefined) query.since = opts.since;
      if (opts.cursor !== undefined) query.cursor = opts.cursor;
      const page = await (await connect(opts)).ledger.list(query);
      printPage(
        page,
        ["at", "deviceId", "kind", "reason", "lot", "certificateId", "actor"],
        opts.json === true,
      );
    }),
  );

  withApi(
    withPaging(
      program
        .command("approvals")
        .description(
          "the approve queue: quarantined devices, why, and whether their records now allow them (ready)",
        ),
      "devices",
    ),
  ).action(
    handled(async (opts: Common & PageOptions) => {
      const page = await (await connect(opts)).ledger.approvals({ limit: opts.limit, cursor: opts.cursor });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        return;
      }
      printPage({ ...page, items: page.items.map(approvalRow) }, APPROVAL_COLUMNS, false);
    }),
  );
}

const APPROVAL_COLUMNS = ["deviceId", "reason", "deniedAt", "lot", "ready", "now"] as const;

/** An approval as a table row: `now` is the decision today and its reason. */
function approvalRow(approval: Approval) {
  const { now } = approval;
  return {
    deviceId: approval.deviceId,
    reason: approval.reason,
    deniedAt: approval.deniedAt,
    lot: approval.lot,
    ready: approval.ready ? "yes" : "no",
    now: now.decision === "allow" ? "allow" : `deny: ${now.reason ?? now.detail ?? ""}`,
  };
}

/**
 * Approves every device of the approve queue whose records now allow it, after asking (unless `yes`;
 * without a terminal to ask on it refuses); prints each device's outcome. Fails when one is not provisioned.
 */
export async function approveAllReady(api: NodeAdminClient, yes: boolean, json: boolean): Promise<void> {
  const ready: Approval[] = [];
  for await (const page of pages((cursor) => api.ledger.approvals(cursor ? { cursor } : {}))) {
    ready.push(...page.items.filter((a) => a.ready));
  }
  if (ready.length === 0) {
    if (json) process.stdout.write("[]\n");
    else process.stderr.write("no quarantined device is ready to approve\n");
    return;
  }
  const names = ready.map((a) => a.deviceId);
  await confirmed(`approve ${ready.length} device(s): ${names.join(", ")}?`, { yes });
  const results: { deviceId: string; outcome: string; reason?: string }[] = [];
  for (const approval of ready) {
    const result = await api.devices.approve(approval.deviceId);
    const why = result.outcome === "denied" ? result.reason : "detail" in result ? result.detail : undefined;
    results.push({ deviceId: approval.deviceId, outcome: result.outcome, ...(why ? { reason: why } : {}) });
  }
  printRows(results, ["deviceId", "outcome", "reason"], json);
  const failed = results.filter((r) => r.outcome !== "provisioned");
  if (failed.length > 0) throw new CliError(`${failed.length} device(s) not provisioned`, 1);
}

/** Adds `history <name>` to `mappings` or `lots`: the changes to one record, newest first. */
export function addChangeHistoryCommand(
  parent: Command,
  argument: string,
  read: (
    api: NodeAdminClient,
    name: string,
    page: { limit: string; cursor?: string },
  ) => Promise<HistoryPage>,
): void {
  withApi(
    withPaging(
      parent
        .command(`history <${argument}>`)
        .description(
          "who changed it, when, from which version to which, and the fields that changed (newest first)",
        ),
      "changes",
    ),
  ).action(
    handled(async (name: string, opts: Common & PageOptions) => {
      const page = await read(await connect(opts), name, {
        limit: opts.limit,
        ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        return;
      }
      printPage({ ...page, items: page.items.map(changeRow) }, CHANGE_COLUMNS, false);
    }),
  );
}

const CHANGE_COLUMNS = ["at", "actor", "action", "version", "fields"] as const;

/** A change as a table row: the versions it went between and the fields it changed. */
function changeRow(entry: LedgerEntry) {
  const change = entry.change ?? {};
  const before = objectOf(change.before);
  const after = objectOf(change.after);
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
    (key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
  );
  const from = typeof change.previousVersion === "number" ? `${change.previousVersion} -> ` : "";
  const to = typeof change.version === "number" ? String(change.version) : "";
  return {
    at: entry.at,
    actor: entry.actor,
    action: typeof change.action === "string" ? change.action : "",
    version: change.action === "delete" ? `${change.previousVersion ?? "?"} -> (deleted)` : `${from}${to}`,
    fields: fields.join(", "),
  };
}

const objectOf = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? { ...value } : {};
