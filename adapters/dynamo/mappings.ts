import { DeleteCommand, GetCommand, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { MappingStore, Page, PageRequest } from "../../domain/ports.ts";
import type { PolicyMapping } from "../../domain/types.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

function toPolicyMapping(item: Item, table: string): PolicyMapping {
  const { selector, version } = item;
  const what = `policy mapping in ${table}`;
  if (typeof selector !== "string") throw invalidRecord(what, "selector is not a string");
  if (typeof version !== "number") throw invalidRecord(`${what} ${selector}`, "version is not a number");
  return { ...item, selector, version };
}

/** The policy-mapping table (key `selector`). */
export class DynamoMappings extends DynamoTable implements MappingStore {
  /**
   * The mappings that exist among `selectors` (duplicates ignored), in no particular order, read
   * consistently; unprocessed keys are read again with backoff, TransientError when some remain.
   */
  async getMany(selectors: string[]): Promise<PolicyMapping[]> {
    const items = await this.batchGet([...new Set(selectors)].map((selector) => ({ selector })));
    return items.map((item) => toPolicyMapping(item, this.table));
  }

  /** One mapping, or undefined. */
  async get(selector: string): Promise<PolicyMapping | undefined> {
    const output = await send("GetItem", this.#resource(selector), () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { selector }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toPolicyMapping(output.Item, this.table);
  }

  /** A page of mappings (scan order). */
  async list(page: PageRequest): Promise<Page<PolicyMapping>> {
    const output = await send("Scan", `mappings in ${this.table}`, () =>
      this.doc.send(new ScanCommand({ TableName: this.table, ...pageInput(page) })),
    );
    return toPage(output, (item) => toPolicyMapping(item, this.table));
  }

  /** Writes a new mapping; false when the selector has one already. */
  async create(mapping: PolicyMapping): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(mapping.selector), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: mapping,
          ConditionExpression: "attribute_not_exists(selector)",
        }),
      ),
    );
  }

  /** Replaces the mapping if the stored version is `expectedVersion`. */
  async update(mapping: PolicyMapping, expectedVersion: number): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(mapping.selector), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: mapping,
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        }),
      ),
    );
  }

  /** Deletes the mapping if the stored version is `expectedVersion`. */
  async remove(selector: string, expectedVersion: number): Promise<boolean> {
    return sendConditional("DeleteItem", this.#resource(selector), () =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { selector },
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        }),
      ),
    );
  }

  #resource(selector: string): string {
    return `mapping ${selector} in ${this.table}`;
  }
}
