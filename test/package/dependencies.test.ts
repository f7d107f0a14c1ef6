/**
 * The package's dependencies: what the built code loads at run time is in `dependencies` (an install with
 * `--omit=dev` has it), development tools are not, and every version is pinned to the one locked.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const readJson = <T>(path: string): T => JSON.parse(readFileSync(join(root, path), "utf8")) as T;

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = readJson<PackageJson>("package.json");
const lock = readJson<{
  packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
}>("package-lock.json");
/** The source folders the build compiles into dist/. */
const built = readJson<{ include: string[] }>("tsconfig.build.json").include;

const sources = (dir: string): string[] =>
  readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });

/** The package a specifier names (`@aws-sdk/client-iot/dist` -> `@aws-sdk/client-iot`), or undefined for a file or a built-in. */
const packageOf = (spec: string): string | undefined => {
  if (spec.startsWith(".") || spec.startsWith("node:")) return undefined;
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
};

/** Packages loaded at run time: static and dynamic imports and `require()`, not `import type`. */
function runtimePackagesOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [
    ...text.matchAll(
      /^(?:import|export)(?!\s+type\s)[^"';]*?from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|[rR]equire\w*\(\s*["']([^"']+)["']\s*\)/gm,
    ),
  ].flatMap((m) => {
    const name = packageOf(m[1] ?? m[2] ?? m[3] ?? m[4] ?? "");
    return name === undefined ? [] : [name];
  });
}

describe("package dependencies", () => {
  it("every package the built code loads at run time is a dependency", () => {
    // Act
    const used = new Set(built.flatMap(sources).flatMap(runtimePackagesOf));
    const missing = [...used].filter((name) => pkg.dependencies[name] === undefined);

    // Assess
    expect(used.size).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it("no development tool is a run-time dependency", () => {
    // Act
    const tools = Object.keys(pkg.dependencies).filter(
      (name) =>
        name.startsWith("@types/") ||
        ["typescript", "tsx", "vitest", "@biomejs/biome", "osls", "serverless-esbuild", "esbuild"].includes(
          name,
        ) ||
        name.startsWith("aws-sdk-client-mock"),
    );

    // Assess
    expect(tools).toEqual([]);
  });

  it("every version is exact, the one package-lock.json installs, and the lock lists the same", () => {
    // Act
    const all = { ...pkg.dependencies, ...pkg.devDependencies };
    const drift = Object.entries(all).filter(
      ([name, version]) => lock.packages[`node_modules/${name}`]?.version !== version,
    );

    // Assess
    expect(drift).toEqual([]);
    expect(lock.packages[""]?.dependencies).toEqual(pkg.dependencies);
  });
});
