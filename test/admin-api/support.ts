import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { APIGatewayProxyEventV2WithIAMAuthorizer } from "aws-lambda";
import { DynamoAllowlist } from "../../adapters/dynamo/allowlist.ts";
import { DynamoLedger } from "../../adapters/dynamo/ledger.ts";
import { DynamoLots } from "../../adapters/dynamo/lots.ts";
import { DynamoMappings } from "../../adapters/dynamo/mappings.ts";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { ensureTables, type TableNames } from "../../adapters/tables.ts";
import type { AdminDeps } from "../../domain/admin/index.ts";
import { type AdminRequestExtras, type AdminResponse, makeAdminRouter } from "../../handlers/admin.ts";
import { startDynalite } from "../support/dynalite.ts";
import { FakeClock, FakeIot, testSettings } from "../support/fakes.ts";

let tableCounter = 0;

/** One dynalite for a test file; each call of `world()` gets fresh tables in it. */
export async function startAdminWorlds() {
  const dynalite = await startDynalite();
  const doc = createDocumentClient(dynalite.client);

  /** A fresh admin world: its own tables, a FakeIot, a fake clock, and the router over them. */
  async function world() {
    tableCounter += 1;
    const prefix = `t${tableCounter}-`;
    const names: TableNames = {
      allowlist: `${prefix}allowlist`,
      mappings: `${prefix}mappings`,
      lots: `${prefix}lots`,
      ledger: `${prefix}ledger`,
      idempotency: `${prefix}idempotency`,
    };
    await ensureTables(dynalite.client, names);
    const iot = new FakeIot();
    const clock = new FakeClock(new Date());
    const deps: AdminDeps = {
      iot,
      allowlist: new DynamoAllowlist({ doc, table: names.allowlist }),
      mappings: new DynamoMappings({ doc, table: names.mappings }),
      lots: new DynamoLots({ doc, table: names.lots, recordsTable: names.allowlist }),
      ledger: new DynamoLedger({ doc, table: names.ledger }),
      clock,
      settings: testSettings({ attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }),
    };
    const errors: string[] = [];
    const router = makeAdminRouter({
      admin: deps,
      logError: (message, details) => errors.push(`${message} ${JSON.stringify(details)}`),
    });

    /** Calls the router as API Gateway would, as `actor`; parses a JSON answer. */
    async function call(
      method: string,
      path: string,
      options: {
        body?: unknown;
        headers?: Record<string, string>;
        actor?: string | null;
        extras?: AdminRequestExtras;
      } = {},
    ): Promise<{ status: number; headers: Record<string, string>; json: unknown; raw: AdminResponse }> {
      const response = await router(event(method, path, options), options.extras);
      let json: unknown;
      if (response.body !== undefined && response.body !== "") json = JSON.parse(response.body);
      return { status: response.statusCode, headers: response.headers, json, raw: response };
    }

    /** Every item of a table, for checking that a refused request changed nothing. */
    async function scan(table: keyof TableNames): Promise<Record<string, unknown>[]> {
      const output = await doc.send(new ScanCommand({ TableName: names[table] }));
      return output.Items ?? [];
    }

    return { deps, iot, clock, router, call, scan, errors, names };
  }

  return { world, close: dynalite.close, client: dynalite.client };
}

/** An HTTP API v2 event for a path with an optional query string. */
export function event(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; actor?: string | null } = {},
): APIGatewayProxyEventV2WithIAMAuthorizer {
  const url = new URL(path, "http://api.test");
  const query = Object.fromEntries(url.searchParams);
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body);
  const actor = options.actor === undefined ? "arn:aws:iam::123456789012:user/alice" : options.actor;
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...options.headers },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      ...(actor === null
        ? {}
        : {
            authorizer: {
              iam: {
                accessKey: "AKIA",
                accountId: "123456789012",
                callerId: "AIDA",
                cognitoIdentity: null,
                principalOrgId: "",
                userArn: actor,
                userId: "AIDA",
              },
            },
          }),
      domainName: "api.test",
      domainPrefix: "api",
      http: { method, path: url.pathname, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" },
      requestId: "req",
      routeKey: "$default",
      stage: "$default",
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    } as APIGatewayProxyEventV2WithIAMAuthorizer["requestContext"],
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded: false,
  };
}

/** Lines as an async iterable, as the local server streams an import body. */
export async function* linesFrom(text: string): AsyncGenerator<string> {
  for (const line of text.split("\n")) yield line;
}
