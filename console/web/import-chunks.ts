/*
 * An import file cut into chunks the console sends one after another, so it can show progress: each chunk
 * keeps the file's line numbers (a CSV chunk repeats the header line, and its report's lines are shifted
 * back by `offset`). Pure: no browser, no I/O.
 */
import type { ImportFormat, ImportReport } from "../../api/contract.ts";

/** One chunk: its body, and how many lines of the file come before its first data line. */
export interface ImportChunk {
  body: string;
  offset: number;
  /** Data lines in this chunk. */
  lines: number;
}

/** Whether a file is CSV: named so, or its first line is not a JSON object. */
export function formatOf(text: string, chosen: ImportFormat | undefined): ImportFormat {
  if (chosen !== undefined) return chosen;
  return text.trimStart().startsWith("{") ? "jsonl" : "csv";
}

/** Cuts a file into chunks of at most `size` data lines (a CSV header line goes with every chunk). */
export function chunksOf(text: string, format: ImportFormat, size: number): ImportChunk[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const header = format === "csv" ? lines.shift() : undefined;
  const chunks: ImportChunk[] = [];
  for (let start = 0; start < lines.length; start += size) {
    const part = lines.slice(start, start + size);
    const body = `${[...(header === undefined ? [] : [header]), ...part].join("\n")}\n`;
    chunks.push({ body, offset: start, lines: part.length });
  }
  if (chunks.length === 0)
    chunks.push({ body: header === undefined ? "" : `${header}\n`, offset: 0, lines: 0 });
  return chunks;
}

/** The reports of the chunks as one report over the whole file (line numbers as in the file). */
export function mergeReports(parts: { report: ImportReport; offset: number }[]): ImportReport | undefined {
  const [head] = parts;
  if (head === undefined) return undefined;
  const shift = <T extends { line: number }>(items: T[], offset: number): T[] =>
    items.map((item) => ({ ...item, line: item.line + offset }));
  // the domain's emptyImportReport is not imported: its module loads Node-only code the browser lacks
  const merged: ImportReport = {
    ...head.report,
    accepted: 0,
    created: 0,
    updated: 0,
    replaced: 0,
    merged: 0,
    unchanged: 0,
    records: [],
    rejected: [],
    rejectedCount: 0,
    warnings: [],
    truncated: false,
  };
  for (const { report, offset } of parts) {
    merged.accepted += report.accepted;
    merged.created += report.created;
    merged.updated += report.updated;
    merged.replaced += report.replaced;
    merged.merged += report.merged;
    merged.unchanged += report.unchanged;
    merged.rejectedCount += report.rejectedCount;
    merged.records.push(...shift(report.records, offset));
    merged.rejected.push(...shift(report.rejected, offset));
    merged.warnings.push(...shift(report.warnings, offset));
    merged.truncated ||= report.truncated;
    if (report.stopped && merged.stopped === undefined) {
      merged.stopped = { ...report.stopped, line: report.stopped.line + offset };
    }
  }
  return merged;
}
