import cliProgress from "cli-progress";
import type { DeviceOutcome, FleetSummary } from "./fleet.ts";
import { printRows } from "./output.ts";

/** A progress bar on stderr (or silent when stderr is not a terminal or `--json` output is wanted). */
export function progressBar(total: number, label: string, enabled = process.stderr.isTTY === true) {
  if (!enabled || total === 0)
    return { update: (_n: number, _detail?: string) => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} {detail}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { detail: "" });
  return { update: (n: number, detail = "") => bar.update(n, { detail }), stop: () => bar.stop() };
}

/** Prints a fleet run: outcomes and reasons by kind, latency and throughput. */
export function printFleetSummary(summary: FleetSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const groups = new Map<string, DeviceOutcome[]>();
  for (const o of summary.outcomes) {
    const key = `${o.kind}|${o.expected}|${o.actual}|${o.reason ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  const order = ["allowlisted", "unknown", "blocked", "clone"];
  const rank = (kind: string) => (order.includes(kind) ? order.indexOf(kind) : order.length);
  const sorted = [...groups.values()].sort((a, b) => rank(a[0]?.kind ?? "") - rank(b[0]?.kind ?? ""));
  const rows = sorted.map((list) => {
    const first = list[0] as DeviceOutcome;
    return {
      device: first.kind,
      count: list.length,
      expected: first.expected,
      outcome: first.actual,
      reason: first.reason ?? (first.actual === "provisioned" ? "-" : ""),
      ok: list.every((o) => o.ok) ? "yes" : `NO (${list.filter((o) => !o.ok).length})`,
    };
  });
  printRows(rows, ["device", "count", "expected", "outcome", "reason", "ok"], false);
  const latency = summary.latencyMs;
  const seconds = ((summary.endedAt - summary.startedAt) / 1000).toFixed(1);
  const lines = [
    latency
      ? `first connect -> first accepted publish: p50 ${latency.p50} ms, p95 ${latency.p95} ms, max ${latency.max} ms`
      : "no device published",
    `provisioned ${summary.provisioned} devices at ${summary.provisionedPerSecond.toFixed(1)}/s; run took ${seconds} s`,
    summary.allAsExpected ? "every device ended as expected" : "SOME DEVICES DID NOT END AS EXPECTED",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
