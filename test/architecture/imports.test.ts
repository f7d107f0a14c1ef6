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

describe("module boundaries", () => {
  it("domain/ imports nothing from handlers/, adapters/, local/, cli/, the AWS SDK or Lambda types", () => {
    const offenders = sources("domain").flatMap((file) =>
      importsOf(file)
        .filter(
          (spec) =>
            spec.startsWith("@aws-sdk/") ||
            spec.startsWith("@aws-lambda-powertools/") ||
            spec === "aws-lambda" ||
            ["handlers", "adapters", "local", "cli"].some((dir) => resolvesInto(file, spec, dir)),
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

  it("the check sees imports (it would catch one)", () => {
    expect(resolvesInto("domain/x.ts", "../local/aws/index.ts", "local")).toBe(true);
    expect(importsOf("handlers/wiring.ts")).toContain("../adapters/dynamo/table.ts");
  });
});
