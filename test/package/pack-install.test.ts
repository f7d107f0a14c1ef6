/**
 * The package as an admin gets it: `npm pack` (which builds dist/), the tarball installed into an empty
 * folder with `--omit=dev`, and `jitr` run from there: no TypeScript, no tsx, no sources.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signInThrough, startConsoleProcess, stopProcess } from "../support/console-process.ts";

const root = join(import.meta.dirname, "..", "..");
const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const freePorts = ["--aws-port", "0", "--admin-port", "0", "--mqtt-port", "0"];

/** The environment of every command here: no JITR_* setting of the machine leaks in. */
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("JITR_"))),
  CI: "true",
};

const children = new Set<ChildProcess>();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`); resolves with its status and output. */
function run(command: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `jitr local` in the background; resolves once it prints that it is ready. */
function startLocal(jitr: string, cwd: string, data: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(jitr, ["local", "--data", data, ...freePorts], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let output = "";
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes("jitr local ready\n")) resolve(child);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    child.on("close", (code) => {
      children.delete(child);
      reject(new Error(`jitr local ended (${code}) before it was ready:\n${output}`));
    });
  });
}

/** Every file under `dir`, as paths relative to it. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((path) =>
    statSync(join(dir, path)).isFile(),
  );

let work: string;
let tarballFiles: string[];
let unpacked: string;
let app: string;
let jitr: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "jitr-package-"));
  const pack = await run("npm", ["pack", "--json", "--pack-destination", work], root, 480_000);
  expect(pack.code, pack.stderr).toBe(0);
  const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  if (packed === undefined) throw new Error(`npm pack reported no tarball: ${pack.stdout}`);
  tarballFiles = packed.files.map((f) => f.path);
  const tarball = join(work, packed.filename);

  unpacked = join(work, "unpacked");
  mkdirSync(unpacked);
  const untar = await run("tar", ["-xzf", tarball, "-C", unpacked], work);
  expect(untar.code, untar.stderr).toBe(0);

  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), '{ "name": "jitr-install-check", "private": true }\n');
  const install = await run(
    "npm",
    ["install", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", "--no-save", tarball],
    app,
    480_000,
  );
  expect(install.code, install.stderr).toBe(0);
  jitr = join(app, "node_modules", ".bin", "jitr");
}, 900_000);

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed and installed jitr package", () => {
  it("carries the built CLI and no key, state, test or TypeScript source", () => {
    // Act
    const files = filesUnder(join(unpacked, "package"));

    // Assess
    expect(files.sort()).toEqual([...tarballFiles].sort());
    expect(files).toEqual(expect.arrayContaining(["bin/jitr.js", "dist/cli/main.js", "package.json"]));
    const forbidden = files.filter(
      (path) =>
        /(^|\/)\.jitr\//.test(path) ||
        /^test\//.test(path) ||
        /\.(key|tgz)$|[.-]key\.pem$/.test(path) ||
        (/\.ts$/.test(path) && !/\.d\.ts$/.test(path)),
    );
    expect(forbidden).toEqual([]);
    const privateKeys = files.filter((path) =>
      readFileSync(join(unpacked, "package", path), "utf8").includes("PRIVATE KEY-----"),
    );
    expect(privateKeys).toEqual([]);
  });

  it("installs without devDependencies: no TypeScript, tsx or test runner beside it", () => {
    // Act
    const installed = readdirSync(join(app, "node_modules"));

    // Assess
    expect(installed).toContain("jitr");
    expect(installed.filter((name) => ["tsx", "typescript", "vitest", "@biomejs"].includes(name))).toEqual(
      [],
    );
    expect(relative(app, jitr)).toBe(join("node_modules", ".bin", "jitr"));
  });

  it("prints its version and its help", async () => {
    // Act
    const version = await run(jitr, ["--version"], app);
    const help = await run(jitr, ["--help"], app);

    // Assess
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(packageJson.version);
    expect(help.code, help.stderr).toBe(0);
    for (const command of ["ca", "device", "allowlist", "mappings", "local", "completion"]) {
      expect(help.stdout).toContain(`  ${command}`);
    }
  });

  it("runs the local stack with a demo fleet and exits 0 when every device ended as expected", async () => {
    // Prepare
    const data = join(work, "demo-state");

    // Act
    const demo = await run(jitr, ["local", "--data", data, "--devices", "5", "--exit", ...freePorts], app);

    // Assess
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain("every device ended as expected");
  }, 240_000);

  it("runs admin commands against a running local stack", async () => {
    // Prepare
    const data = join(work, "admin-state");
    const local = await startLocal(jitr, app, data);
    const stopped = new Promise((resolve) => local.once("close", resolve));

    try {
      // Act
      const put = await run(
        jitr,
        ["allowlist", "put", "pkg-dev-1", "--status", "allowed", "--data", data],
        app,
      );
      const list = await run(jitr, ["allowlist", "list", "--json", "--data", data], app);

      // Assess
      expect(put.code, put.stderr).toBe(0);
      expect(list.code, list.stderr).toBe(0);
      const page = JSON.parse(list.stdout) as { items: { deviceId: string; status: string }[] };
      expect(page.items).toEqual([expect.objectContaining({ deviceId: "pkg-dev-1", status: "allowed" })]);
    } finally {
      local.kill("SIGTERM");
      await stopped;
    }
  }, 240_000);

  it("serves the admin console with the page script built into the package (no esbuild installed)", async () => {
    // Prepare
    const data = join(work, "console-state");
    const local = await startLocal(jitr, app, data);
    const stopped = new Promise((resolve) => local.once("close", resolve));

    try {
      // Act
      const served = await startConsoleProcess(jitr, ["--data", data], { cwd: app, env });
      let seen: Awaited<ReturnType<typeof signInThrough>>;
      try {
        seen = await signInThrough(served.openUrl);
      } finally {
        await stopProcess(served.child);
      }

      // Assess
      expect(tarballFiles).toContain("dist/console/app.js");
      expect(readdirSync(join(app, "node_modules")).includes("esbuild")).toBe(false);
      expect(served.output()).toContain("page script built with the package");
      expect(seen.script.status).toBe(200);
      expect(seen.script.text).toBe(
        readFileSync(join(unpacked, "package", "dist", "console", "app.js"), "utf8"),
      );
      expect(seen.api).toEqual({ status: 200, json: expect.objectContaining({ items: [] }) });
    } finally {
      local.kill("SIGTERM");
      await stopped;
    }
  }, 240_000);
});
