import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";

export interface AdminHandlerDeps {
  placeholder?: true;
}

export type AdminHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** The admin HTTP API handler (work in progress). */
export function makeAdminHandler(_deps: AdminHandlerDeps): AdminHandler {
  return async () => ({
    statusCode: 501,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ error: { code: "NotImplemented", message: "not implemented yet" } }),
  });
}
