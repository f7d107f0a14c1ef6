/** Help and errors of the `jitr` command: subcommand help, JSON errors, one message, short typo hints, wrapped tables. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../cli/main.ts";
import { fitColumns, printRows } from "../../cli/output.ts";
import { captureOutput } from "../support/capture.ts";

const output = captureOutput();
const jitr = (...args: string[]) => main(["node", "jitr", ...args]);

/** An admin API that answers every request with one field at fault, as the server's validation does. */
let api: Server;
let url: string;
beforeAll(async () => {
  api = createServer((_request, response) => {
    response.writeHead(400, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        error: {
          code: "ValidationError",
          message: "status: must be allowed or blocked",
          details: [{ path: "status", message: "must be allowed or blocked" }],
        },
      }),
    );
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(async () => new Promise<void>((resolve) => api.close(() => resolve())));
afterEach(() => vi.unstubAllEnvs());

describe("jitr help and errors", () => {
  it("jitr help <command> <subcommand> shows the subcommand's help, not its parent's", async () => {
    // Act
    const status = await jitr("help", "allowlist", "put");

    // Assess
    expect(status).toBe(0);
    expect(output.stdout()).toMatch(/^Usage: jitr allowlist put \[options\] <deviceId>/);
    expect(output.stdout()).toContain("--status");
  });

  it("a typo prints a short 'did you mean' and a hint, not the whole help", async () => {
    // Act
    const status = await jitr("allowlst");

    // Assess
    expect(status).toBe(1);
    expect(output.stderr()).toContain("unknown command 'allowlst'");
    expect(output.stderr()).toContain("Did you mean allowlist?");
    expect(output.stderr()).toContain("--help");
    expect(output.stderr()).not.toContain("Usage:");
    expect(output.stdout()).toBe("");
  });

  it("an invalid option value is reported once, without the help after it", async () => {
    // Act
    const status = await jitr("allowlist", "put", "dev-1", "--status", "maybe");

    // Assess
    expect(status).toBe(1);
    expect(output.stderr().match(/allowed, blocked/g)).toHaveLength(1);
    expect(output.stderr()).not.toContain("Usage:");
  });

  it("a field the API refuses is printed once", async () => {
    // Act
    const status = await jitr("allowlist", "get", "dev-1", "--api", url, "--token", "t");

    // Assess
    expect(status).toBe(1);
    expect(output.stderr()).toBe("jitr: status: must be allowed or blocked\n");
  });

  it("under --json every error is one JSON error body on stderr, with a non-zero status", async () => {
    // Act
    const apiStatus = await jitr("allowlist", "get", "dev-1", "--api", url, "--token", "t", "--json");
    const apiError = output.stderr();
    output.reset();
    const usageStatus = await jitr("allowlist", "put", "dev-1", "--status", "maybe", "--json");
    const usageError = output.stderr();
    output.reset();
    const cliStatus = await jitr("approve", "--json", "--api", url, "--token", "t");
    const cliError = output.stderr();

    // Assess
    expect(apiStatus).toBe(1);
    expect(JSON.parse(apiError)).toEqual({
      error: {
        code: "ValidationError",
        message: "status: must be allowed or blocked",
        details: [{ path: "status", message: "must be allowed or blocked" }],
      },
    });
    expect(usageStatus).toBe(1);
    expect(JSON.parse(usageError)).toMatchObject({
      error: { code: "Usage.invalidArgument", message: expect.stringContaining("'maybe' is invalid") },
    });
    expect(cliStatus).toBe(1);
    expect(JSON.parse(cliError)).toEqual({
      error: { code: "Error", message: "give a device id or --all-ready, not both" },
    });
  });

  it("wraps a wide table to the terminal's width, keeping every character", () => {
    // Prepare
    vi.stubEnv("JITR_COLUMNS", "60");
    const id = "a".repeat(64);

    // Act
    printRows(
      [{ deviceId: "dev-1", certificateId: id, note: "short" }],
      ["deviceId", "certificateId", "note"],
      false,
    );

    // Assess
    const lines = output.stdout().trimEnd().split("\n");
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(60);
    expect(output.stdout().replace(/[^a]/g, "").length).toBeGreaterThanOrEqual(64);
    expect(output.stdout()).toContain("dev-1");
  });

  it("leaves a table that fits as it is", () => {
    // Act
    const widths = fitColumns([5, 10], 80);

    // Assess
    expect(widths).toBeUndefined();
  });
});
