import { ApiError } from "../api/client.ts";
import type { JobView } from "../api/contract.ts";
import type { NodeAdminClient } from "./api-client.ts";

const ENDED = new Set(["succeeded", "failed", "cancelled"]);
/** How many polls in a row `followJob` tries again when the API gave no answer. */
const FOLLOW_RETRIES = 5;

/** Polls a job until it ends, with a progress bar on a terminal; answers the ended job. */
export async function followJob(api: NodeAdminClient, id: string, intervalMs = 300): Promise<JobView> {
  const bar = process.stderr.isTTY
    ? new (await import("cli-progress")).SingleBar({
        stream: process.stderr,
        format: "{kind} [{bar}] {value}/{total} | {state}",
      })
    : undefined;
  let started = false;
  try {
    for (let failures = 0; ; ) {
      let job: JobView;
      try {
        job = await api.jobs.get(id);
        failures = 0;
      } catch (error) {
        // The API answered (an ApiError): that is the answer. No answer (a connection reset, a server busy
        // past its keep-alive): reading a job changes nothing, so ask again, a few times.
        failures += 1;
        if (error instanceof ApiError || failures > FOLLOW_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, intervalMs * 2 ** failures));
        continue;
      }
      const total = job.progress.total ?? Math.max(job.progress.done, 1);
      if (bar && !started) {
        bar.start(total, job.progress.done, { kind: job.kind, state: job.state });
        started = true;
      }
      bar?.setTotal(total);
      bar?.update(job.progress.done, { state: job.state });
      if (ENDED.has(job.state)) return job;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  } finally {
    bar?.stop();
  }
}
