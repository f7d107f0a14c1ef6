import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { ExplainRequest, Explanation } from "../../../api/contract.ts";
import { CliError, printObject, printPage, printRows } from "../../output.ts";
import { approveAllReady } from "./fleet.ts";
import {
  type Common,
  confirmed,
  connect,
  handled,
  type PageOptions,
  withApi,
  withPaging,
  withYes,
} from "./shared.ts";

/** Registers `jitr explain|approve|deprovision|history`: the commands about one device. */
export function registerDevices(program: Command): void {
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
  ).action(
    handled(async (deviceId: string | undefined, opts: Common & { cert?: string; ca?: string }) => {
      if ((deviceId === undefined) === (opts.cert === undefined))
        throw new CliError("give a device id or --cert <file>, not both");
      const request: ExplainRequest = {};
      if (deviceId !== undefined) request.deviceId = deviceId;
      if (opts.cert !== undefined) {
        request.certificatePem = await readFile(opts.cert, "utf8").catch(() => {
          throw new CliError(`cannot read ${opts.cert}`);
        });
      }
      if (opts.ca !== undefined) request.caCertificateId = opts.ca;
      printExplanation(await (await connect(opts)).devices.explain(request), opts.json === true);
    }),
  );

  withApi(
    program
      .command("approve [deviceId]")
      .description(
        "re-run the decision for the device's latest quarantined (INACTIVE) certificate; provision it if now allowed",
      )
      .option("--all-ready", "approve every device of the approve queue (jitr approvals) that is ready")
      .option("--yes", "do not ask for confirmation (--all-ready)"),
  ).action(
    handled(async (deviceId: string | undefined, opts: Common & { allReady?: boolean; yes?: boolean }) => {
      if ((deviceId === undefined) === (opts.allReady !== true))
        throw new CliError("give a device id or --all-ready, not both");
      if (deviceId === undefined) {
        await approveAllReady(await connect(opts), opts.yes === true, opts.json === true);
        return;
      }
      const result = await (await connect(opts)).devices.approve(deviceId);
      printObject(result, opts.json === true);
      if (result.outcome !== "provisioned") {
        const why = result.outcome === "denied" ? result.reason : result.detail;
        throw new CliError(`not provisioned: ${String(why ?? result.outcome)}`, 1);
      }
    }),
  );

  withApi(
    withYes(
      program
        .command("deprovision <deviceId>")
        .description(
          "revoke every certificate of the device, detach its policies and thing, delete the thing, unbind the record. " +
            "The record stays allowed, so the device may come back at once with a new certificate; " +
            "--block retires it (the record is set blocked first). Asks first unless --yes",
        )
        .option(
          "--block",
          "retire the device: set its record blocked, so no certificate of it gets in again",
        ),
    ),
  ).action(
    handled(async (deviceId: string, opts: Common & { block?: boolean; yes?: boolean }) => {
      const after =
        opts.block === true
          ? "its record will be blocked"
          : "its record stays allowed: a new certificate of it is provisioned at once";
      await confirmed(`deprovision ${deviceId}: every certificate of it will be revoked; ${after}.`, opts);
      const done = await (await connect(opts)).devices.deprovision(deviceId, { block: opts.block === true });
      if (opts.json !== true) {
        const revoked = done.certificates.filter((c) => c.revoked).map((c) => c.certificateId);
        process.stderr.write(
          `deprovisioned ${deviceId}: revoked ${revoked.length} certificate(s)${revoked.length > 0 ? ` (${revoked.join(", ")})` : ""}` +
            `${done.thingDeleted ? ", deleted its thing" : ""}; the record is ${done.recordStatus}` +
            `${done.recordStatus === "allowed" ? " (the device may come back with a new certificate)" : ""}\n`,
        );
      }
      printObject(done, opts.json === true);
    }),
  );

  withApi(
    withPaging(
      program
        .command("history <deviceId>")
        .description("the device's ledger entries, newest first (one page; --cursor for the next)"),
      "entries",
    ),
  ).action(
    handled(async (deviceId: string, opts: Common & PageOptions) => {
      const page = await (await connect(opts)).devices.history(deviceId, {
        limit: opts.limit,
        cursor: opts.cursor,
      });
      printPage(page, ["at", "kind", "reason", "certificateId", "policyName", "actor"], opts.json === true);
    }),
  );
}

/** Prints an explanation: the decision and its parts, then the policy document; or all of it as JSON. */
function printExplanation(explanation: Explanation, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(explanation, null, 2)}\n`);
    return;
  }
  const { policy, thing, mapping } = explanation;
  printObject(
    {
      deviceId: explanation.deviceId,
      decision: explanation.decision,
      reason: explanation.reason,
      detail: explanation.detail,
      certificateStatus: explanation.certificateStatus,
      mapping: mapping ? `${mapping.selector} (version ${mapping.version})` : undefined,
      policyName: policy?.policyName,
      thingName: thing?.thingName,
      thingType: thing?.thingTypeName,
      thingGroups: thing?.thingGroups,
      attributes: thing?.attributes,
      assumptions: explanation.assumptions,
    },
    false,
  );
  if (policy?.document)
    process.stdout.write(`policy document:\n${JSON.stringify(JSON.parse(policy.document), null, 2)}\n`);
  const effective = explanation.effectivePolicies ?? [];
  if (effective.length > 0) {
    process.stdout.write("effective policies:\n");
    printRows(
      effective.map((p) => ({
        policyName: p.policyName,
        source: p.source,
        group: p.group ?? "",
        attachedTo: p.attachedTo ?? "",
        kept: p.fromMapping ? "by the mapping" : "found",
      })),
      ["policyName", "source", "group", "attachedTo", "kept"],
      false,
    );
  }
}
