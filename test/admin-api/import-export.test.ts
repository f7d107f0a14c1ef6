/** Bulk import and export of allowlist records through the admin router, over dynalite. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IMPORT_LIMITS } from "../../api/contract.ts";
import { Admin, type ImportReport } from "../../domain/admin/index.ts";
import { linesOf } from "../../handlers/admin-http.ts";
import { linesFrom, startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "..", "fixtures", name), "utf8");

const report = (json: unknown) => json as ImportReport;

async function collect(lines: AsyncIterable<string> | undefined): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines ?? []) out.push(line);
  return out;
}

describe("import", () => {
  it("imports an AWS bulk-provisioning parameter file: ThingName is the device id, other keys attributes, CSR warned", async () => {
    // Prepare
    const { call, deps } = await worlds.world();

    // Act
    const imported = await call("POST", "/allowlist/import", {
      body: fixture("bulk-parameters.jsonl"),
      headers: { "content-type": "application/x-ndjson" },
    });

    // Assess
    expect(imported.status).toBe(200);
    expect(report(imported.json)).toMatchObject({ accepted: 2, created: 2, rejected: [], format: "jsonl" });
    expect(report(imported.json).warnings).toEqual([
      { line: 1, message: expect.stringContaining("CSR ignored") },
      { line: 2, message: expect.stringContaining("CSR ignored") },
    ]);
    expect(await deps.allowlist.get("foo")).toMatchObject({
      status: "allowed",
      attributes: { SerialNumber: "123" },
      version: 1,
    });
    expect(await deps.allowlist.get("bar")).toMatchObject({ attributes: { SerialNumber: "456" } });
  });

  it("imports CSV with thingGroups and attributes.<name> columns, sniffed without a content type", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const csv = [
      "deviceId,status,profile,thingGroups,attributes.site,note",
      'dev-1,allowed,sensor,a;b,north,"hello, world"',
      'dev-2,blocked,,,,"two\nlines"',
      "dev-3,allowed",
    ].join("\r\n");

    // Act
    const imported = await call("POST", "/allowlist/import", {
      body: csv,
      headers: { "content-type": "text/plain" },
    });

    // Assess
    expect(report(imported.json)).toMatchObject({ format: "csv", accepted: 2, created: 2 });
    expect(report(imported.json).rejected).toEqual([{ line: 5, reason: "has 2 fields; the header has 6" }]);
    expect(await deps.allowlist.get("dev-1")).toMatchObject({
      profile: "sensor",
      thingGroups: ["a", "b"],
      attributes: { site: "north" },
      note: "hello, world",
    });
    expect(await deps.allowlist.get("dev-2")).toMatchObject({ status: "blocked", note: "two\nlines" });
  });

  it("reads stray quotes as written, reports an unclosed quote with its line, and imports the rest", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const csv = [
      "deviceId,note",
      "ok-a,fine",
      'bad-b,"closed"then text',
      "",
      "ok-c,fine",
      'bad-d,"never closed',
    ].join("\n");

    // Act
    const imported = await call("POST", "/allowlist/import", {
      body: csv,
      headers: { "content-type": "text/csv" },
    });

    // Assess
    expect(report(imported.json)).toMatchObject({ format: "csv", accepted: 3 });
    expect(report(imported.json).rejected).toEqual([
      {
        line: 6,
        reason:
          "a quoted CSV field opened on this line is not closed before the end; the lines after it are read as records of their own",
      },
    ]);
    expect(await deps.allowlist.get("ok-c")).toMatchObject({ note: "fine" });
    expect(await deps.allowlist.get("bad-b")).toMatchObject({ note: '"closed"then text' });
    expect(await deps.allowlist.get("bad-d")).toBeUndefined();
  });

  it("refuses a CSV header with an unknown column with 400, writing nothing", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("POST", "/allowlist/import", {
      body: "deviceId,colour\ndev-1,red\n",
      headers: { "content-type": "text/csv" },
    });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: { details: [{ path: "column colour" }] } });
    expect(await scan("allowlist")).toEqual([]);
  });

  it("best-effort writes the good lines and reports each bad one with its line number and reason", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const body = [
      '{"deviceId":"ok-1"}',
      "not json",
      '{"deviceId":"ok-2","status":"nope"}',
      "",
      '{"deviceId":"ok-1"}',
      '{"deviceId":"ok-3","version":4}',
      '{"deviceId":"ok-4"}',
    ].join("\n");

    // Act
    const imported = await call("POST", "/allowlist/import", { body });

    // Assess
    expect(imported.status).toBe(200);
    expect(report(imported.json)).toMatchObject({ accepted: 2, created: 2, rejectedCount: 4 });
    expect(report(imported.json).rejected).toEqual([
      { line: 2, reason: "not valid JSON" },
      { line: 3, reason: "status: must be one of allowed, blocked" },
      { line: 5, reason: "deviceId ok-1 appears on line 1 already" },
      { line: 6, reason: "version: is written by the service and cannot be set" },
    ]);
    expect((await deps.allowlist.getMany(["ok-1", "ok-4"])).map((r) => r.deviceId).sort()).toEqual([
      "ok-1",
      "ok-4",
    ]);
  });

  it("all-or-nothing writes nothing when one line is bad, answering 400 with the report", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    const body = [
      '{"deviceId":"a-1"}',
      '{"deviceId":"a-2"}',
      '{"deviceId":"bad id"}',
      '{"deviceId":"a-3"}',
    ].join("\n");

    // Act
    const refused = await call("POST", "/allowlist/import?mode=all-or-nothing", { body });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { code: "ImportRejected", details: { accepted: 0, rejected: [{ line: 3 }] } },
    });
    expect(await scan("allowlist")).toEqual([]);
    expect(await scan("ledger")).toEqual([]);
  });

  it("all-or-nothing writes everything when every line is good", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    const body = Array.from({ length: 250 }, (_, i) => JSON.stringify({ deviceId: `d-${i}` })).join("\n");

    // Act
    const imported = await call("POST", "/allowlist/import?mode=all-or-nothing", { body });

    // Assess
    expect(report(imported.json)).toMatchObject({ accepted: 250, created: 250, rejectedCount: 0 });
    expect(await scan("allowlist")).toHaveLength(250);
    expect(await scan("ledger")).toHaveLength(250);
  });

  it("updates changed records (version + 1, binding kept) and leaves identical ones unchanged", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    await call("POST", "/allowlist/import", { body: '{"deviceId":"u-1"}\n{"deviceId":"u-2"}' });
    await deps.allowlist.claimBinding({
      deviceId: "u-2",
      certificateId: "f".repeat(64),
      expectedCertificateId: undefined,
    });

    // Act
    const again = await call("POST", "/allowlist/import", {
      body: '{"deviceId":"u-1"}\n{"deviceId":"u-2","profile":"new"}',
    });

    // Assess
    expect(report(again.json)).toMatchObject({ accepted: 2, created: 0, updated: 1, unchanged: 1 });
    expect(await deps.allowlist.get("u-1")).toMatchObject({ version: 1 });
    expect(await deps.allowlist.get("u-2")).toMatchObject({
      version: 2,
      profile: "new",
      certificateId: "f".repeat(64),
    });
  });

  it("never unblocks a blocked device when a line leaves status out", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    await call("POST", "/allowlist/import", { body: '{"deviceId":"foo","status":"blocked"}' });

    // Act
    const imported = await call("POST", "/allowlist/import", { body: fixture("bulk-parameters.jsonl") });

    // Assess
    expect(report(imported.json)).toMatchObject({ created: 1, updated: 1 });
    expect(await deps.allowlist.get("foo")).toMatchObject({
      status: "blocked",
      attributes: { SerialNumber: "123" },
    });
    expect(await deps.allowlist.get("bar")).toMatchObject({ status: "allowed" });
  });

  it("refuses an unknown mode with 400", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const refused = await call("POST", "/allowlist/import?mode=sometimes", { body: '{"deviceId":"x"}' });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: { details: [{ path: "mode" }] } });
  });

  it("reads a streamed body line by line (the local server's path)", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const imported = await call("POST", "/allowlist/import", {
      extras: { lines: linesFrom('{"deviceId":"s-1"}\n{"deviceId":"s-2"}') },
    });

    // Assess
    expect(report(imported.json)).toMatchObject({ accepted: 2 });
    expect(await scan("allowlist")).toHaveLength(2);
  });

  it("reports progress, never going back, as each batch completes", async () => {
    // Prepare
    const { deps } = await worlds.world();
    const body = Array.from({ length: 230 }, (_, i) => JSON.stringify({ deviceId: `p-${i}` })).join("\n");
    const progress: number[] = [];

    // Act
    await new Admin(deps).allowlist.import("tester", linesOf([Buffer.from(body)], IMPORT_LIMITS), {
      onProgress: (n) => progress.push(n),
    });

    // Assess
    expect(progress).toHaveLength(3);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(progress.at(-1)).toBe(230);
  });
});

describe("import over existing records", () => {
  it("merges a bulk-provisioning line into a pinned record and lists each record's outcome; a dry run writes nothing", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const pins = {
      caCertificateId: "c".repeat(64),
      certificateFingerprint: "d".repeat(64),
      lot: "lot-7",
      notAfter: "2036-01-01T00:00:00.000Z",
    };
    await call("POST", "/allowlist/import", {
      body: `${JSON.stringify({ deviceId: "foo", ...pins, attributes: { site: "north" } })}\n${JSON.stringify({ deviceId: "bar", ...pins })}`,
    });
    const bulk = `${fixture("bulk-parameters.jsonl").trim()}\n{"deviceId":"new-1"}`;

    // Act
    const dry = await call("POST", "/allowlist/import?dryRun=true", { body: bulk });
    const afterDry = [await deps.allowlist.get("foo"), await deps.allowlist.get("new-1")];
    const imported = await call("POST", "/allowlist/import", { body: bulk });

    // Assess
    const outcomes = [
      { line: 1, deviceId: "foo", outcome: "merged" },
      { line: 2, deviceId: "bar", outcome: "merged" },
      { line: 3, deviceId: "new-1", outcome: "created" },
    ];
    expect(dry.status).toBe(200);
    expect(report(dry.json)).toMatchObject({ dryRun: true, merged: 2, created: 1, records: outcomes });
    expect(afterDry).toEqual([expect.objectContaining({ version: 1 }), undefined]);
    expect(report(imported.json)).toMatchObject({ dryRun: false, merged: 2, created: 1, records: outcomes });
    expect(await deps.allowlist.get("foo")).toMatchObject({
      ...pins,
      attributes: { site: "north", SerialNumber: "123" },
      version: 2,
    });
    expect(await deps.allowlist.get("bar")).toMatchObject({ ...pins, attributes: { SerialNumber: "456" } });
  });

  it("refuses a dryRun that is not true or false with 400", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("POST", "/allowlist/import?dryRun=maybe", { body: '{"deviceId":"x"}' });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ error: { details: [{ path: "dryRun" }] } });
    expect(await scan("allowlist")).toEqual([]);
  });
});

describe("import limits (the deployed path: the whole body in the event)", () => {
  const longLine = `{"deviceId":"long","note":"${"x".repeat(64 * 1024)}"}`;

  it("answers 400 naming a line over 64 KiB; best-effort keeps the lines before it and reads none after", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    const body = ['{"deviceId":"l-1"}', longLine, '{"deviceId":"l-3"}'].join("\n");

    // Act
    const refused = await call("POST", "/allowlist/import", { body });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: {
        code: "ImportRejected",
        message: expect.stringMatching(/^line 2 is longer than 65536 bytes/),
        details: { created: 1, records: [{ line: 1, deviceId: "l-1" }], stopped: { line: 2, limit: "line" } },
      },
    });
    expect(await scan("allowlist")).toEqual([expect.objectContaining({ deviceId: "l-1" })]);
  });

  it("all-or-nothing writes nothing when a line is over 64 KiB", async () => {
    // Prepare
    const { call, scan } = await worlds.world();

    // Act
    const refused = await call("POST", "/allowlist/import?mode=all-or-nothing", {
      body: `{"deviceId":"l-1"}\n${longLine}`,
    });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { message: expect.stringContaining("nothing was written"), details: { stopped: { line: 2 } } },
    });
    expect(await scan("allowlist")).toEqual([]);
    expect(await scan("ledger")).toEqual([]);
  });

  it("splits chunks into lines, keeping a character split across chunks, and stops at the line that breaks a limit", async () => {
    // Prepare: "ü" is two bytes, split between the first two chunks
    const text = Buffer.from('{"a":"ü"}\n\n{"b":1}\n0123456789x\n');
    const chunks = [text.subarray(0, 7), text.subarray(7, 15), text.subarray(15)];
    const read = async (limits: { lineBytes: number; bodyBytes: number }) => {
      const lines: string[] = [];
      try {
        for await (const line of linesOf(chunks, limits)) lines.push(line);
      } catch (error) {
        return { lines, error: error as { limit: string; line: number } };
      }
      return { lines, error: undefined };
    };

    // Act
    const whole = await read({ lineBytes: 64, bodyBytes: 1024 });
    const lineCut = await read({ lineBytes: 10, bodyBytes: 1024 });
    const bodyCut = await read({ lineBytes: 64, bodyBytes: 22 });

    // Assess
    expect(whole).toEqual({ lines: ['{"a":"ü"}', "", '{"b":1}', "0123456789x"], error: undefined });
    expect(lineCut.lines).toEqual(['{"a":"ü"}', "", '{"b":1}']);
    expect(lineCut.error).toMatchObject({ limit: "line", line: 4 });
    expect(bodyCut.lines).toEqual(['{"a":"ü"}', "", '{"b":1}']);
    expect(bodyCut.error).toMatchObject({ limit: "body", line: 4 });
  });

  it("answers 413 for a body over 6 MiB before reading a line", async () => {
    // Prepare
    const { call, scan } = await worlds.world();
    const line = JSON.stringify({ deviceId: "big", note: "n".repeat(1000) });
    const body = Array.from({ length: 6400 }, () => line).join("\n");

    // Act
    const refused = await call("POST", "/allowlist/import", { body });

    // Assess
    expect(body.length).toBeGreaterThan(6 * 1024 * 1024);
    expect(refused.status).toBe(413);
    expect(refused.json).toMatchObject({ error: { code: "PayloadTooLarge" } });
    expect(await scan("allowlist")).toEqual([]);
  });
});

describe("export", () => {
  it("exports JSON lines of the admin fields that import back unchanged", async () => {
    // Prepare
    const source = await worlds.world();
    const target = await worlds.world();
    const records = [
      {
        deviceId: "e-1",
        status: "allowed",
        profile: "sensor",
        thingGroups: ["g1"],
        attributes: { site: "n" },
      },
      { deviceId: "e-2", status: "blocked", note: "stolen", notBefore: "2026-01-01", notAfter: "2027-01-01" },
      { deviceId: "e-3", status: "allowed", lot: "L1", rotation: "replace", caCertificateId: "a".repeat(64) },
    ];
    await source.call("POST", "/allowlist/import", {
      body: records.map((r) => JSON.stringify(r)).join("\n"),
    });

    // Act
    const exported = await source.call("GET", "/allowlist/export");
    const lines = await collect(exported.raw.lines);
    const reimported = await target.call("POST", "/allowlist/import", { body: lines.join("\n") });
    const sameTable = await source.call("POST", "/allowlist/import", { body: lines.join("\n") });
    const again = await collect((await target.call("GET", "/allowlist/export")).raw.lines);

    // Assess
    expect(exported.headers["content-type"]).toBe("application/x-ndjson");
    expect(lines.map((l) => JSON.parse(l)).sort((a, b) => a.deviceId.localeCompare(b.deviceId))).toEqual(
      records,
    );
    expect(report(reimported.json)).toMatchObject({ accepted: 3, created: 3 });
    expect(report(sameTable.json)).toMatchObject({ accepted: 3, unchanged: 3, created: 0, updated: 0 });
    expect(again.sort()).toEqual([...lines].sort());
  });
});
