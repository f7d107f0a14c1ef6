/**
 * Which code `bin/jitr.js` runs: an installed package its build (dist/); a clone its build only while the
 * build is newer than every source it compiles, else the sources through tsx, so a clone never runs stale code.
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const HOUR_AGO = new Date(Date.now() - 3_600_000);
const NOW = new Date();

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A package folder with the real bin/jitr.js, a build that says "dist" and (optionally) sources that say "sources". */
function packageFolder(opts: { sources: boolean; built: boolean }): string {
  const folder = mkdtempSync(join(tmpdir(), "jitr-bin-"));
  folders.push(folder);
  const write = (path: string, text: string, at: Date) => {
    mkdirSync(dirname(join(folder, path)), { recursive: true });
    writeFileSync(join(folder, path), text);
    utimesSync(join(folder, path), at, at);
  };
  mkdirSync(join(folder, "bin"));
  copyFileSync(join(root, "bin", "jitr.js"), join(folder, "bin", "jitr.js"));
  symlinkSync(join(root, "node_modules"), join(folder, "node_modules"));
  write("package.json", '{ "type": "module" }\n', HOUR_AGO);
  write(
    "dist/cli/main.js",
    'export const main = async () => { process.stdout.write("dist\\n"); return 0; };\n',
    NOW,
  );
  if (opts.built) write("dist/.built", "built\n", NOW);
  if (opts.sources) {
    write("tsconfig.json", "{}\n", HOUR_AGO);
    write("tsconfig.build.json", '{ "include": ["cli"] }\n', HOUR_AGO);
    write(
      "cli/main.ts",
      'export const main = async (): Promise<number> => { process.stdout.write("sources\\n"); return 0; };\n',
      HOUR_AGO,
    );
    write("cli/commands/ca.ts", "export {};\n", HOUR_AGO);
  }
  return folder;
}

/** What `jitr` in `folder` ran: "dist" or "sources". */
function ran(folder: string): string {
  const result = spawnSync(process.execPath, [join(folder, "bin", "jitr.js")], {
    cwd: folder,
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.trim();
}

const touch = (path: string) => utimesSync(path, NOW, new Date(Date.now() + 1000));

describe("bin/jitr.js", () => {
  it("runs the build of an installed package (no sources beside it)", () => {
    // Prepare
    const folder = packageFolder({ sources: false, built: false });

    // Act, Assess
    expect(ran(folder)).toBe("dist");
  });

  it("in a clone, runs the build while it is newer than every source", () => {
    // Prepare
    const folder = packageFolder({ sources: true, built: true });

    // Act, Assess
    expect(ran(folder)).toBe("dist");
  });

  it("in a clone, runs the sources once one of them, however deep, changed after the build", () => {
    // Prepare
    const folder = packageFolder({ sources: true, built: true });
    touch(join(folder, "cli", "commands", "ca.ts"));

    // Act, Assess
    expect(ran(folder)).toBe("sources");
  });

  it("in a clone, runs the sources when the build configuration changed after the build", () => {
    // Prepare
    const folder = packageFolder({ sources: true, built: true });
    touch(join(folder, "tsconfig.build.json"));

    // Act, Assess
    expect(ran(folder)).toBe("sources");
  });

  it("in a clone, runs the sources when no build was completed", () => {
    // Prepare
    const folder = packageFolder({ sources: true, built: false });

    // Act, Assess
    expect(ran(folder)).toBe("sources");
  });
});
