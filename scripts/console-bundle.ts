/**
 * Bundles the admin console's browser script (console/web/main.tsx, Preact) with esbuild: at `npm run build`
 * into dist/console/app.js, and on demand when a clone runs the console from its sources. Development
 * tooling: the installed package serves the built file and never loads this module (nor esbuild).
 */
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

/** The console's entry point. */
export const CONSOLE_ENTRY = fileURLToPath(new URL("../console/web/main.tsx", import.meta.url));

/** The esbuild options of the console bundle (one file, minified, for current browsers). */
export const bundleOptions = {
  entryPoints: [CONSOLE_ENTRY],
  bundle: true,
  minify: true,
  format: "esm",
  jsx: "automatic",
  jsxImportSource: "preact",
  target: ["chrome110", "firefox110", "safari16"],
  legalComments: "none",
  logLevel: "silent",
} satisfies esbuild.BuildOptions;

/** The bundle, in memory. */
export async function bundleScript(): Promise<string> {
  const result = await esbuild.build({ ...bundleOptions, write: false });
  const [file] = result.outputFiles;
  if (file === undefined) throw new Error("esbuild wrote no console bundle");
  return file.text;
}

/** Writes the bundle to `outfile` (the build's dist/console/app.js). */
export function writeBundle(outfile: string): void {
  esbuild.buildSync({ ...bundleOptions, outfile });
}
