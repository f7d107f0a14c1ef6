/**
 * The scale proof: a 200,000-line import and its export, each as a job through the local S3 flow (upload URL,
 * worker, download URL), driven by the CLI against jitr local. Every line is accounted for (created or
 * rejected with its line) and the export holds every record. Prints durations and lines per second.
 */
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import type { ImportReport } from "../../domain/admin/import.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const LINES = Number(process.env.SCALE_LINES ?? 200_000);
/** Lines that must be rejected, each at a known line number. */
const BAD_EVERY = 20_000;

const output = captureOutput();
let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => t.close());

const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);

/** Prints a figure past the output capture. */
const figure = (text: string) => console.info(text);

describe(`scale: ${LINES.toLocaleString("en")} lines through the job flow`, () => {
  it("imports every line as a job (each accounted for) and exports every record as a job", async () => {
    // Prepare: every BAD_EVERY-th line has an invalid device id
    const file = join(t.dataDir, "scale.jsonl");
    const bad: number[] = [];
    const lines = Array.from({ length: LINES }, (_, i) => {
      const line = i + 1;
      if (line % BAD_EVERY === 0) {
        bad.push(line);
        return JSON.stringify({ deviceId: `bad id ${line}` });
      }
      return JSON.stringify({
        deviceId: `scale-${String(line).padStart(7, "0")}`,
        ...(line % 3 === 0 ? { profile: "gateway" } : {}),
        attributes: { site: `site-${line % 7}`, serial: String(100_000 + line) },
      });
    });
    await writeFile(file, `${lines.join("\n")}\n`);
    const exported = join(t.dataDir, "scale-export.jsonl");

    // Act
    const importStart = performance.now();
    const imported = await jitr("allowlist", "import", file, "--job", "--json");
    const importSeconds = (performance.now() - importStart) / 1000;
    expect(output.stdout(), `the import printed no report; stderr: ${output.stderr()}`).not.toBe("");
    const report = JSON.parse(output.stdout()) as ImportReport;
    output.reset();
    const exportStart = performance.now();
    const exportStatus = await jitr("allowlist", "export", "--job", "--out", exported);
    const exportSeconds = (performance.now() - exportStart) / 1000;
    expect(exportStatus, `the export failed; stderr: ${output.stderr()}`).toBe(0);

    // Assess: every line accounted for
    figure(
      `scale import: ${LINES} lines in ${importSeconds.toFixed(1)} s (${Math.round(LINES / importSeconds)} lines/s)`,
    );
    const good = LINES - bad.length;
    figure(
      `scale export: ${good} records in ${exportSeconds.toFixed(1)} s (${Math.round(good / exportSeconds)} records/s)`,
    );
    expect(imported).toBe(1); // rejected lines make the CLI exit 1, after the report
    expect(exportStatus).toBe(0);
    expect(report).toMatchObject({ created: good, accepted: good, rejectedCount: bad.length });
    expect(report.created + report.rejectedCount).toBe(LINES);
    expect(report.rejected.map((r) => r.line)).toEqual(bad);
    // The export holds each good record once, and only those.
    const seen = new Set<string>();
    let exportedLines = 0;
    for await (const line of createInterface({ input: createReadStream(exported) })) {
      if (line === "") continue;
      exportedLines += 1;
      seen.add((JSON.parse(line) as { deviceId: string }).deviceId);
    }
    expect(exportedLines).toBe(good);
    expect(seen.size).toBe(good);
    expect(seen.has("scale-0000001")).toBe(true);
    expect(seen.has(`scale-${String(LINES - 1).padStart(7, "0")}`)).toBe(true);
  });
});
