import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = join(import.meta.dirname, "..", "..", "bin", "jitr.js");
const freePorts = ["--aws-port", "0", "--admin-port", "0", "--mqtt-port", "0"];

/** Runs `jitr` as a user does; resolves with its exit status and output. */
function run(args: string[], opts: { untilReady?: (child: ReturnType<typeof spawn>) => void } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CI: "true" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      if (opts.untilReady && stdout.includes("jitr local ready\n")) {
        const fn = opts.untilReady;
        opts.untilReady = undefined;
        fn(child);
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let data: string;
beforeAll(async () => {
  data = await mkdtemp(join(tmpdir(), "jitr-local-"));
});
afterAll(async () => rm(data, { recursive: true, force: true }));

describe("jitr local", () => {
  it("runs a demo fleet and exits 0 when every device ended as expected, writing endpoints.json", async () => {
    const result = await run(["local", "--data", data, "--devices", "8", "--exit", ...freePorts]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("jitr local ready");
    expect(result.stdout).toMatch(/allowlisted\s*│\s*5\s*│\s*provisioned\s*│\s*provisioned/);
    expect(result.stdout).toMatch(
      /unknown\s*│\s*1\s*│\s*quarantined\s*│\s*quarantined\s*│\s*not-allowlisted/,
    );
    expect(result.stdout).toMatch(/blocked\s*│\s*1\s*│\s*revoked\s*│\s*revoked\s*│\s*blocked/);
    expect(result.stdout).toMatch(/clone\s*│\s*1\s*│\s*revoked\s*│\s*revoked\s*│\s*already-provisioned/);
    expect(result.stdout).toMatch(/p50 \d+ ms, p95 \d+ ms, max \d+ ms/);
    expect(result.stdout).toContain("every device ended as expected");
    const endpoints = JSON.parse(await readFile(join(data, "endpoints.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(Object.keys(endpoints).sort()).toEqual(
      [
        "accountId",
        "adminApi",
        "adminTokenFile",
        "awsEndpoint",
        "gatewayCaFile",
        "mqttHost",
        "mqttPort",
        "region",
      ].sort(),
    );
  });

  it("keeps state across a restart under --data: provisioned devices get straight in", async () => {
    const result = await run(["local", "--data", data, "--devices", "8", "--exit", "--json", ...freePorts]);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.slice(result.stdout.indexOf("{"))) as {
      outcomes: { kind: string; attempts: number; actual: string }[];
    };
    const allowlisted = summary.outcomes.filter((o) => o.kind === "allowlisted");
    expect(allowlisted).toHaveLength(5);
    expect(allowlisted.every((o) => o.actual === "provisioned" && o.attempts === 1)).toBe(true);
  });

  it("explains a port that is taken, and exits 1", async () => {
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as { port: number }).port;
    const result = await run([
      "local",
      "--data",
      data,
      "--aws-port",
      String(taken),
      "--admin-port",
      "0",
      "--mqtt-port",
      "0",
    ]);
    blocker.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`127.0.0.1:${taken}`);
    expect(result.stderr).toContain("--aws-port");
  });

  it("shuts down cleanly on SIGTERM", async () => {
    const result = await run(["local", "--data", data, ...freePorts], {
      untilReady: (child) => child.kill("SIGTERM"),
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("jitr local ready");
  });
});
