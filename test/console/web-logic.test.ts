/*
 * The console's pure browser logic: cutting an import into chunks (line numbers kept), merging the
 * chunks' reports, and counting ledger entries for the activity chart.
 */
import { describe, expect, it } from "vitest";
import type { ImportReport, LedgerEntry } from "../../api/contract.ts";
import { bucketsOf } from "../../console/web/chart.ts";
import { chunksOf, formatOf, mergeReports } from "../../console/web/import-chunks.ts";
import { emptyImportReport } from "../../domain/admin/import.ts";

const report = (over: Partial<ImportReport>): ImportReport => ({
  ...emptyImportReport("best-effort", "jsonl", false),
  ...over,
});

describe("import chunks", () => {
  it("tells JSON lines from CSV unless the format is chosen", () => {
    expect(formatOf('{"deviceId":"a"}\n', undefined)).toBe("jsonl");
    expect(formatOf("deviceId,status\na,allowed\n", undefined)).toBe("csv");
    expect(formatOf('{"deviceId":"a"}\n', "csv")).toBe("csv");
  });

  it("cuts JSON lines into chunks of at most `size` lines, each with its offset", () => {
    const chunks = chunksOf("a\nb\nc\nd\ne\n", "jsonl", 2);
    expect(chunks).toEqual([
      { body: "a\nb\n", offset: 0, lines: 2 },
      { body: "c\nd\n", offset: 2, lines: 2 },
      { body: "e\n", offset: 4, lines: 1 },
    ]);
  });

  it("repeats the CSV header in every chunk, so each chunk's line numbers shift by its offset", () => {
    const chunks = chunksOf("id,status\na,allowed\nb,allowed\nc,blocked", "csv", 2);
    expect(chunks).toEqual([
      { body: "id,status\na,allowed\nb,allowed\n", offset: 0, lines: 2 },
      { body: "id,status\nc,blocked\n", offset: 2, lines: 1 },
    ]);
  });

  it("merges the chunks' reports with the file's line numbers", () => {
    const merged = mergeReports([
      {
        report: report({
          accepted: 2,
          created: 2,
          records: [{ line: 1, deviceId: "a", outcome: "created" }],
        }),
        offset: 0,
      },
      {
        report: report({
          accepted: 1,
          updated: 1,
          rejectedCount: 1,
          rejected: [{ line: 2, reason: "status: must be allowed or blocked" }],
          warnings: [{ line: 1, message: "CSR ignored" }],
          stopped: { line: 3, limit: "line", reason: "too long" },
        }),
        offset: 200,
      },
    ]);
    expect(merged).toMatchObject({
      accepted: 3,
      created: 2,
      updated: 1,
      rejectedCount: 1,
      rejected: [{ line: 202, reason: "status: must be allowed or blocked" }],
      warnings: [{ line: 201, message: "CSR ignored" }],
      records: [{ line: 1, deviceId: "a" }],
      stopped: { line: 203 },
    });
    expect(mergeReports([])).toBeUndefined();
  });
});

describe("activity chart", () => {
  const entry = (at: string, kind: LedgerEntry["kind"], reason?: string): LedgerEntry => ({
    deviceId: "d",
    at,
    kind,
    ...(reason ? { reason } : {}),
  });

  it("counts denials by reason and other outcomes by kind, in equal time buckets", () => {
    const { buckets, series } = bucketsOf(
      [
        entry("2026-01-01T00:00:00.000Z", "provisioned"),
        entry("2026-01-01T00:00:30.000Z", "denied", "not-allowlisted"),
        entry("2026-01-01T01:59:59.000Z", "denied", "not-allowlisted"),
        entry("2026-01-01T01:59:59.000Z", "failed"),
      ],
      2,
    );
    expect(series).toEqual(["denied: not-allowlisted", "failed", "provisioned"]);
    expect(buckets.map((b) => b.counts)).toEqual([
      { provisioned: 1, "denied: not-allowlisted": 1 },
      { "denied: not-allowlisted": 1, failed: 1 },
    ]);
  });

  it("has no bars without entries", () => {
    expect(bucketsOf([])).toEqual({ buckets: [], series: [], width: 0 });
  });
});
