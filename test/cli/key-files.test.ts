import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";

const output = captureOutput();
const jitr = (...args: string[]) => main(["node", "jitr", ...args]);
const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jitr-keys-"));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

describe("where ca create and device create keep keys", () => {
  it("writes the CA and device keys under the state directory by default, owner-only", async () => {
    // Prepare
    const state = join(dir, "default-state");
    vi.stubEnv("JITR_DATA", state);

    // Act
    const ca = await jitr("ca", "create", "--json");
    const device = await jitr("device", "create", "--id", "dev-1", "--json");

    // Assess
    expect([ca, device], output.stderr()).toEqual([0, 0]);
    expect(await modeOf(join(state, "ca", "ca.key"))).toBe(0o600);
    expect(await modeOf(join(state, "ca"))).toBe(0o700);
    expect(await modeOf(join(state, "devices", "dev-1.key.pem"))).toBe(0o600);
    expect(await modeOf(join(state, "devices"))).toBe(0o700);
    expect(await readFile(join(state, "devices", "dev-1.cert.pem"), "utf8")).toContain("BEGIN CERTIFICATE");
  });

  it("refuses to replace an existing CA or device key without --force, changing nothing", async () => {
    // Prepare
    const state = join(dir, "no-overwrite");
    vi.stubEnv("JITR_DATA", state);
    expect(await jitr("ca", "create")).toBe(0);
    expect(await jitr("device", "create", "--id", "dev-2")).toBe(0);
    const caKey = await readFile(join(state, "ca", "ca.key"), "utf8");
    const deviceKey = await readFile(join(state, "devices", "dev-2.key.pem"), "utf8");
    output.reset();

    // Act
    const caAgain = await jitr("ca", "create");
    const deviceAgain = await jitr("device", "create", "--id", "dev-2");

    // Assess
    expect([caAgain, deviceAgain]).toEqual([1, 1]);
    expect(output.stderr()).toMatch(/ca\.key.*already exist.*--force/s);
    expect(output.stderr()).toMatch(/dev-2\.key\.pem.*already exist.*--force/s);
    expect(await readFile(join(state, "ca", "ca.key"), "utf8")).toBe(caKey);
    expect(await readFile(join(state, "devices", "dev-2.key.pem"), "utf8")).toBe(deviceKey);
  });

  it("with --force, replaces a key file that others could read by an owner-only one", async () => {
    // Prepare
    const state = join(dir, "force");
    vi.stubEnv("JITR_DATA", state);
    expect(await jitr("ca", "create")).toBe(0);
    expect(await jitr("device", "create", "--id", "dev-3")).toBe(0);
    const keyFile = join(state, "devices", "dev-3.key.pem");
    const before = await readFile(keyFile, "utf8");
    await chmod(keyFile, 0o644);

    // Act
    const code = await jitr("device", "create", "--id", "dev-3", "--force");

    // Assess
    expect(code).toBe(0);
    expect(await modeOf(keyFile)).toBe(0o600);
    expect(await readFile(keyFile, "utf8")).not.toBe(before);
  });
});
