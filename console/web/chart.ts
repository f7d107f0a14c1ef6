/*
 * The activity chart's data: ledger entries counted by series (a denial's reason, else the outcome) in equal
 * time buckets, and the series' colours. Pure: no browser, no I/O.
 */
import type { LedgerEntry } from "../../api/contract.ts";

/** The colours of outcomes in the chart (readable on white). */
const KIND_COLOURS: Record<string, string> = {
  provisioned: "#1b7a3a",
  denied: "#b3261e",
  failed: "#7a4b00",
  admin: "#3657a8",
};
const REASON_PALETTE = ["#b3261e", "#8e3b9e", "#a35200", "#6b5b00", "#00687a", "#5a5a5a", "#9c2a5e"];

/** One bar of the chart: a time bucket and its count by series (outcome, or denial reason). */
export interface Bucket {
  start: number;
  counts: Record<string, number>;
}

/** Entries counted by series (the reason of a denial or failure, else the kind) in `buckets` equal time buckets. */
export function bucketsOf(
  entries: LedgerEntry[],
  buckets = 12,
): { buckets: Bucket[]; series: string[]; width: number } {
  const times = entries.map((e) => Date.parse(e.at)).filter((t) => !Number.isNaN(t));
  if (times.length === 0) return { buckets: [], series: [], width: 0 };
  const first = Math.min(...times);
  const last = Math.max(...times);
  const width = Math.max(1000, Math.ceil((last - first + 1) / buckets));
  const out: Bucket[] = Array.from({ length: buckets }, (_, i) => ({ start: first + i * width, counts: {} }));
  const series = new Set<string>();
  for (const entry of entries) {
    const t = Date.parse(entry.at);
    if (Number.isNaN(t)) continue;
    const bucket = out[Math.min(buckets - 1, Math.floor((t - first) / width))];
    const name = seriesOf(entry);
    series.add(name);
    if (bucket) bucket.counts[name] = (bucket.counts[name] ?? 0) + 1;
  }
  return { buckets: out, series: [...series].sort(), width };
}

const seriesOf = (entry: LedgerEntry): string =>
  entry.kind === "denied" && entry.reason ? `denied: ${entry.reason}` : entry.kind;

export function colourOf(series: string, index: number): string {
  return KIND_COLOURS[series] ?? REASON_PALETTE[index % REASON_PALETTE.length] ?? "#444";
}
