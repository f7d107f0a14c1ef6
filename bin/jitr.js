#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx), so `npm ci` is the only setup step.
import { register } from "tsx/esm/api";

// The AWS SDK warns on every start that its releases after January 2027 need Node 22; Node 20 is a
// supported runtime here, so that one notice is not shown (every other warning is).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).startsWith("NodeVersionSupportWarning")) return;
  emitWarning(warning, ...rest);
};

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv);
