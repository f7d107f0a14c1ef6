/*
 * `jitr console` from a clone (bin/jitr.js: its sources through tsx, the page script bundled on demand by
 * esbuild; or dist/ when freshly built): the address printed once, the API proxied with the bearer token.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signInThrough, startConsoleProcess, stopProcess } from "../support/console-process.ts";
import { startTestStack } from "../support/local-stack.ts";

const root = join(import.meta.dirname, "..", "..");
let t: Awaited<ReturnType<typeof startTestStack>>;

beforeAll(async () => {
  t = await startTestStack();
  await t.allow("cmd-dev-1");
});

afterAll(async () => {
  await t?.close();
});

describe("jitr console (sources)", () => {
  it("serves the console on 127.0.0.1 and proxies with the admin token; the printed address works once", async () => {
    // Prepare
    const env = { ...process.env, JITR_ADMIN_TOKEN: t.stack.adminToken };
    const { child, openUrl, output } = await startConsoleProcess(
      join(root, "bin", "jitr.js"),
      ["--api", t.stack.endpoints.adminApi],
      { cwd: root, env },
    );

    try {
      // Act
      const seen = await signInThrough(openUrl);

      // Assess
      expect(output()).toMatch(/page script (bundled from the sources|built with the package)/);
      expect(seen.exchange).toBe(303);
      expect(seen.location).toBe("/");
      expect(seen.script.status).toBe(200);
      expect(seen.script.type).toContain("javascript");
      expect(seen.script.text.length).toBeGreaterThan(1000);
      expect(seen.api.status).toBe(200);
      expect(seen.api.json).toMatchObject({ items: [expect.objectContaining({ deviceId: "cmd-dev-1" })] });
      expect(seen.again).toBe(403);
    } finally {
      expect(await stopProcess(child)).toBe(0);
    }
  }, 60_000);

  it("refuses a port that is not a port, and an --api that is not a URL, with a clear message", () => {
    // Act
    const badPort = spawnSync(join(root, "bin", "jitr.js"), ["console", "--no-open", "--port", "http"], {
      encoding: "utf8",
    });
    const badApi = spawnSync(join(root, "bin", "jitr.js"), ["console", "--no-open", "--api", "not a url"], {
      encoding: "utf8",
    });

    // Assess
    expect(badPort.status).toBe(1);
    expect(badPort.stderr).toContain('--port must be a port number; got "http"');
    expect(badApi.status).toBe(1);
    expect(badApi.stderr).toContain("--api is not a URL: not a url");
  }, 60_000);
});
