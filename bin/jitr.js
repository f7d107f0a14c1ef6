#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx), so `npm ci` is the only setup step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv);
