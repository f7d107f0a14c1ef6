/** The admin CLI, run in-process through `main(argv)` against a local admin server on a free port. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../cli/main.ts";
import { provision } from "../../domain/provision.ts";
import { startAdminServer } from "../../local/admin-server.ts";
import { certificateIdOf, issueCertificate } from "../../pki/certificates.ts";
import { startAdminWorlds } from "../admin-api/support.ts";
import { CA_ID, eventFor, testCa } from "../support/world.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
let dir: string;
beforeAll(async () => {
  worlds = await startAdminWorlds();
  dir = await mkdtemp(join(tmpdir(), "jitr-admin-cli-"));
});
afterAll(async () => {
  await worlds.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const TOKEN = "cli-token";
const fixture = join(import.meta.dirname, "..", "fixtures", "bulk-parameters.jsonl");

/** Runs `jitr <args>` in-process, capturing what it prints. */
async function jitr(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const status = await main(["node", "jitr", ...args]);
    return { status, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

/** A world behind a local admin server; `api` are the flags that point the CLI at it. */
async function served() {
  const w = await worlds.world();
  const server = await startAdminServer({ port: 0, token: TOKEN, deps: w.deps });
  return { ...w, server, api: ["--api", server.url, "--token", TOKEN] };
}

describe("jitr allowlist", () => {
  it("puts a record, merges a later put into it, and gets it as JSON", async () => {
    // Prepare
    const { api, server } = await served();

    // Act
    const created = await jitr(
      "allowlist",
      "put",
      "dev-1",
      "--profile",
      "sensor",
      "--attribute",
      "site=north",
      ...api,
    );
    const merged = await jitr("allowlist", "put", "dev-1", "--note", "second", ...api);
    const read = await jitr("allowlist", "get", "dev-1", "--json", ...api);
    await server.close();

    // Assess
    expect(created.status).toBe(0);
    expect(created.stderr).toContain("created dev-1 (version 1)");
    expect(created.stdout).toContain("dev-1");
    expect(merged.stderr).toContain("updated dev-1 (version 2)");
    expect(read.status).toBe(0);
    expect(JSON.parse(read.stdout)).toMatchObject({
      deviceId: "dev-1",
      profile: "sensor",
      note: "second",
      attributes: { site: "north" },
      version: 2,
      updatedBy: "local-admin",
    });
  });

  it("exits 1 with the API's message and each field at fault", async () => {
    // Prepare
    const { api, server, scan } = await served();
    const file = join(dir, "bad-record.json");
    await writeFile(file, JSON.stringify({ caCertificateId: "abc", colour: "red" }));

    // Act
    const refused = await jitr("allowlist", "put", "dev-1", "--file", file, ...api);
    await server.close();

    // Assess
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("2 fields are invalid");
    expect(refused.stderr).toContain("caCertificateId: must be a CA certificate id (64 hex digits)");
    expect(refused.stderr).toContain("colour: is not a known field");
    expect(await scan("allowlist")).toEqual([]);
  });

  it("lists records as a table and as JSON, and removes one", async () => {
    // Prepare
    const { api, server } = await served();
    await jitr("allowlist", "put", "dev-a", "--lot", "L1", ...api);
    await jitr("allowlist", "put", "dev-b", "--status", "blocked", ...api);

    // Act
    const table = await jitr("allowlist", "list", ...api);
    const blocked = await jitr("allowlist", "list", "--status", "blocked", "--json", ...api);
    const removed = await jitr("allowlist", "remove", "dev-a", "--yes", ...api);
    const again = await jitr("allowlist", "remove", "dev-a", "--yes", ...api);
    await server.close();

    // Assess
    expect(table.stdout).toContain("dev-a");
    expect(table.stdout).toContain("dev-b");
    expect(JSON.parse(blocked.stdout).items.map((r: { deviceId: string }) => r.deviceId)).toEqual(["dev-b"]);
    expect(removed.stdout).toBe("deleted dev-a\n");
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("no allowlist record for device dev-a");
  });

  it("imports a bulk-provisioning parameter file and prints the report, with the CSR warnings", async () => {
    // Prepare
    const { api, server, deps } = await served();

    // Act
    const imported = await jitr("allowlist", "import", fixture, "--json", ...api);
    await server.close();

    // Assess
    expect(imported.status).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({
      accepted: 2,
      created: 2,
      rejectedCount: 0,
      warnings: [{ line: 1 }, { line: 2 }],
    });
    expect(await deps.allowlist.get("foo")).toMatchObject({ attributes: { SerialNumber: "123" } });
  });

  it("imports CSV, exits 1 when lines are rejected, and all-or-nothing writes nothing", async () => {
    // Prepare
    const { api, server, scan } = await served();
    const csv = join(dir, "records.csv");
    await writeFile(csv, "deviceId,status,lot\ncsv-1,allowed,L1\ncsv-2,unknown,L1\n");

    // Act
    const strict = await jitr("allowlist", "import", csv, "--mode", "all-or-nothing", ...api);
    const afterStrict = await scan("allowlist");
    const lenient = await jitr("allowlist", "import", csv, ...api);
    await server.close();

    // Assess
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain("1 line(s) are invalid; nothing was written");
    expect(afterStrict).toEqual([]);
    expect(lenient.status).toBe(1);
    expect(lenient.stdout).toContain("status: must be one of allowed, blocked");
    expect(lenient.stderr).toContain("1 line(s) rejected");
    expect((await scan("allowlist")).map((r) => r.deviceId)).toEqual(["csv-1"]);
  });

  it("prints each record's outcome: a bulk file merges into pinned records, and --dry-run writes nothing", async () => {
    // Prepare
    const { api, server, deps } = await served();
    const lot = "lot-9";
    await jitr("allowlist", "put", "foo", "--lot", lot, "--attribute", "site=north", ...api);

    // Act
    const dry = await jitr("allowlist", "import", fixture, "--dry-run", ...api);
    const afterDry = await deps.allowlist.get("bar");
    const imported = await jitr("allowlist", "import", fixture, ...api);
    await server.close();

    // Assess
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/dry run/);
    expect(dry.stdout).toMatch(/│ 1\s+│ foo\s+│ merged\s+│/);
    expect(dry.stdout).toMatch(/│ 2\s+│ bar\s+│ created\s+│/);
    expect(afterDry).toBeUndefined();
    expect(imported.stdout).toMatch(/│ 1\s+│ foo\s+│ merged\s+│/);
    expect(await deps.allowlist.get("foo")).toMatchObject({
      lot,
      attributes: { site: "north", SerialNumber: "123" },
    });
  });

  it("exits 1 and says where an import stopped when a line is over the limit", async () => {
    // Prepare
    const { api, server, scan } = await served();
    const file = join(dir, "long-line.jsonl");
    await writeFile(
      file,
      `{"deviceId":"ok-1"}\n{"deviceId":"${"x".repeat(70 * 1024)}"}\n{"deviceId":"ok-3"}\n`,
    );

    // Act
    const imported = await jitr("allowlist", "import", file, ...api);
    await server.close();

    // Assess
    expect(imported.status).toBe(1);
    expect(imported.stderr).toMatch(/line 2 is longer than 65536 bytes/);
    expect(imported.stdout).toMatch(/stopped.*at line 2/);
    expect((await scan("allowlist")).map((r) => r.deviceId)).toEqual(["ok-1"]);
  });

  it("exports to a file that imports back unchanged", async () => {
    // Prepare
    const { api, server } = await served();
    await jitr("allowlist", "put", "x-1", "--thing-group", "g1", "--thing-group", "g2", ...api);
    await jitr("allowlist", "put", "x-2", "--rotation", "replace", "--not-before", "2026-01-01", ...api);
    const out = join(dir, "export.jsonl");

    // Act
    const exported = await jitr("allowlist", "export", "--out", out, ...api);
    const reimported = await jitr("allowlist", "import", out, "--json", ...api);
    const stdout = await jitr("allowlist", "export", ...api);
    await server.close();

    // Assess
    expect(exported.stderr).toContain("wrote 2 records");
    expect(JSON.parse(reimported.stdout)).toMatchObject({ accepted: 2, unchanged: 2 });
    expect(stdout.stdout.trim().split("\n").sort()).toEqual(
      (await readFile(out, "utf8")).trim().split("\n").sort(),
    );
  });
});

describe("jitr mappings and lots", () => {
  it("puts, gets, lists, dry-runs and removes a mapping", async () => {
    // Prepare
    const { api, server, scan } = await served();

    // Act
    const put = await jitr("mappings", "put", "default", "--template", "sensor", ...api);
    const dryRun = await jitr("mappings", "put", "default", "--template", "gateway", "--dry-run", ...api);
    const got = await jitr("mappings", "get", "default", "--json", ...api);
    const listed = await jitr("mappings", "list", "--json", ...api);
    const stored = await scan("mappings");
    const removed = await jitr("mappings", "remove", "default", ...api);
    await server.close();

    // Assess
    expect(put.status).toBe(0);
    expect(dryRun.stdout).toContain(
      "dry run: 0 of 0 provisioned device(s) would change policy; nothing saved",
    );
    expect(JSON.parse(got.stdout)).toMatchObject({
      selector: "default",
      policy: { template: "sensor" },
      version: 1,
    });
    expect(JSON.parse(listed.stdout).items).toHaveLength(1);
    expect(stored).toHaveLength(1);
    expect(removed.stdout).toBe("deleted default\n");
  });

  it("prints the warnings a saved mapping is answered with, and keeps them in --json", async () => {
    // Prepare: a template naming one thing for every device
    const { api, server } = await served();
    const file = join(dir, "literal-thing.json");
    await writeFile(
      file,
      JSON.stringify({
        policy: { template: "sensor" },
        provisioningTemplate: {
          templateBody: {
            Resources: { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: "one" } } },
          },
        },
      }),
    );

    // Act
    const put = await jitr("mappings", "put", "profile:p", "--file", file, ...api);
    const dryRun = await jitr("mappings", "put", "profile:q", "--file", file, "--dry-run", ...api);
    const json = await jitr("mappings", "put", "profile:r", "--file", file, "--json", ...api);
    await server.close();

    // Assess
    const line =
      'warning: provisioningTemplate.templateBody.Resources.thing.Properties.ThingName: names the thing "one"';
    expect(put.status).toBe(0);
    expect(put.stderr).toContain(line);
    expect(put.stdout).not.toContain("warnings");
    expect(dryRun.stderr).toContain(line);
    expect(JSON.parse(json.stdout).warnings).toEqual([
      expect.objectContaining({ code: "thing-name-mismatch" }),
    ]);
  });

  it("refuses a provisioning template with the API's message", async () => {
    // Prepare
    const { api, server } = await served();
    const file = join(dir, "jitp.json");
    await writeFile(
      file,
      JSON.stringify({ provisioningTemplate: { templateBody: "{}" }, policy: { template: "sensor" } }),
    );

    // Act
    const refused = await jitr("mappings", "put", "default", "--file", file, ...api);
    await server.close();

    // Assess
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("provisioningTemplate.templateBody.Resources");
  });

  it("puts, gets and lists lots", async () => {
    // Prepare
    const { api, server } = await served();

    // Act
    const put = await jitr("lots", "put", "L1", "--max-devices", "3", ...api);
    const updated = await jitr("lots", "put", "L1", "--not-after", "2030-01-01", "--json", ...api);
    const got = await jitr("lots", "get", "L1", "--json", ...api);
    const listed = await jitr("lots", "list", ...api);
    const bad = await jitr("lots", "put", "L2", "--max-devices", "-1", ...api);
    await server.close();

    // Assess
    expect(put.status).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ version: 2 });
    expect(JSON.parse(got.stdout)).toMatchObject({
      lot: "L1",
      maxDevices: 3,
      notAfter: "2030-01-01",
      provisionedCount: 0,
    });
    expect(listed.stdout).toContain("L1");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("--max-devices must be a non-negative whole number");
  });
});

describe("jitr explain, approve, deprovision, history", () => {
  it("walks a device from quarantine to provisioned to deprovisioned", async () => {
    // Prepare
    const { api, server, deps, iot, clock } = await served();
    const issued = await issueCertificate(await testCa(), { subject: { CN: "walker" } });
    const certificateId = certificateIdOf(issued.certificatePem);
    iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
    await provision(eventFor(certificateId), deps);
    await jitr("allowlist", "put", "walker", ...api);
    await jitr("mappings", "put", "default", "--template", "sensor", ...api);
    clock.set(new Date(clock.now().getTime() + 1000));
    const pem = join(dir, "walker.pem");
    await writeFile(pem, issued.certificatePem);

    // Act
    const explained = await jitr("explain", "--cert", pem, ...api);
    const approved = await jitr("approve", "walker", "--json", ...api);
    clock.set(new Date(clock.now().getTime() + 1000));
    const deprovisioned = await jitr("deprovision", "walker", "--json", "--yes", ...api);
    const history = await jitr("history", "walker", "--json", ...api);
    const again = await jitr("approve", "walker", ...api);
    await server.close();

    // Assess
    expect(explained.status).toBe(0);
    expect(explained.stdout).toContain("allow");
    expect(explained.stdout).toContain("jitr-sensor");
    expect(explained.stdout).toContain("policy document:");
    expect(JSON.parse(approved.stdout)).toMatchObject({ outcome: "provisioned", certificateId });
    expect(JSON.parse(deprovisioned.stdout)).toMatchObject({ revoked: true, thingDeleted: true });
    const kinds = JSON.parse(history.stdout).items.map((e: { kind: string }) => e.kind);
    expect(kinds.slice(0, 2)).toEqual(["admin", "provisioned"]);
    expect(kinds).toContain("denied");
    expect(again.status).toBe(1);
    expect(again.stderr).toContain("no quarantined (INACTIVE) certificate");
  });

  it("exits 1 when approval still denies", async () => {
    // Prepare
    const { api, server, deps, iot } = await served();
    const issued = await issueCertificate(await testCa(), { subject: { CN: "stranger" } });
    const certificateId = certificateIdOf(issued.certificatePem);
    iot.addCertificate(certificateId, issued.certificatePem, CA_ID);
    await provision(eventFor(certificateId), deps);

    // Act
    const approved = await jitr("approve", "stranger", ...api);
    await server.close();

    // Assess
    expect(approved.status).toBe(1);
    expect(approved.stderr).toContain("not provisioned: not-allowlisted");
  });
});

describe("finding the API", () => {
  it("reads the address and token file from <data>/endpoints.json", async () => {
    // Prepare
    const { server } = await served();
    const data = await mkdtemp(join(dir, "data-"));
    await writeFile(join(data, "admin-token"), `${TOKEN}\n`);
    await writeFile(
      join(data, "endpoints.json"),
      JSON.stringify({ adminApi: server.url, adminTokenFile: join(data, "admin-token") }),
    );

    // Act
    const listed = await jitr("allowlist", "list", "--data", data, "--json");
    await server.close();

    // Assess
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({ items: [] });
  });

  it("exits 1 with the server's message for a wrong token, and says how to find an API when there is none", async () => {
    // Prepare
    const { server } = await served();

    // Act
    const wrong = await jitr("allowlist", "list", "--api", server.url, "--token", "nope");
    const none = await jitr("allowlist", "list", "--data", join(dir, "missing"));
    await server.close();

    // Assess
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain("missing or wrong bearer token");
    expect(none.status).toBe(1);
    expect(none.stderr).toContain("no admin API: pass --api URL");
  });

  it("signs with SigV4 for execute-api when an API is given without a token", async () => {
    // Prepare
    let seen: IncomingHttpHeaders = {};
    const fake = createServer((req, res) => {
      seen = req.headers;
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"items":[]}');
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const { port } = fake.address() as AddressInfo;
    vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "example-secret");
    vi.stubEnv("AWS_REGION", "eu-west-1");

    // Act
    const listed = await jitr(
      "allowlist",
      "list",
      "--api",
      `http://127.0.0.1:${port}`,
      "--data",
      join(dir, "none"),
      "--json",
    );
    vi.unstubAllEnvs();
    await new Promise<void>((resolve) => fake.close(() => resolve()));

    // Assess
    expect(listed.status).toBe(0);
    expect(seen.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request/,
    );
    expect(seen["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it.each([
    ["allowlist", "put"],
    ["allowlist", "get"],
    ["allowlist", "list"],
    ["allowlist", "remove"],
    ["allowlist", "import"],
    ["allowlist", "export"],
    ["mappings", "put"],
    ["mappings", "get"],
    ["mappings", "list"],
    ["mappings", "remove"],
    ["lots", "put"],
    ["lots", "get"],
    ["lots", "list"],
    ["explain"],
    ["approve"],
    ["deprovision"],
    ["block"],
    ["history"],
  ])("prints help for %s %s", async (...command) => {
    // Prepare
    const args = command.filter((c): c is string => typeof c === "string");

    // Act
    const help = await jitr(...args, "--help");

    // Assess
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--api <url>");
    expect(help.stdout).toContain("--json");
  });
});

describe("jitr reconcile and block against an API that runs no jobs", () => {
  it("reconcile goes slice by slice through POST /reconcile; a block of many says the deployment runs no jobs", async () => {
    // Prepare: an admin server without the jobs' table, queue and bucket
    const { server, api } = await served();
    try {
      // Act
      const reconciled = await jitr("reconcile", "--dry-run", "--json", ...api);
      const blocked = await jitr("block", "dev-1", "dev-2", "--yes", ...api);

      // Assess
      expect(reconciled.status).toBe(0);
      const run = JSON.parse(reconciled.stdout) as Record<string, unknown>;
      expect(run).toMatchObject({ dryRun: true, examined: 0, devices: [] });
      expect(run.job).toBeUndefined();
      expect(blocked.status).not.toBe(0);
      expect(blocked.stderr).toContain("this deployment runs no jobs");
    } finally {
      await server.close();
    }
  });
});
