import type { APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { type AdminEvent, type AdminHandler, makeAdminHandler } from "./admin.ts";
import { readAdminConfig } from "./admin-config.ts";
import { buildAdmin } from "./admin-wiring.ts";

let built: AdminHandler | undefined;

/** The deployed admin HTTP API entry point: configuration and clients are built on the first invocation of a cold start. */
export const handler = (event: AdminEvent, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
  built ??= makeAdminHandler(buildAdmin(readAdminConfig()));
  return built(event, context);
};
