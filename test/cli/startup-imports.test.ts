import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

/** The modules a file loads as soon as it is loaded: static imports, not `import type` nor `await import()`. */
const staticImportsOf = (file: string): string[] =>
  [
    ...readFileSync(join(root, file), "utf8").matchAll(
      /^(?:import|export)(?!\s+type\s)[^"';]*?from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm,
    ),
  ].map((m) => m[1] ?? m[2] ?? "");

/** Every module and package reached from `entry` by static imports alone. */
function loadedAtStart(entry: string): { modules: string[]; packages: string[] } {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (modules.has(file)) return;
    modules.add(file);
    for (const spec of staticImportsOf(file)) {
      if (spec.startsWith("."))
        visit(
          relative(root, join(root, dirname(file), spec))
            .split("\\")
            .join("/"),
        );
      else if (!spec.startsWith("node:")) packages.add(spec);
    }
  };
  visit(entry);
  return { modules: [...modules].sort(), packages: [...packages].sort() };
}

describe("what `jitr --version` and `jitr --help` load", () => {
  it("the command tree loads commander and the light CLI modules only: no AWS SDK, x509, MQTT or local stack", () => {
    // Act
    const { modules, packages } = loadedAtStart("cli/main.ts");

    // Assess
    expect(packages).toEqual(["commander"]);
    const heavy = modules.filter(
      (m) =>
        (/^(pki|adapters|handlers|local)\//.test(m) && m !== "local/contract.ts") ||
        /^cli\/(ca|api-client|device-client|demo|fleet|report|completion)\.ts$/.test(m),
    );
    expect(heavy).toEqual([]);
  });
});
