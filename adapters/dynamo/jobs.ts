import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { JobStore } from "../../domain/jobs/ports.ts";
import type { Job } from "../../domain/jobs/types.ts";
import type { Page, PageRequest } from "../../domain/ports.ts";
import { indexNames } from "../tables.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/** The constant every job is listed under in the `byCreation` index. */
const LISTED = "job";

function toJob(item: Item, table: string): Job {
  const { listed: _listed, ...job } = item;
  const what = `job in ${table}`;
  if (typeof job.id !== "string") throw invalidRecord(what, "id is not a string");
  if (typeof job.version !== "number") throw invalidRecord(`${what} ${job.id}`, "version is not a number");
  if (typeof job.kind !== "string" || typeof job.state !== "string")
    throw invalidRecord(`${what} ${job.id}`, "kind or state is missing");
  return job as Job;
}

/** The jobs table (key `id`; index `byCreation`): every write conditional. */
export class DynamoJobs extends DynamoTable implements JobStore {
  /** Writes a new job; false when the id exists. */
  async create(job: Job): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(job.id), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...job, listed: LISTED },
          ConditionExpression: "attribute_not_exists(id)",
        }),
      ),
    );
  }

  /** One job, read consistently, or undefined. */
  async get(id: string): Promise<Job | undefined> {
    const output = await send("GetItem", this.#resource(id), () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toJob(output.Item, this.table);
  }

  /** Replaces the job if the stored version is `expectedVersion`. */
  async update(job: Job, expectedVersion: number): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(job.id), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...job, listed: LISTED },
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        }),
      ),
    );
  }

  /** A page of jobs, newest first. */
  async list(page: PageRequest): Promise<Page<Job>> {
    const output = await send("Query", `jobs in ${this.table}`, () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: indexNames.jobsByCreation,
          KeyConditionExpression: "listed = :listed",
          ExpressionAttributeValues: { ":listed": LISTED },
          ScanIndexForward: false,
          ...pageInput(page),
        }),
      ),
    );
    return toPage(output, (item) => toJob(item, this.table));
  }

  #resource(id: string): string {
    return `job ${id} in ${this.table}`;
  }
}
