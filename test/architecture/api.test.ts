/** api/ runs in a browser too: no Node module, nothing of the server or the CLI, the domain's types only. */

import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const FORBIDDEN_DIRS = ["cli", "local", "handlers", "adapters"];

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

interface Import {
  spec: string;
  /** `import type` / `export type`: erased, so nothing of the module is loaded. */
  typeOnly: boolean;
}

/** The imports of a source text: static (with whether they are type-only), side-effect and dynamic ones. */
function importsOf(text: string): Import[] {
  const found: Import[] = [];
  for (const m of text.matchAll(/\b(import|export)\s+(type\s+)?[^"';]*?\bfrom\s*["']([^"']+)["']/g)) {
    found.push({ spec: m[3] ?? "", typeOnly: m[2] !== undefined });
  }
  for (const m of text.matchAll(/\bimport\s*["']([^"']+)["']/g))
    found.push({ spec: m[1] ?? "", typeOnly: false });
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) {
    found.push({ spec: m[1] ?? "", typeOnly: false });
  }
  return found;
}

/** The one domain module api/ may load: the record field lists (plain data, it imports types only). */
const RECORD_FIELDS = join("domain", "records.ts");

/** The top-level folder a relative import of `file` lands in (undefined for a package). */
const folderOf = (file: string, spec: string): string | undefined =>
  spec.startsWith(".") ? relative(root, join(root, file, "..", spec)).split(/[\\/]/)[0] : undefined;

const isNodeModule = (spec: string): boolean => spec.startsWith("node:") || builtinModules.includes(spec);

/** What is wrong with one import of `file`, or undefined when it is fine. */
function offence(file: string, { spec, typeOnly }: Import): string | undefined {
  if (isNodeModule(spec)) return `${file} -> ${spec}: a Node module`;
  const folder = folderOf(file, spec);
  if (folder !== undefined && FORBIDDEN_DIRS.includes(folder)) return `${file} -> ${spec}: ${folder}/`;
  const shared = relative(root, join(root, file, "..", spec)) === RECORD_FIELDS;
  if (folder === "domain" && !typeOnly && !shared)
    return `${file} -> ${spec}: not a type-only import of domain/`;
  return undefined;
}

const offencesOf = (file: string, text: string): string[] =>
  importsOf(text).flatMap((i) => offence(file, i) ?? []);

describe("api/ boundaries", () => {
  it("api/ imports no Node module, nothing from cli/, local/, handlers/, adapters/, and from domain/ only types and the record field lists", () => {
    // Prepare
    const files = sources("api");

    // Act
    const offences = files.flatMap((file) => offencesOf(file, readFileSync(join(root, file), "utf8")));

    // Assess
    expect(files.length).toBeGreaterThan(0);
    expect(offences).toEqual([]);
  });

  it("the check would catch an offending import (it sees them all)", () => {
    // Prepare
    const text = [
      'import { createHash } from "node:crypto";',
      'import { readFile } from "fs/promises";',
      'import { CliError } from "../cli/output.ts";',
      'export { makeAdminRouter } from "../handlers/admin.ts";',
      'import type { LocalEndpoints } from "../local/endpoints.ts";',
      'import { DynamoAllowlist } from "../adapters/dynamo.ts";',
      'import { Admin } from "../domain/admin.ts";',
      'import { type Lot } from "../domain/types.ts";',
      'import type { Page } from "../domain/ports.ts";',
      'import { AUDIT_FIELDS } from "../domain/records.ts";',
      'import { segment } from "./contract.ts";',
      'const later = () => import("../local/aws/index.ts");',
    ].join("\n");

    // Act
    const offences = offencesOf("api/x.ts", text);

    // Assess
    expect(offences).toEqual([
      "api/x.ts -> node:crypto: a Node module",
      "api/x.ts -> fs/promises: a Node module",
      "api/x.ts -> ../cli/output.ts: cli/",
      "api/x.ts -> ../handlers/admin.ts: handlers/",
      "api/x.ts -> ../local/endpoints.ts: local/",
      "api/x.ts -> ../adapters/dynamo.ts: adapters/",
      "api/x.ts -> ../domain/admin.ts: not a type-only import of domain/",
      "api/x.ts -> ../domain/types.ts: not a type-only import of domain/",
      "api/x.ts -> ../local/aws/index.ts: local/",
    ]);
  });
});

describe("the record field lists api/ loads", () => {
  it("domain/records.ts loads nothing at run time (type-only imports), so api/ stays free of the server", () => {
    const imports = importsOf(readFileSync(join(root, RECORD_FIELDS), "utf8"));
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((i) => !i.typeOnly)).toEqual([]);
  });
});
