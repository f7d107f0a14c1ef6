/** Backup and restore through the admin API and the CLI against two local stacks, and import's dry-run diff. */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import type { RestoreReport } from "../../domain/jobs/restore-job.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let source: Stack;
let target: Stack;
beforeAll(async () => {
  [source, target] = await Promise.all([startTestStack(), startTestStack()]);
});
afterAll(async () => Promise.all([source?.close(), target?.close()]));

const jitrOn = (t: Stack, ...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
const body = (text: string) => text.split("\n").slice(1);

/** Records of every kind, written through the admin API, and one device provisioned by a real connection. */
async function fill(t: Stack) {
  const ok = (answer: { status: number }) => expect(answer.status).toBeLessThan(300);
  ok(await t.admin("PUT", "/lots/L1", { maxDevices: 50 }, { "if-none-match": "*" }));
  ok(await t.admin("PUT", "/mappings/default", { policy: { template: "sensor" } }, { "if-none-match": "*" }));
  ok(
    await t.admin(
      "PUT",
      "/mappings/profile:gw",
      { policy: { template: "gateway" }, attributes: { role: "gw" } },
      { "if-none-match": "*" },
    ),
  );
  const lines = Array.from({ length: 300 }, (_, i) =>
    JSON.stringify({ deviceId: `bk-${i}`, lot: "L1", ...(i % 2 === 0 ? { profile: "gw" } : {}) }),
  );
  const file = join(t.dataDir, "seed.jsonl");
  await writeFile(file, `${lines.join("\n")}\n`);
  expect(await jitrOn(t, "allowlist", "import", file)).toBe(0);
  await t.connect(await t.device("bk-1"));
}

describe("backup and restore against jitr local", () => {
  it("backs up every record kind, restores into a fresh stack, and a backup of that holds the same records", async () => {
    // Prepare
    await fill(source);
    const first = join(source.dataDir, "backup.jsonl");
    const second = join(target.dataDir, "again.jsonl");

    // Act
    const backedUp = await jitrOn(source, "backup", "--out", first);
    output.reset();
    const restored = await jitrOn(target, "restore", first, "--yes", "--json");
    const report = JSON.parse(output.stdout()) as RestoreReport;
    output.reset();
    const again = await jitrOn(target, "backup", "--out", second);

    // Assess
    const text = await readFile(first, "utf8");
    expect([backedUp, restored, again]).toEqual([0, 0, 0]);
    expect(JSON.parse(text.split("\n")[0] ?? "")).toMatchObject({ kind: "backup", version: 1 });
    expect(body(text).filter(Boolean)).toHaveLength(1 + 2 + 300);
    expect(report).toMatchObject({
      lots: { created: 1 },
      mappings: { created: 2 },
      allowlist: { created: 300 },
      rejectedCount: 0,
    });
    expect(body(await readFile(second, "utf8"))).toEqual(body(text));
    // The source's device is bound to its certificate; the restored record is not (no binding travels).
    const [bound, restoredRecord] = await Promise.all([
      source.admin("GET", "/allowlist/bk-1"),
      target.admin("GET", "/allowlist/bk-1"),
    ]);
    expect(bound.json).toHaveProperty("certificateId");
    expect(restoredRecord.json).not.toHaveProperty("certificateId");
  }, 120_000);

  it("dry-run restore over a changed store prints each change before -> after and writes nothing; without --yes off a terminal it refuses", async () => {
    // Prepare: the target moved on since the backup
    const file = join(target.dataDir, "dry.jsonl");
    await jitrOn(target, "backup", "--out", file);
    const read = await target.admin("GET", "/allowlist/bk-3");
    const version = (read.json as { version: number }).version;
    await target.admin(
      "PUT",
      "/allowlist/bk-3",
      { lot: "L1", note: "moved" },
      { "if-match": `"${version}"` },
    );
    output.reset();

    // Act
    const dry = await jitrOn(target, "restore", file, "--dry-run");
    const printed = output.stdout();
    output.reset();
    const unconfirmed = await jitrOn(target, "restore", file);
    const refusal = output.stderr();
    const after = await target.admin("GET", "/allowlist/bk-3");

    // Assess
    expect(dry).toBe(0);
    expect(printed).toContain("dry run: nothing written");
    expect(printed).toMatch(/bk-3\s*│\s*replaced\s*│\s*note: moved -> \(unset\)/);
    expect(unconfirmed).toBe(1);
    expect(refusal).toMatch(/add --yes/);
    expect(after.json).toMatchObject({ note: "moved" });
  }, 60_000);

  it("refuses a crafted file that would bind a device to a certificate: exit 1, the line named, nothing written", async () => {
    // Prepare
    const file = join(target.dataDir, "crafted.jsonl");
    const lines = [
      '{"kind":"backup","version":1}',
      '{"kind":"lot","record":{"lot":"L9"}}',
      `{"kind":"allowlist","record":{"deviceId":"victim","certificateId":"${"a".repeat(64)}"}}`,
    ];
    await writeFile(file, `${lines.join("\n")}\n`);
    output.reset();

    // Act
    const status = await jitrOn(target, "restore", file, "--yes");
    const printed = output.stdout();
    const [lot, victim] = await Promise.all([
      target.admin("GET", "/lots/L9"),
      target.admin("GET", "/allowlist/victim"),
    ]);

    // Assess
    expect(status).toBe(1);
    expect(printed).toMatch(/3\s*│\s*certificateId: is written by the service/);
    expect(output.stderr()).toMatch(/1 line\(s\) are invalid; nothing was written/);
    expect([lot.status, victim.status]).toEqual([404, 404]);
  });

  it("answers bad restore and backup requests with JSON errors", async () => {
    // Act
    const answers = await Promise.all([
      target.admin("POST", "/restore-jobs", { file: "backups/x.jsonl", dryRun: 1 }),
      target.admin("GET", "/backup-jobs"),
      target.admin("POST", "/backup-jobs/x"),
    ]);

    // Assess
    expect(answers.map((a) => a.status)).toEqual([400, 405, 404]);
    expect(answers[0]?.json).toMatchObject({
      error: {
        code: expect.any(String),
        details: expect.arrayContaining([
          { path: "file", message: expect.any(String) },
          { path: "dryRun", message: "must be true or false" },
        ]),
      },
    });
  });
});

describe("import --dry-run against jitr local", () => {
  it("prints the fields each update would change, before -> after, and writes nothing", async () => {
    // Prepare
    const file = join(target.dataDir, "changes.jsonl");
    await target.admin(
      "PUT",
      "/allowlist/dr-1",
      { attributes: { site: "north" }, note: "n" },
      { "if-none-match": "*" },
    );
    await writeFile(file, '{"deviceId":"dr-1","attributes":{"site":"south"}}\n{"deviceId":"dr-2"}\n');
    output.reset();

    // Act
    const status = await jitrOn(target, "allowlist", "import", file, "--dry-run");
    const printed = output.stdout();
    output.reset();
    const jsonStatus = await jitrOn(target, "allowlist", "import", file, "--dry-run", "--json");
    const report = JSON.parse(output.stdout());
    const stored = await target.admin("GET", "/allowlist/dr-1");

    // Assess
    expect([status, jsonStatus]).toEqual([0, 0]);
    expect(printed).toMatch(/dr-1\s*│\s*replaced\s*│\s*attributes\.site: north -> south/);
    expect(printed).toContain("note: n -> (unset)");
    expect(printed).toMatch(/dr-2\s*│\s*created/);
    expect(report.records).toEqual([
      {
        line: 1,
        deviceId: "dr-1",
        outcome: "replaced",
        changes: [
          { field: "attributes.site", before: "north", after: "south" },
          { field: "note", before: "n" },
        ],
      },
      { line: 2, deviceId: "dr-2", outcome: "created" },
    ]);
    expect(stored.json).toMatchObject({ note: "n", attributes: { site: "north" } });
  });
});
