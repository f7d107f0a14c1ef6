import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { readCertificate } from "../../domain/certificate.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();

const jitr = (...args: string[]) => main(["node", "jitr", ...args]);
/** The command's JSON output. */
const json = <T>(): T => JSON.parse(output.stdout()) as T;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jitr-cli-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe("jitr ca and device commands", () => {
  it("creates a CA and a device certificate signed by it, keys readable by the owner only", async () => {
    expect(await jitr("ca", "create", "--out", join(dir, "ca"), "--json")).toBe(0);
    const ca = JSON.parse(output.stdout()) as { certificateId: string };
    expect(ca.certificateId).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(dir, "ca", "ca.key"))).mode & 0o777).toBe(0o600);
    output.reset();
    const code = await jitr(
      "device",
      "create",
      "--ca",
      join(dir, "ca"),
      "--id",
      "dev-7",
      "--serial-number",
      "SN7",
      "--out",
      join(dir, "d"),
      "--json",
    );
    expect(code).toBe(0);
    const created = JSON.parse(output.stdout()) as { certificate: string; key: string };
    const facts = readCertificate(await readFile(created.certificate, "utf8"));
    expect(facts.commonName).toBe("dev-7");
    expect(facts.serialNumber).toBe("SN7");
    expect(facts.issuer).toContain("JITR Fleet CA");
    expect((await stat(created.key)).mode & 0o777).toBe(0o600);
  });

  it.each([
    [
      ["device", "create", "--ca", "nowhere", "--id", "dev-1", "--out", "x"],
      /cannot load the CA from nowhere/,
    ],
    [["device", "create", "--ca", "nowhere", "--id", "bad id", "--out", "x"], /not a valid thing name/],
    [["ca", "create", "--out", "x", "--days", "-3"], /--days must be a whole number/],
    [["device", "connect", "--cert", "missing.pem", "--key", "missing.key"], /ENOENT|no such file/],
    [["simulate", "--data", "/nonexistent"], /start the local stack with `jitr local`/],
  ])("fails with a clear message and status 1: %j", async (args, message) => {
    expect(await jitr(...args)).toBe(1);
    expect(output.stderr()).toMatch(message);
  });
});

describe("jitr simulate and jitr device connect against a running stack", () => {
  let t: Awaited<ReturnType<typeof startTestStack>>;
  beforeAll(async () => {
    t = await startTestStack();
  });
  afterAll(async () => t.close());

  it("simulate runs a fleet and exits 0 when every device ended as expected", async () => {
    const code = await jitr(
      "simulate",
      "--data",
      t.dataDir,
      "--devices",
      "6",
      "--concurrency",
      "6",
      "--json",
    );
    const summary = json<{ allAsExpected: boolean; outcomes: { kind: string; actual: string }[] }>();
    expect(code).toBe(0);
    expect(summary.allAsExpected).toBe(true);
    expect(summary.outcomes.map((o) => `${o.kind}:${o.actual}`).sort()).toEqual([
      "allowlisted:provisioned",
      "allowlisted:provisioned",
      "allowlisted:provisioned",
      "blocked:revoked",
      "clone:revoked",
      "unknown:quarantined",
    ]);
  });

  it("device connect retries through provisioning, then publishes", async () => {
    await t.allow("cli-dev");
    await t.map({ selector: "default", policy: { template: "sensor" } });
    const device = await t.device("cli-dev");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, "cli-dev.pem"), device.certificatePem);
    await writeFile(join(dir, "cli-dev.key"), device.privateKeyPem);
    const code = await jitr(
      "device",
      "connect",
      "--cert",
      join(dir, "cli-dev.pem"),
      "--key",
      join(dir, "cli-dev.key"),
      "--data",
      t.dataDir,
      "--json",
    );
    expect(code).toBe(0);
    expect(json()).toMatchObject({ clientId: "cli-dev", published: true });
    expect(json<{ attempts: number }>().attempts).toBeGreaterThanOrEqual(2);
  });
});
