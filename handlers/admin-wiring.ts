import type { AdminHandlerDeps } from "./admin.ts";
import type { AdminConfig } from "./admin-config.ts";

/** Builds everything the admin handler needs, once per cold start. */
export function buildAdmin(_config: AdminConfig): AdminHandlerDeps {
  return {};
}
