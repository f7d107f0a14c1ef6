import type { Context } from "aws-lambda";
import { readProvisioningConfig } from "./config.ts";
import { makeProvisionHandler, type ProvisionHandler } from "./provision.ts";
import { buildProvisioning } from "./wiring.ts";

let built: ProvisionHandler | undefined;

/** The deployed entry point: configuration and clients are built on the first invocation of a cold start. */
export const handler = (event: unknown, context: Context) => {
  built ??= makeProvisionHandler(buildProvisioning(readProvisioningConfig()));
  return built(event, context);
};
