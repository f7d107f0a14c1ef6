import { createReadStream, createWriteStream } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import type { Job, JobView, SignedUrl } from "../../../api/contract.ts";
import type { NodeAdminClient } from "../../api-client.ts";
import { followJob } from "../../job-follow.ts";
import { CliError, printObject, printPage } from "../../output.ts";
import { type Common, confirmed, connect, handled, type PageOptions, withApi, withPaging } from "./shared.ts";

export { followJob };

/** Registers `jitr jobs list|get|wait|cancel`. */
export function registerJobs(program: Command): void {
  const jobs = program
    .command("jobs")
    .description("long work run as jobs (imports, exports): state, progress, result");

  withApi(
    withPaging(
      jobs.command("list").description("list jobs, newest first (one page; --cursor for the next)"),
      "jobs",
    ),
  ).action(
    handled(async (opts: Common & PageOptions) => {
      const page = await (await connect(opts)).jobs.list({ limit: opts.limit, cursor: opts.cursor });
      const rows = page.items.map((job) => ({ ...job, progress: progressText(job) }));
      printPage(
        { items: rows, ...(page.cursor ? { cursor: page.cursor } : {}) },
        ["id", "kind", "state", "progress", "startedBy", "createdAt"],
        opts.json === true,
      );
    }),
  );

  withApi(
    jobs.command("get <id>").description("show a job: state, progress, result (an export's download URL)"),
  ).action(
    handled(async (id: string, opts: Common) => {
      printJob(await (await connect(opts)).jobs.get(id), opts.json === true);
    }),
  );

  withApi(
    jobs
      .command("wait <id>")
      .description("follow a job until it ends (a progress bar on a terminal), then show it"),
  ).action(
    handled(async (id: string, opts: Common) => {
      const job = await followJob(await connect(opts), id);
      printJob(job, opts.json === true);
      if (job.state !== "succeeded")
        throw new CliError(`job ${id} ${job.state}${job.error ? `: ${job.error}` : ""}`, 1);
    }),
  );

  withApi(
    jobs
      .command("cancel <id>")
      .description("cancel a job that has not ended (what it wrote stays written)")
      .option("--yes", "do not ask for confirmation"),
  ).action(
    handled(async (id: string, opts: Common & { yes?: boolean }) => {
      await confirmed(`cancel job ${id}?`, opts);
      printJob(await (await connect(opts)).jobs.cancel(id), opts.json === true);
    }),
  );
}

const progressText = (job: Job): string =>
  job.progress.total === undefined ? String(job.progress.done) : `${job.progress.done}/${job.progress.total}`;

/** Prints a job: its fields as a table (result as JSON), or the job as JSON. */
export function printJob(job: JobView, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return;
  }
  const { result, download, params, cursor: _cursor, lease: _lease, ...rest } = job;
  printObject(
    { ...rest, progress: progressText(job), params, ...(download ? { download: download.url } : {}) },
    false,
  );
  if (result !== undefined) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * Follows a job that writes a file (an export, a backup) to its end and downloads the file to `out`
 * (stdout without one); throws unless the job succeeded.
 */
export async function downloadJobFile(
  api: NodeAdminClient,
  started: Job,
  out: string | undefined,
): Promise<void> {
  const job = await followJob(api, started.id);
  if (job.state !== "succeeded" || job.download === undefined)
    throw new CliError(`${job.kind} job ${job.id} ${job.state}: ${job.error ?? ""}`, 1);
  await downloadTo(job.download, out);
  if (out !== undefined) process.stderr.write(`wrote ${job.progress.done} records to ${out}\n`);
}

/** PUTs a file to a presigned upload URL, streaming it. */
export function uploadFile(upload: SignedUrl, file: string): Promise<void> {
  const url = new URL(upload.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: "PUT", headers: upload.headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk.slice(0, 500)));
      res.on("end", () =>
        (res.statusCode ?? 0) < 300
          ? resolve()
          : reject(new CliError(`the upload failed: HTTP ${res.statusCode} ${text}`)),
      );
    });
    req.on("error", (error) => reject(new CliError(`the upload failed: ${error.message}`)));
    const source = createReadStream(file);
    source.on("error", (error) => req.destroy(error));
    source.pipe(req);
  });
}

/** Downloads a presigned URL to a file, or to stdout. */
export async function downloadTo(download: SignedUrl, out: string | undefined): Promise<void> {
  const response = await fetch(download.url);
  if (!response.ok || response.body === null)
    throw new CliError(`the download failed: HTTP ${response.status}`);
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>);
  if (out === undefined) {
    for await (const chunk of body) process.stdout.write(chunk as Buffer);
    return;
  }
  await pipeline(body, createWriteStream(out));
}
