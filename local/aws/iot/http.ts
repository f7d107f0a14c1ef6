import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { IotError, invalid, throttled } from "./errors.ts";
import type { FaultOptions, RateLimiter } from "./limits.ts";
import type { IotRegistry, RegistrationConfig } from "./registry.ts";

/**
 * restJson1 HTTP binding of the IoT emulator: methods, paths, query strings, headers and
 * body members exactly as the AWS SDK's IoT service model declares them.
 */

interface Call {
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  body: Record<string, unknown>;
}

type Handler = (registry: IotRegistry, call: Call) => unknown;

interface Route {
  method: string;
  segments: string[];
  operation: string;
  handler: Handler;
}

const routes: Route[] = [];

function route(method: string, path: string, operation: string, handler: Handler): void {
  routes.push({ method, segments: path.split("/").filter(Boolean), operation, handler });
}

// ---------------------------------------------------------------- input helpers

function queryString(call: Call, name: string): string | undefined {
  return call.query.get(name) ?? undefined;
}

function queryBool(call: Call, name: string): boolean | undefined {
  const value = call.query.get(name);
  if (value === null) return undefined;
  if (value === "true") return true;
  if (value === "false") return false;
  throw invalid(`Query parameter ${name} must be true or false`);
}

function queryInt(call: Call, name: string): number | undefined {
  const value = call.query.get(name);
  if (value === null) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n))
    throw invalid(`Query parameter ${name} must be an integer`);
  return n;
}

function header(call: Call, name: string): string | undefined {
  const value = call.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function bodyString(call: Call, name: string): string | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${name} must be a string`);
  return value;
}

function bodyBool(call: Call, name: string): boolean | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalid(`${name} must be a boolean`);
  return value;
}

function bodyObject<T>(call: Call, name: string): T | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw invalid(`${name} must be an object`);
  return value as T;
}

function bodyStringList(call: Call, name: string): string[] | undefined {
  const value = call.body[name];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
    throw invalid(`${name} must be a list of strings`);
  return value as string[];
}

function stringMap(value: unknown, name: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw invalid(`${name} must be a map`);
  for (const v of Object.values(value))
    if (typeof v !== "string") throw invalid(`${name} values must be strings`);
  return value as Record<string, string>;
}

function attributePayload(call: Call, name: string) {
  const payload = bodyObject<{ attributes?: unknown; merge?: unknown }>(call, name);
  if (!payload) return undefined;
  const attributes = stringMap(payload.attributes, `${name}.attributes`);
  if (payload.merge !== undefined && typeof payload.merge !== "boolean")
    throw invalid(`${name}.merge must be a boolean`);
  return {
    ...(attributes !== undefined ? { attributes } : {}),
    ...(payload.merge !== undefined ? { merge: payload.merge as boolean } : {}),
  };
}

const param = (call: Call, name: string): string => call.params[name] ?? "";

// ---------------------------------------------------------------- routes

route("GET", "/certificates/{certificateId}", "DescribeCertificate", (r, c) => ({
  certificateDescription: r.describeCertificate(param(c, "certificateId")),
}));
route("PUT", "/certificates/{certificateId}", "UpdateCertificate", (r, c) =>
  r.updateCertificate(param(c, "certificateId"), queryString(c, "newStatus")),
);
route("DELETE", "/certificates/{certificateId}", "DeleteCertificate", (r, c) =>
  r.deleteCertificate(param(c, "certificateId"), queryBool(c, "forceDelete") === true),
);
route("POST", "/certificate/register", "RegisterCertificate", (r, c) =>
  r.registerCertificate({
    certificatePem: bodyString(c, "certificatePem"),
    caCertificatePem: bodyString(c, "caCertificatePem"),
    setAsActive: queryBool(c, "setAsActive"),
    status: bodyString(c, "status"),
  }),
);
route("POST", "/certificate/register-no-ca", "RegisterCertificateWithoutCA", (r, c) =>
  r.registerCertificateWithoutCA({
    certificatePem: bodyString(c, "certificatePem"),
    status: bodyString(c, "status"),
  }),
);
route("GET", "/certificates", "ListCertificates", (r, c) =>
  r.listCertificates({
    pageSize: queryInt(c, "pageSize"),
    marker: queryString(c, "marker"),
    ascendingOrder: queryBool(c, "isAscendingOrder"),
  }),
);
route("GET", "/certificates-by-ca/{caCertificateId}", "ListCertificatesByCA", (r, c) =>
  r.listCertificates({
    caCertificateId: param(c, "caCertificateId"),
    pageSize: queryInt(c, "pageSize"),
    marker: queryString(c, "marker"),
    ascendingOrder: queryBool(c, "isAscendingOrder"),
  }),
);
route("GET", "/registrationcode", "GetRegistrationCode", (r) => ({
  registrationCode: r.getRegistrationCode(),
}));
route("DELETE", "/registrationcode", "DeleteRegistrationCode", (r) => r.deleteRegistrationCode());
route("POST", "/cacertificate", "RegisterCACertificate", (r, c) =>
  r.registerCACertificate({
    caCertificate: bodyString(c, "caCertificate"),
    verificationCertificate: bodyString(c, "verificationCertificate"),
    setAsActive: queryBool(c, "setAsActive"),
    allowAutoRegistration: queryBool(c, "allowAutoRegistration"),
    registrationConfig: bodyObject<RegistrationConfig>(c, "registrationConfig"),
    certificateMode: bodyString(c, "certificateMode"),
  }),
);
route("GET", "/cacertificate/{certificateId}", "DescribeCACertificate", (r, c) => {
  const { registrationConfig, ...certificateDescription } = r.describeCACertificate(
    param(c, "certificateId"),
  );
  return { certificateDescription, registrationConfig };
});
route("PUT", "/cacertificate/{certificateId}", "UpdateCACertificate", (r, c) =>
  r.updateCACertificate({
    certificateId: param(c, "certificateId"),
    newStatus: queryString(c, "newStatus"),
    newAutoRegistrationStatus: queryString(c, "newAutoRegistrationStatus"),
    registrationConfig: bodyObject<RegistrationConfig>(c, "registrationConfig"),
    removeAutoRegistration: bodyBool(c, "removeAutoRegistration"),
  }),
);
route("DELETE", "/cacertificate/{certificateId}", "DeleteCACertificate", (r, c) =>
  r.deleteCACertificate(param(c, "certificateId")),
);
route("GET", "/cacertificates", "ListCACertificates", (r, c) =>
  r.listCACertificates({
    pageSize: queryInt(c, "pageSize"),
    marker: queryString(c, "marker"),
    ascendingOrder: queryBool(c, "isAscendingOrder"),
    templateName: queryString(c, "templateName"),
  }),
);

route("POST", "/things/{thingName}", "CreateThing", (r, c) =>
  r.createThing({
    thingName: param(c, "thingName"),
    thingTypeName: bodyString(c, "thingTypeName"),
    attributePayload: attributePayload(c, "attributePayload"),
    billingGroupName: bodyString(c, "billingGroupName"),
  }),
);
route("GET", "/things/{thingName}", "DescribeThing", (r, c) => r.describeThing(param(c, "thingName")));
route("PATCH", "/things/{thingName}", "UpdateThing", (r, c) => {
  const expectedVersion = c.body.expectedVersion;
  if (expectedVersion !== undefined && !Number.isInteger(expectedVersion))
    throw invalid("expectedVersion must be an integer");
  r.updateThing({
    thingName: param(c, "thingName"),
    thingTypeName: bodyString(c, "thingTypeName"),
    attributePayload: attributePayload(c, "attributePayload"),
    expectedVersion: expectedVersion as number | undefined,
    removeThingType: bodyBool(c, "removeThingType"),
  });
  return {};
});
route("DELETE", "/things/{thingName}", "DeleteThing", (r, c) => {
  r.deleteThing(param(c, "thingName"), queryInt(c, "expectedVersion"));
  return {};
});
route("GET", "/things", "ListThings", (r, c) =>
  r.listThings({
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
    attributeName: queryString(c, "attributeName"),
    attributeValue: queryString(c, "attributeValue"),
    thingTypeName: queryString(c, "thingTypeName"),
    usePrefixAttributeValue: queryBool(c, "usePrefixAttributeValue"),
  }),
);
route("POST", "/thing-types/{thingTypeName}", "CreateThingType", (r, c) =>
  r.createThingType({
    thingTypeName: param(c, "thingTypeName"),
    thingTypeProperties: bodyObject(c, "thingTypeProperties"),
  }),
);
route("GET", "/thing-types/{thingTypeName}", "DescribeThingType", (r, c) =>
  r.describeThingType(param(c, "thingTypeName")),
);
route("POST", "/thing-groups/{thingGroupName}", "CreateThingGroup", (r, c) =>
  r.createThingGroup({
    thingGroupName: param(c, "thingGroupName"),
    parentGroupName: bodyString(c, "parentGroupName"),
    thingGroupProperties: bodyObject(c, "thingGroupProperties"),
  }),
);
// Registered before "/thing-groups/{thingGroupName}" matters only for GET; these are PUTs.
const groupMembership = (c: Call) => ({
  thingGroupName: bodyString(c, "thingGroupName"),
  thingGroupArn: bodyString(c, "thingGroupArn"),
  thingName: bodyString(c, "thingName"),
  thingArn: bodyString(c, "thingArn"),
});
route("PUT", "/thing-groups/addThingToThingGroup", "AddThingToThingGroup", (r, c) => {
  r.addThingToThingGroup(groupMembership(c));
  return {};
});
route("PUT", "/thing-groups/removeThingFromThingGroup", "RemoveThingFromThingGroup", (r, c) => {
  r.removeThingFromThingGroup(groupMembership(c));
  return {};
});
route("GET", "/thing-groups/{thingGroupName}", "DescribeThingGroup", (r, c) =>
  r.describeThingGroup(param(c, "thingGroupName")),
);
route("GET", "/things/{thingName}/thing-groups", "ListThingGroupsForThing", (r, c) =>
  r.listThingGroupsForThing({
    thingName: param(c, "thingName"),
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
  }),
);

route("POST", "/policies/{policyName}", "CreatePolicy", (r, c) =>
  r.createPolicy({ policyName: param(c, "policyName"), policyDocument: bodyString(c, "policyDocument") }),
);
route("GET", "/policies/{policyName}", "GetPolicy", (r, c) => r.getPolicy(param(c, "policyName")));
route("DELETE", "/policies/{policyName}", "DeletePolicy", (r, c) => r.deletePolicy(param(c, "policyName")));
route("POST", "/policies/{policyName}/version", "CreatePolicyVersion", (r, c) =>
  r.createPolicyVersion({
    policyName: param(c, "policyName"),
    policyDocument: bodyString(c, "policyDocument"),
    setAsDefault: queryBool(c, "setAsDefault"),
  }),
);
route("GET", "/policies/{policyName}/version", "ListPolicyVersions", (r, c) =>
  r.listPolicyVersions(param(c, "policyName")),
);
route("DELETE", "/policies/{policyName}/version/{policyVersionId}", "DeletePolicyVersion", (r, c) =>
  r.deletePolicyVersion(param(c, "policyName"), param(c, "policyVersionId")),
);
route("PATCH", "/policies/{policyName}/version/{policyVersionId}", "SetDefaultPolicyVersion", (r, c) =>
  r.setDefaultPolicyVersion(param(c, "policyName"), param(c, "policyVersionId")),
);
route("PUT", "/target-policies/{policyName}", "AttachPolicy", (r, c) =>
  r.attachPolicy(param(c, "policyName"), bodyString(c, "target")),
);
route("POST", "/target-policies/{policyName}", "DetachPolicy", (r, c) =>
  r.detachPolicy(param(c, "policyName"), bodyString(c, "target")),
);
route("POST", "/attached-policies/{target}", "ListAttachedPolicies", (r, c) =>
  r.listAttachedPolicies({
    target: param(c, "target"),
    recursive: queryBool(c, "recursive"),
    marker: queryString(c, "marker"),
    pageSize: queryInt(c, "pageSize"),
  }),
);
route("POST", "/policy-targets/{policyName}", "ListTargetsForPolicy", (r, c) =>
  r.listTargetsForPolicy({
    policyName: param(c, "policyName"),
    marker: queryString(c, "marker"),
    pageSize: queryInt(c, "pageSize"),
  }),
);

route("PUT", "/things/{thingName}/principals", "AttachThingPrincipal", (r, c) => {
  r.attachThingPrincipal(
    param(c, "thingName"),
    header(c, "x-amzn-principal"),
    queryString(c, "thingPrincipalType"),
  );
  return {};
});
route("DELETE", "/things/{thingName}/principals", "DetachThingPrincipal", (r, c) => {
  r.detachThingPrincipal(param(c, "thingName"), header(c, "x-amzn-principal"));
  return {};
});
route("GET", "/things/{thingName}/principals", "ListThingPrincipals", (r, c) =>
  r.listThingPrincipals({
    thingName: param(c, "thingName"),
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
  }),
);
route("GET", "/principals/things", "ListPrincipalThings", (r, c) =>
  r.listPrincipalThings({
    principal: header(c, "x-amzn-principal"),
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
  }),
);
route("GET", "/things/{thingName}/principals-v2", "ListThingPrincipalsV2", (r, c) =>
  r.listThingPrincipalsV2({
    thingName: param(c, "thingName"),
    thingPrincipalType: queryString(c, "thingPrincipalType"),
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
  }),
);
route("GET", "/principals/things-v2", "ListPrincipalThingsV2", (r, c) =>
  r.listPrincipalThingsV2({
    principal: header(c, "x-amzn-principal"),
    thingPrincipalType: queryString(c, "thingPrincipalType"),
    nextToken: queryString(c, "nextToken"),
    maxResults: queryInt(c, "maxResults"),
  }),
);
route("POST", "/test-authorization", "TestAuthorization", (r, c) => {
  const authInfos = c.body.authInfos;
  if (authInfos !== undefined && !Array.isArray(authInfos)) throw invalid("authInfos must be a list");
  return r.testAuthorization({
    principal: bodyString(c, "principal"),
    clientId: queryString(c, "clientId"),
    authInfos: authInfos as { actionType?: string; resources?: string[] }[] | undefined,
    policyNamesToAdd: bodyStringList(c, "policyNamesToAdd"),
    policyNamesToSkip: bodyStringList(c, "policyNamesToSkip"),
  });
});
route("POST", "/effective-policies", "GetEffectivePolicies", (r, c) =>
  r.getEffectivePolicies({
    principal: bodyString(c, "principal"),
    thingName: queryString(c, "thingName"),
  }),
);
route("GET", "/endpoint", "DescribeEndpoint", (r, c) => r.describeEndpoint(queryString(c, "endpointType")));

// ---------------------------------------------------------------- dispatch

function match(
  method: string,
  segments: string[],
): { route: Route; params: Record<string, string> } | undefined {
  for (const candidate of routes) {
    if (candidate.method !== method || candidate.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    candidate.segments.forEach((pattern, i) => {
      const actual = segments[i] ?? "";
      if (pattern.startsWith("{")) params[pattern.slice(1, -1)] = actual;
      else if (pattern !== actual) ok = false;
    });
    if (ok) return { route: candidate, params };
  }
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body ?? {});
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": randomUUID(),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, error: IotError): void {
  send(res, error.status, { message: error.message, ...error.fields }, { "x-amzn-errortype": error.code });
}

export interface IotHttpOptions {
  limiter: RateLimiter;
  faults: Required<FaultOptions>;
  random?: () => number;
}

/** Operation name for a method and URL path, or undefined if the emulator does not serve it. */
export function iotOperationFor(method: string, path: string): string | undefined {
  return match(method, splitPath(path) ?? [])?.route.operation;
}

function splitPath(path: string): string[] | undefined {
  try {
    return path
      .split("/")
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/** Request handler for the IoT emulator (one request, after service routing). */
export function createIotHandler(registry: IotRegistry, options: IotHttpOptions) {
  const random = options.random ?? Math.random;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const method = req.method ?? "GET";
      const segments = splitPath(url.pathname);
      const found = segments ? match(method, segments) : undefined;
      const raw = await readBody(req);
      if (!found) {
        sendError(
          res,
          new IotError(
            "UnknownOperationException",
            `The local IoT emulator does not implement ${method} ${url.pathname}`,
          ),
        );
        return;
      }
      const { faults, limiter } = options;
      const jitter = faults.latencyJitterMs > 0 ? random() * faults.latencyJitterMs : 0;
      if (faults.latencyMs + jitter > 0) await sleep(faults.latencyMs + jitter);
      if (faults.throttleRate > 0 && random() < faults.throttleRate)
        throw throttled("Rate exceeded (injected fault)");
      if (faults.serverErrorRate > 0 && random() < faults.serverErrorRate) {
        throw random() < 0.5
          ? new IotError("InternalFailureException", "Internal failure (injected fault)")
          : new IotError("ServiceUnavailableException", "Service unavailable (injected fault)");
      }
      if (!limiter.tryAcquire(found.route.operation)) throw throttled("Rate exceeded");
      let body: Record<string, unknown> = {};
      if (raw.trim() !== "") {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          throw invalid("The request body is not valid JSON");
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw invalid("The request body must be a JSON object");
        body = parsed as Record<string, unknown>;
      }
      const result = await found.route.handler(registry, {
        params: found.params,
        query: url.searchParams,
        headers: req.headers,
        body,
      });
      send(res, 200, result ?? {});
    } catch (error) {
      if (error instanceof IotError) {
        sendError(res, error);
        return;
      }
      process.stderr.write(
        `local IoT emulator: internal error: ${(error as Error).stack ?? String(error)}\n`,
      );
      sendError(
        res,
        new IotError("InternalFailureException", `Internal failure: ${(error as Error).message}`),
      );
    }
  };
}
