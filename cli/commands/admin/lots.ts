import type { Command } from "commander";
import { CliError, printPage } from "../../output.ts";
import { addChangeHistoryCommand } from "./fleet.ts";
import {
  addGetCommand,
  type Common,
  collectList,
  confirmed,
  connect,
  draftOf,
  handled,
  type PageOptions,
  type PutOptions,
  printDeleted,
  printWritten,
  withApi,
  withPaging,
  withYes,
} from "./shared.ts";

/** Registers `jitr lots put|get|list|history|remove`. */
export function registerLots(program: Command): void {
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
    handled(
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
        const api = await connect(opts);
        const fields = { maxDevices, notBefore: opts.notBefore, notAfter: opts.notAfter };
        const { body, condition } = await draftOf(() => api.lots.get(lot), fields, opts, "put");
        printWritten(`lot ${lot}`, await api.lots.put(lot, body, condition), opts.json === true);
      },
    ),
  );

  addGetCommand(lots, "lot", "show a lot", (api, name) => api.lots.get(name));
  addChangeHistoryCommand(lots, "lot", (api, name, page) => api.lots.history(name, page));

  withApi(
    withPaging(lots.command("list").description("list lots (one page; --cursor for the next)"), "lots"),
  ).action(
    handled(async (opts: Common & PageOptions) => {
      const page = await (await connect(opts)).lots.list({ limit: opts.limit, cursor: opts.cursor });
      printPage(
        page,
        ["lot", "maxDevices", "provisionedCount", "notBefore", "notAfter", "version"],
        opts.json === true,
      );
    }),
  );

  withApi(
    withYes(
      lots
        .command("remove <lot>")
        .description(
          "delete a lot (refused while it counts provisioned devices or a record names it); asks first unless --yes",
        )
        .option("--if-match <version>", "only if the lot is at this version"),
    ),
  ).action(
    handled(async (lot: string, opts: Common & { ifMatch?: string; yes?: boolean }) => {
      await confirmed(`remove lot ${lot}?`, opts);
      await (await connect(opts)).lots.remove(lot, opts.ifMatch ? { ifMatch: opts.ifMatch } : undefined);
      printDeleted(lot, opts.json === true);
    }),
  );
}
