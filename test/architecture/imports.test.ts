import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

const importsOf = (file: string): string[] =>
  [
    ...readFileSync(join(root, file), "utf8").matchAll(
      /(?:import|export)[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
    ),
  ].map((m) => m[1] ?? m[2] ?? "");

const resolvesInto = (file: string, spec: string, dir: string): boolean =>
  spec.startsWith(".") && relative(root, join(root, file, "..", spec)).split(/[\\/]/)[0] === dir;

/** The repository path a relative import points at (`cli/ca.ts`), or undefined for a package import. */
const target = (file: string, spec: string): string | undefined =>
  spec.startsWith(".")
    ? relative(root, join(root, file, "..", spec))
        .split(/[\\/]/)
        .join("/")
    : undefined;

/** Imports that load code at run time: `import type` and `export type` are erased. */
const runtimeImportsOf = (file: string): string[] =>
  [
    ...readFileSync(join(root, file), "utf8").matchAll(
      /(?:import|export)(?!\s+type\s)[^"']*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|^import\s*["']([^"']+)["']/gm,
    ),
  ].map((m) => m[1] ?? m[2] ?? m[3] ?? "");

/** What `jitr local` promises its clients; the CLI may read it without loading the emulator. */
const LOCAL_CONTRACT = "local/contract.ts";
/** The one CLI command that starts the local stack. */
const LOCAL_COMMAND = "cli/commands/local.ts";

/** `file -> spec` for each import of `file` (in `dirs`) that `offends`. */
const offendersIn = (dirs: string[], offends: (file: string, spec: string) => boolean): string[] =>
  dirs.flatMap((dir) =>
    sources(dir).flatMap((file) =>
      importsOf(file)
        .filter((spec) => offends(file, spec))
        .map((spec) => `${file} -> ${spec}`),
    ),
  );

/** True when `file` imports from `local/` something other than the contract, and is not the local command. */
const reachesIntoLocal = (file: string, spec: string): boolean =>
  file !== LOCAL_COMMAND && resolvesInto(file, spec, "local") && target(file, spec) !== LOCAL_CONTRACT;

/**
 * True when the import names a CLI command file from outside `cli/main.ts`; the files of one command
 * group (a folder such as `cli/commands/admin/`) may import each other.
 */
const importsCommandFile = (file: string, spec: string): boolean => {
  const imported = target(file, spec);
  if (file === "cli/main.ts" || imported === undefined || !imported.startsWith("cli/commands/")) return false;
  const folderOf = (path: string) => path.slice(0, path.lastIndexOf("/"));
  const group = folderOf(file);
  return !(group.startsWith("cli/commands/") && folderOf(imported) === group);
};

describe("module boundaries", () => {
  it("domain/ imports nothing from handlers/, adapters/, local/, cli/, api/, the AWS SDK or Lambda types", () => {
    const offenders = sources("domain").flatMap((file) =>
      importsOf(file)
        .filter(
          (spec) =>
            spec.startsWith("@aws-sdk/") ||
            spec.startsWith("@aws-lambda-powertools/") ||
            spec === "aws-lambda" ||
            ["handlers", "adapters", "local", "cli", "api"].some((dir) => resolvesInto(file, spec, dir)),
        )
        .map((spec) => `${file} -> ${spec}`),
    );
    expect(offenders).toEqual([]);
  });

  it("handlers/, adapters/, domain/ and policies/ never import local/ (the deployed bundle carries no emulator)", () => {
    const offenders = ["handlers", "adapters", "domain", "policies"].flatMap((dir) =>
      sources(dir).flatMap((file) =>
        importsOf(file)
          .filter((spec) => resolvesInto(file, spec, "local"))
          .map((spec) => `${file} -> ${spec}`),
      ),
    );
    expect(offenders).toEqual([]);
  });

  it("local/ never imports cli/ (the CLI starts the stack, never the other way round)", () => {
    expect(offendersIn(["local"], (file, spec) => resolvesInto(file, spec, "cli"))).toEqual([]);
  });

  it("in cli/, only the local command imports local/, apart from the local contract", () => {
    expect(offendersIn(["cli"], reachesIntoLocal)).toEqual([]);
  });

  it("the local contract loads nothing at run time but Node built-ins (no emulator, broker or database)", () => {
    const offenders = runtimeImportsOf(LOCAL_CONTRACT).filter((spec) => !spec.startsWith("node:"));
    expect(offenders).toEqual([]);
  });

  it("pki/ imports nothing from cli/, local/, handlers/ or adapters/", () => {
    const offenders = offendersIn(["pki"], (file, spec) =>
      ["cli", "local", "handlers", "adapters"].some((dir) => resolvesInto(file, spec, dir)),
    );
    expect(offenders).toEqual([]);
  });

  it("no module imports a CLI command file (only cli/main.ts registers them)", () => {
    const dirs = [
      "cli",
      "local",
      "pki",
      "bench",
      "scripts",
      "domain",
      "handlers",
      "adapters",
      "policies",
      "test",
    ];
    expect(offendersIn(dirs, importsCommandFile)).toEqual([]);
  });

  it("the check sees imports (it would catch one)", () => {
    expect(resolvesInto("domain/x.ts", "../local/aws/index.ts", "local")).toBe(true);
    expect(importsOf("handlers/wiring.ts")).toContain("../adapters/dynamo/table.ts");
  });

  it("the boundary rules would catch an offender", () => {
    // Prepare: imports that cross each boundary, and ones that keep to it
    const crossing = {
      localIntoCli: resolvesInto("local/stack.ts", "../cli/demo.ts", "cli"),
      cliIntoLocal: reachesIntoLocal("cli/demo.ts", "../local/stack.ts"),
      commandIntoLocal: reachesIntoLocal("cli/commands/simulate.ts", "../../local/aws/index.ts"),
      pkiIntoCli: resolvesInto("pki/certificates.ts", "../cli/output.ts", "cli"),
      libraryIntoCommand: importsCommandFile("cli/demo.ts", "./commands/ca.ts"),
      commandIntoOtherCommand: importsCommandFile("cli/commands/admin/lots.ts", "../ca.ts"),
    };
    const keeping = {
      cliIntoContract: reachesIntoLocal("cli/commands/simulate.ts", "../../local/contract.ts"),
      localCommandIntoStack: reachesIntoLocal(LOCAL_COMMAND, "../../local/stack.ts"),
      mainIntoCommand: importsCommandFile("cli/main.ts", "./commands/ca.ts"),
      groupIntoSibling: importsCommandFile("cli/commands/admin/index.ts", "./allowlist.ts"),
    };

    // Act: read the imports of the files these rules guard
    const contractImports = runtimeImportsOf(LOCAL_CONTRACT);
    const commandImports = importsOf(LOCAL_COMMAND);

    // Assess
    expect(crossing).toEqual({
      localIntoCli: true,
      cliIntoLocal: true,
      commandIntoLocal: true,
      pkiIntoCli: true,
      libraryIntoCommand: true,
      commandIntoOtherCommand: true,
    });
    expect(keeping).toEqual({
      cliIntoContract: false,
      localCommandIntoStack: false,
      mainIntoCommand: false,
      groupIntoSibling: false,
    });
    expect(contractImports).toContain("node:fs");
    expect(contractImports).not.toContain("../adapters/tables.ts");
    expect(commandImports).toContain("../../local/stack.ts");
  });
});
