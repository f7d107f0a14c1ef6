/*
 * The console's page, script and style. An installed package carries the script bundled at build time
 * (dist/console/app.js, written by scripts/build.ts); a clone running its sources bundles console/web/ on
 * demand with esbuild (a devDependency), in memory. Either way nothing is fetched from the network.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { ConsoleAssets } from "./server.ts";
import { CONSOLE_STYLE } from "./style.ts";

/** The bundled script's file name, beside this module once built. */
export const BUNDLE_FILE = "app.js";

/** The page: a shell that loads the script and style; the script renders everything. */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jitr console</title>
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`;

/** The esbuild options of the console bundle (one file, minified, for current browsers). */
export function bundleOptions(entry: string) {
  return {
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm" as const,
    jsx: "automatic" as const,
    jsxImportSource: "preact",
    target: ["chrome110", "firefox110", "safari16"],
    legalComments: "none" as const,
    logLevel: "silent" as const,
  };
}

/** Bundles console/web/main.ts into one script, in memory (esbuild must be installed: a clone's devDependency). */
export async function bundleScript(): Promise<string> {
  const entry = fileURLToPath(new URL("./web/main.tsx", import.meta.url));
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error("the console is not built and esbuild is not installed: run `npm ci && npm run build`");
  }
  const result = await esbuild.build({ ...bundleOptions(entry), write: false });
  const [file] = result.outputFiles;
  if (file === undefined) throw new Error("esbuild wrote no console bundle");
  return file.text;
}

/** The console's assets: the prebuilt script when there is one beside this module, else bundled now. */
export async function loadAssets(): Promise<ConsoleAssets & { bundled: "prebuilt" | "on-demand" }> {
  const prebuilt = fileURLToPath(new URL(`./${BUNDLE_FILE}`, import.meta.url));
  if (existsSync(prebuilt)) {
    return {
      html: CONSOLE_HTML,
      style: CONSOLE_STYLE,
      script: await readFile(prebuilt, "utf8"),
      bundled: "prebuilt",
    };
  }
  return { html: CONSOLE_HTML, style: CONSOLE_STYLE, script: await bundleScript(), bundled: "on-demand" };
}
