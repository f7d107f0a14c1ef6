import {
  type AllowlistSaved,
  CONTENT_TYPES,
  errorBody,
  HEADERS,
  type MappingSaved,
} from "../api/contract.ts";
import { type Admin, ledgerFilterOf } from "../domain/admin/index.ts";
import {
  type AdminRequest,
  type AdminResponse,
  actorOf,
  allowlistQueryOf,
  deleteVersionOf,
  etag,
  flagOf,
  HttpError,
  importLinesOf,
  importOptionsOf,
  json,
  jsonBody,
  mappingSaveOptionsOf,
  pageOf,
  preconditionOf,
  reconcileQueryOf,
  segmentsOf,
} from "./admin-http.ts";

/*
 * The admin API's routes:
 *   GET /allowlist, GET|PUT|DELETE /allowlist/{deviceId}, POST /allowlist/import, GET /allowlist/export
 *     (PUT ...?suspend=true: a record written blocked suspends its certificates instead of revoking them)
 *   GET /mappings, GET|PUT|DELETE /mappings/{selector} (PUT ?dryRun=true: the what-if; ?force=true,
 *   ?allowBroadPolicy=true: save despite missing references or a broad inline policy)
 *   GET /lots, GET|PUT|DELETE /lots/{lot}
 *   POST /explain
 *   POST /devices/{deviceId}/approve, POST /devices/{deviceId}/deprovision, GET /devices/{deviceId}/history
 *   GET /ledger?kind=&reason=&lot=&since=, GET /approvals, GET /mappings/{selector}/history, GET /lots/{lot}/history
 *     (deprovision ?block=true: the record is written blocked first)
 *   POST /reconcile?dryRun=&limit=&cursor= (one slice)
 *   POST /uploads, POST /allowlist/import-jobs, POST /allowlist/export-jobs,
 *   GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel
 *   POST /reconcile-jobs (body {dryRun?}: the whole reconcile as a job)
 *   POST /block-jobs (body {deviceIds | lot, suspend?}: many devices blocked as a job)
 *   POST /backup-jobs, POST /restore-jobs (every lot, mapping and allowlist record in one file, and back)
 */

/** Writes answer the record with its version as ETag: 201 when created, 200 when updated. */
const written = (write: { value: { version?: number }; created: boolean }): AdminResponse =>
  json(write.created ? 201 : 200, write.value, etag(write.value.version));

const NO_CONTENT: AdminResponse = { statusCode: 204, headers: {} };

const notFound = () => new HttpError(404, "NotFound", "no such route");
const notAllowed = (allowed: string) => new HttpError(405, "MethodNotAllowed", `this route takes ${allowed}`);

/** The job use cases; 404 where the deployment runs no jobs. */
const jobsOf = (admin: Admin) => {
  if (admin.jobs === undefined) throw new HttpError(404, "NotFound", "this deployment runs no jobs");
  return admin.jobs;
};

/** Routes one admin API request to its use case; every failure is thrown, for the error mapping. */
export async function route(admin: Admin, request: AdminRequest): Promise<AdminResponse> {
  const { event } = request;
  const actor = actorOf(event);
  const method = event.requestContext.http.method.toUpperCase();
  const query = event.queryStringParameters ?? {};
  const headers = event.headers ?? {};
  const [collection, id, action, ...rest] = segmentsOf(event);
  if (rest.length > 0) throw notFound();

  switch (collection) {
    case "allowlist": {
      if ((id === "import-jobs" || id === "export-jobs") && action === undefined) {
        if (method !== "POST") throw notAllowed("POST");
        const jobs = jobsOf(admin);
        const job =
          id === "import-jobs"
            ? await jobs.startImport(actor, jsonBody(event))
            : await jobs.startExport(actor);
        return json(202, job);
      }
      if (id === "import" && action === undefined) {
        if (method !== "POST") throw notAllowed("POST");
        const options = importOptionsOf(query, headers);
        const report = await admin.allowlist.import(actor, importLinesOf(request), options);
        if (report.stopped !== undefined) {
          const { limit, reason } = report.stopped;
          const written = report.dryRun
            ? "nothing was written (dry run)"
            : options.mode === "all-or-nothing"
              ? "nothing was written"
              : "the lines before it were imported as the report says";
          const [status, code] =
            limit === "body" ? [413, "PayloadTooLarge" as const] : [400, "ImportRejected" as const];
          return json(status, errorBody(code, `${reason}: ${written}`, report));
        }
        if (options.mode === "all-or-nothing" && report.rejectedCount > 0) {
          return json(
            400,
            errorBody(
              "ImportRejected",
              `${report.rejectedCount} line(s) are invalid; nothing was written`,
              report,
            ),
          );
        }
        return json(200, report);
      }
      if (id === "export" && action === undefined) {
        if (method !== "GET") throw notAllowed("GET");
        return {
          statusCode: 200,
          headers: { [HEADERS.contentType]: CONTENT_TYPES.jsonLines },
          lines: admin.allowlist.export(),
        };
      }
      if (action !== undefined) throw notFound();
      if (id === undefined) {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.allowlist.list(allowlistQueryOf(query), pageOf(query)));
      }
      if (method === "GET") {
        const record = await admin.allowlist.get(id);
        return json(200, record, etag(record.version));
      }
      if (method === "PUT") {
        const suspend = flagOf(query, "suspend");
        const { value, created, cutOff, warnings } = await admin.allowlist.put(
          actor,
          id,
          jsonBody(event),
          preconditionOf(headers),
          { suspend },
        );
        // a record written blocked answers what was done to the device's certificates, as `block`
        const saved: AllowlistSaved = {
          ...value,
          ...(cutOff !== undefined ? { block: cutOff } : {}),
          ...(warnings.length > 0 ? { warnings } : {}),
        };
        return written({ value: saved, created });
      }
      if (method === "DELETE") {
        await admin.allowlist.remove(actor, id, deleteVersionOf(headers));
        return NO_CONTENT;
      }
      throw notAllowed("GET, PUT, DELETE");
    }
    case "mappings": {
      if (id !== undefined && action === "history") {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.fleet.mappingHistory(id, pageOf(query)));
      }
      if (action !== undefined) throw notFound();
      if (id === undefined) {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.mappings.list(pageOf(query)));
      }
      if (method === "GET") {
        const mapping = await admin.mappings.get(id);
        return json(200, mapping, etag(mapping.version));
      }
      if (method === "PUT") {
        if (query.dryRun === "true") return json(200, await admin.mappings.whatIf(id, jsonBody(event)));
        const { value, created, warnings } = await admin.mappings.put(
          actor,
          id,
          jsonBody(event),
          preconditionOf(headers),
          mappingSaveOptionsOf(query),
        );
        // saved either way; warnings (what the mapping will not do as it reads) ride along with it
        const saved: MappingSaved = warnings.length > 0 ? { ...value, warnings } : value;
        return written({ value: saved, created });
      }
      if (method === "DELETE") {
        await admin.mappings.remove(actor, id, deleteVersionOf(headers));
        return NO_CONTENT;
      }
      throw notAllowed("GET, PUT, DELETE");
    }
    case "lots": {
      if (id !== undefined && action === "history") {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.fleet.lotHistory(id, pageOf(query)));
      }
      if (action !== undefined) throw notFound();
      if (id === undefined) {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.lots.list(pageOf(query)));
      }
      if (method === "GET") {
        const lot = await admin.lots.get(id);
        return json(200, lot, etag(lot.version));
      }
      if (method === "PUT") {
        return written(await admin.lots.put(actor, id, jsonBody(event), preconditionOf(headers)));
      }
      if (method === "DELETE") {
        await admin.lots.remove(actor, id, deleteVersionOf(headers));
        return NO_CONTENT;
      }
      throw notAllowed("GET, PUT, DELETE");
    }
    case "explain": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      return json(200, await admin.devices.explain(jsonBody(event)));
    }
    case "devices": {
      if (id === undefined || action === undefined) throw notFound();
      if (action === "history") {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await admin.devices.history(id, pageOf(query)));
      }
      if (method !== "POST") {
        if (action === "approve" || action === "deprovision") throw notAllowed("POST");
        throw notFound();
      }
      if (action === "approve") return json(200, await admin.devices.approve(actor, id));
      if (action === "deprovision") {
        const block = flagOf(query, "block");
        return json(200, await admin.devices.deprovision(actor, id, { block }));
      }
      throw notFound();
    }
    case "ledger": {
      if (id !== undefined) throw notFound();
      if (method !== "GET") throw notAllowed("GET");
      const filter = ledgerFilterOf(query, admin.deps.clock.now());
      return json(200, await admin.fleet.ledger(filter, pageOf(query)));
    }
    case "approvals": {
      if (id !== undefined) throw notFound();
      if (method !== "GET") throw notAllowed("GET");
      return json(200, await admin.fleet.approvals(pageOf(query)));
    }
    case "reconcile": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      return json(200, await admin.reconcile.slice(actor, reconcileQueryOf(query)));
    }
    case "reconcile-jobs": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      return json(202, await jobsOf(admin).startReconcile(actor, jsonBody(event)));
    }
    case "block-jobs": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      return json(202, await jobsOf(admin).startBlock(actor, jsonBody(event)));
    }
    case "uploads": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      return json(201, await jobsOf(admin).requestUpload(jsonBody(event)));
    }
    case "jobs": {
      const jobs = jobsOf(admin);
      if (id === undefined) {
        if (method !== "GET") throw notAllowed("GET");
        return json(200, await jobs.list(pageOf(query)));
      }
      if (action === "cancel") {
        if (method !== "POST") throw notAllowed("POST");
        return json(200, await jobs.cancel(actor, id));
      }
      if (action !== undefined) throw notFound();
      if (method !== "GET") throw notAllowed("GET");
      return json(200, await jobs.get(id));
    }
    case "backup-jobs":
    case "restore-jobs": {
      if (id !== undefined) throw notFound();
      if (method !== "POST") throw notAllowed("POST");
      const jobs = jobsOf(admin);
      const job =
        collection === "backup-jobs"
          ? await jobs.startBackup(actor)
          : await jobs.startRestore(actor, jsonBody(event));
      return json(202, job);
    }
    default:
      throw notFound();
  }
}
