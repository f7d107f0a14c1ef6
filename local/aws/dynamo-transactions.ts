/**
 * DynamoDB `TransactWriteItems` for the local AWS endpoint, served on top of dynalite (which has no
 * transactions). The endpoint's DynamoDB requests pass through one router here:
 *
 * - plain writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem) hold a write gate shared until their
 *   response is finished; a transaction holds it exclusive, so no plain write and no other transaction
 *   runs while it is under way;
 * - a transaction reads the current image of every item it names (consistent GetItem), then applies its
 *   actions one by one as dynalite's own conditional writes (so GSIs follow), a ConditionCheck as a write
 *   that leaves the item as it was (PutItem of its image, or DeleteItem of an absent item), each with its
 *   own condition, names and values;
 * - when a condition fails (or a write fails on the item's data), every item already written is put back to
 *   its image (PutItem of the old image, DeleteItem if it did not exist) and the answer is a
 *   TransactionCanceledException with one reason per action; when a request error comes back from dynalite
 *   (bad expression, unknown attribute value, ...), the items are put back the same way and that error is
 *   the transaction's answer;
 * - `ClientRequestToken`: a token seen on a successful transaction in the last 10 minutes answers success
 *   again without applying anything when the actions are the same, IdempotentParameterMismatchException
 *   when they differ. Tokens are kept in memory, not across a restart;
 * - with a data directory, the images are written to a journal before the first write and removed once the
 *   transaction is applied or put back: a process killed in the middle of a transaction has it put back
 *   at the next start, before anything else is served.
 *
 * Known differences from DynamoDB: reads (GetItem, Query, Scan, BatchGetItem) are not gated, so a reader may
 * see a transaction half applied, or an item written and then put back by a cancelled one, for a moment;
 * transactions run one at a time instead of failing with TransactionConflict; a transaction that completed
 * just before the process was killed, but whose answer was not sent, is put back at the next start (its
 * caller saw no success); ConsumedCapacity and ItemCollectionMetrics are not returned.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { canonicalJson } from "./canonical-json.ts";
import { type IndexRepair, repairIndexes } from "./dynamo-index-repair.ts";
import { type ItemImage, TransactionJournal } from "./dynamo-journal.ts";
import { WriteGate } from "./write-gate.ts";

/** The most actions one transaction may carry. */
export const MAX_TRANSACT_ITEMS = 100;
/** How long a successful transaction's ClientRequestToken is remembered. */
export const CLIENT_TOKEN_TTL_MS = 10 * 60_000;
const MAX_TOKEN_LENGTH = 36;
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

const PLAIN_WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"]);
const TRANSACT_TARGET = "DynamoDB_20120810.TransactWriteItems";
const ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#";

/**
 * Write errors that depend on the item's data rather than on the request: in a transaction they cancel it
 * with the reason `ValidationError` instead of failing it as a ValidationException.
 */
const DATA_VALIDATION_ERRORS = [
  "An operand in the update expression has an incorrect data type",
  "The document path provided in the update expression is invalid for update",
  "The provided expression refers to an attribute that does not exist in the item",
  "Item size to update has exceeded the maximum allowed size",
  "Type mismatch for attribute to update",
  "The update expression attempted to update the secondary index key to unsupported type",
];

type AttributeValue = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

/** An error answered to the caller as a DynamoDB JSON error. */
class DynamoError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "DynamoError";
  }
}

const validation = (message: string) => new DynamoError(400, "ValidationException", message);
const constraint = (path: string, what: string) =>
  validation(
    `1 validation error detected: Value at '${path}' failed to satisfy constraint: Member must ${what}`,
  );

type ActionKind = "ConditionCheck" | "Put" | "Update" | "Delete";
const ACTION_KINDS: readonly ActionKind[] = ["ConditionCheck", "Put", "Update", "Delete"];

interface Action {
  kind: ActionKind;
  tableName: string;
  /** Put: the item; the others: the key. */
  item: Item;
  body: Record<string, unknown>;
  returnOldOnFailure: boolean;
}

interface CancellationReason {
  Code: string;
  Message?: string;
  Item?: Item;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The fields of a TransactWriteItems action a single write takes over. */
const EXPRESSION_FIELDS = ["ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues"];

/** Checks what dynalite's own writes would not: the transaction's shape. Throws a ValidationException. */
function parseActions(input: Record<string, unknown>): Action[] {
  const items = input.TransactItems;
  if (items === undefined || items === null) throw constraint("transactItems", "not be null");
  if (!Array.isArray(items))
    throw new DynamoError(400, "SerializationException", "TransactItems must be a list");
  if (items.length < 1) throw constraint("transactItems", "have length greater than or equal to 1");
  if (items.length > MAX_TRANSACT_ITEMS)
    throw constraint("transactItems", `have length less than or equal to ${MAX_TRANSACT_ITEMS}`);
  const token = input.ClientRequestToken;
  if (
    token !== undefined &&
    (typeof token !== "string" || token.length < 1 || token.length > MAX_TOKEN_LENGTH)
  )
    throw constraint("clientRequestToken", `have length between 1 and ${MAX_TOKEN_LENGTH}`);

  return items.map((entry, index) => {
    const path = `transactItems.${index + 1}.member`;
    const kinds = isObject(entry) ? ACTION_KINDS.filter((kind) => entry[kind] !== undefined) : [];
    const kind = kinds[0];
    if (!isObject(entry) || kind === undefined || kinds.length > 1)
      throw validation("TransactItems can only contain one of Check, Put, Update or Delete");
    const action = entry[kind];
    const lower = `${path}.${kind === "ConditionCheck" ? "conditionCheck" : kind.toLowerCase()}`;
    if (!isObject(action)) throw constraint(lower, "not be null");
    const tableName = action.TableName;
    if (typeof tableName !== "string") throw constraint(`${lower}.tableName`, "not be null");
    const itemField = kind === "Put" ? "Item" : "Key";
    const item = action[itemField];
    if (!isObject(item)) throw constraint(`${lower}.${itemField.toLowerCase()}`, "not be null");
    if (kind === "Update" && typeof action.UpdateExpression !== "string")
      throw constraint(`${lower}.updateExpression`, "not be null");
    if (kind === "ConditionCheck" && typeof action.ConditionExpression !== "string")
      throw constraint(`${lower}.conditionExpression`, "not be null");
    const onFailure = action.ReturnValuesOnConditionCheckFailure;
    if (onFailure !== undefined && onFailure !== "ALL_OLD" && onFailure !== "NONE")
      throw constraint(
        `${lower}.returnValuesOnConditionCheckFailure`,
        "satisfy enum value set: [ALL_OLD, NONE]",
      );

    const body: Record<string, unknown> = { TableName: tableName, [itemField]: item };
    if (kind === "Update") body.UpdateExpression = action.UpdateExpression;
    for (const field of EXPRESSION_FIELDS) if (action[field] !== undefined) body[field] = action[field];
    return { kind, tableName, item: item as Item, body, returnOldOnFailure: onFailure === "ALL_OLD" };
  });
}

/** A number in one spelling per value (`1`, `1.0` and `10e-1` are the same key in DynamoDB). */
function canonicalNumber(text: string): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!match) return text;
  const [, sign, whole = "", fraction = "", exponent = "0"] = match;
  const digits = `${whole}${fraction}`;
  const firstNonZero = digits.search(/[1-9]/);
  if (firstNonZero < 0) return "0";
  const significant = digits.slice(firstNonZero).replace(/0+$/, "");
  const scale = Number(exponent) + whole.length - firstNonZero;
  return `${sign === "-" ? "-" : ""}0.${significant}e${scale}`;
}

interface TableKey {
  names: { name: string; type: string }[];
}

interface DynaliteAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** A client for dynalite's unadvertised loopback port (requests are not gated there). */
class Dynalite {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 16 });
  readonly #port: number;

  constructor(server: Server) {
    this.#port = (server.address() as AddressInfo).port;
  }

  call(operation: string, body: unknown): Promise<DynaliteAnswer> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: this.#port,
          method: "POST",
          path: "/",
          agent: this.#agent,
          headers: {
            "content-type": "application/x-amz-json-1.0",
            "content-length": Buffer.byteLength(payload),
            "x-amz-target": `DynamoDB_20120810.${operation}`,
            "x-amz-date": "20260101T000000Z",
            authorization:
              "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              resolve({ status: res.statusCode ?? 500, body: text ? JSON.parse(text) : {} });
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** The answer's body on success; a DynamoError carrying dynalite's own error otherwise. */
  async ok(operation: string, body: unknown): Promise<Record<string, unknown>> {
    const answer = await this.call(operation, body);
    if (answer.status === 200) return answer.body;
    throw toDynamoError(answer);
  }

  close(): void {
    this.#agent.destroy();
  }
}

function toDynamoError(answer: DynaliteAnswer): DynamoError {
  const type = String(answer.body.__type ?? "InternalServerError");
  const message = String(answer.body.message ?? answer.body.Message ?? "");
  return new DynamoError(answer.status, type.slice(type.indexOf("#") + 1), message);
}

function errorType(answer: DynaliteAnswer): string {
  const type = String(answer.body.__type ?? "");
  return type.slice(type.indexOf("#") + 1);
}

export interface DynamoRouterOptions {
  /** Where a transaction's images are kept while it is under way (in a persistent data directory). */
  journalPath?: string;
  /** The clock for ClientRequestToken expiry; default Date.now. */
  now?: () => number;
}

interface RememberedToken {
  fingerprint: string;
  expiresAt: number;
}

/** Serves DynamoDB requests for the endpoint's router: plain ones to dynalite, transactions here. */
export interface DynamoRouter {
  /**
   * Puts back the items of a transaction a killed process left half applied, then, after an unclean stop
   * (`indexes`), brings secondary indexes back in line with their tables (dynamo-index-repair.ts); call
   * before serving.
   */
  recover(options?: { indexes?: boolean }): Promise<IndexRepair | undefined>;
  route(req: IncomingMessage, res: ServerResponse): void;
  close(): void;
}

/** Builds the DynamoDB router over a listening dynalite server. */
export function createDynamoRouter(dynamo: Server, options: DynamoRouterOptions = {}): DynamoRouter {
  const now = options.now ?? Date.now;
  const journal = options.journalPath ? new TransactionJournal(options.journalPath) : undefined;
  const gate = new WriteGate();
  const dynalite = new Dynalite(dynamo);
  const tokens = new Map<string, RememberedToken>();

  async function describeKeys(tableNames: Iterable<string>): Promise<Map<string, TableKey>> {
    const keys = new Map<string, TableKey>();
    for (const tableName of tableNames) {
      const answer = await dynalite.call("DescribeTable", { TableName: tableName });
      if (answer.status !== 200) {
        if (errorType(answer) === "ResourceNotFoundException")
          throw new DynamoError(400, "ResourceNotFoundException", "Requested resource not found");
        throw toDynamoError(answer);
      }
      const table = answer.body.Table as {
        KeySchema: { AttributeName: string }[];
        AttributeDefinitions: { AttributeName: string; AttributeType: string }[];
      };
      keys.set(tableName, {
        names: table.KeySchema.map(({ AttributeName }) => ({
          name: AttributeName,
          type:
            table.AttributeDefinitions.find((d) => d.AttributeName === AttributeName)?.AttributeType ?? "S",
        })),
      });
    }
    return keys;
  }

  /** The action's item key, checked against the table's key schema the way a single write checks it. */
  function keyOf(action: Action, table: TableKey): Item {
    const key: Item = {};
    for (const { name, type } of table.names) {
      const value = action.item[name];
      if (action.kind === "Put") {
        if (!isObject(value))
          throw validation(`One or more parameter values were invalid: Missing the key ${name} in the item`);
        if (value[type] === undefined)
          throw validation(
            `One or more parameter values were invalid: Type mismatch for key ${name} expected: ${type} actual: ${Object.keys(value)[0]}`,
          );
      } else if (!isObject(value) || value[type] === undefined) {
        throw validation("The provided key element does not match the schema");
      }
      key[name] = value;
    }
    if (action.kind !== "Put" && Object.keys(action.item).length !== table.names.length)
      throw validation("The provided key element does not match the schema");
    return key;
  }

  function itemIdentity(tableName: string, key: Item): string {
    const parts = Object.keys(key)
      .sort()
      .map((name) => {
        const value = key[name] as AttributeValue;
        const [type = "", raw] = Object.entries(value)[0] ?? [];
        return [name, type, type === "N" ? canonicalNumber(String(raw)) : raw];
      });
    return JSON.stringify([tableName, parts]);
  }

  /** The token's earlier outcome: true to answer success without applying, false when unknown or expired. */
  function replayed(token: string | undefined, fingerprint: string): boolean {
    const current = now();
    for (const [old, remembered] of tokens) {
      if (remembered.expiresAt > current) break;
      tokens.delete(old);
    }
    if (token === undefined) return false;
    const remembered = tokens.get(token);
    if (!remembered) return false;
    if (remembered.fingerprint !== fingerprint)
      throw new DynamoError(
        400,
        "IdempotentParameterMismatchException",
        "The request uses the same client token as a previous, but non-identical request.",
      );
    return true;
  }

  /** Applies one action as a single conditional write; answers its cancellation reason. */
  async function apply(action: Action, image: Item | undefined, key: Item): Promise<CancellationReason> {
    let answer: DynaliteAnswer;
    if (action.kind === "ConditionCheck") {
      const expressions = { ...action.body };
      delete expressions.Key;
      answer = image
        ? await dynalite.call("PutItem", { ...expressions, Item: image })
        : await dynalite.call("DeleteItem", { ...expressions, Key: key });
    } else {
      const operation =
        action.kind === "Put" ? "PutItem" : action.kind === "Update" ? "UpdateItem" : "DeleteItem";
      answer = await dynalite.call(operation, action.body);
    }
    if (answer.status === 200) return { Code: "None" };
    const type = errorType(answer);
    const message = String(answer.body.message ?? answer.body.Message ?? "");
    if (type === "ConditionalCheckFailedException") {
      const reason: CancellationReason = {
        Code: "ConditionalCheckFailed",
        Message: "The conditional request failed",
      };
      if (action.returnOldOnFailure && image) reason.Item = image;
      return reason;
    }
    if (type === "ValidationException" && DATA_VALIDATION_ERRORS.some((known) => message.startsWith(known)))
      return { Code: "ValidationError", Message: message };
    throw toDynamoError(answer);
  }

  /** Puts one item back to its image. */
  async function restore({ tableName, key, image }: ItemImage): Promise<void> {
    if (image) await dynalite.ok("PutItem", { TableName: tableName, Item: image });
    else await dynalite.ok("DeleteItem", { TableName: tableName, Key: key });
  }

  /** Puts every written item back to its image, last first, then forgets the journal. */
  async function restoreAll(written: ItemImage[]): Promise<void> {
    for (const item of [...written].reverse()) await restore(item);
    journal?.clear();
  }

  async function transact(input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const actions = parseActions(input);
    const tables = await describeKeys(new Set(actions.map((action) => action.tableName)));
    const keys = actions.map((action) => keyOf(action, tables.get(action.tableName) as TableKey));
    const identities = new Set(keys.map((key, i) => itemIdentity((actions[i] as Action).tableName, key)));
    if (identities.size !== actions.length)
      throw validation("Transaction request cannot include multiple operations on one item");
    const token = typeof input.ClientRequestToken === "string" ? input.ClientRequestToken : undefined;
    const fingerprint = createHash("sha256").update(canonicalJson(input.TransactItems)).digest("hex");

    await gate.enterExclusive();
    try {
      if (replayed(token, fingerprint)) return {};
      const images = await Promise.all(
        actions.map(async (action, i) => {
          const got = await dynalite.ok("GetItem", {
            TableName: action.tableName,
            Key: keys[i],
            ConsistentRead: true,
          });
          return got.Item as Item | undefined;
        }),
      );
      journal?.record(
        actions.flatMap((action, i) =>
          action.kind === "ConditionCheck"
            ? []
            : [{ tableName: action.tableName, key: keys[i] as Item, image: images[i] }],
        ),
      );
      const reasons: CancellationReason[] = [];
      const written: ItemImage[] = [];
      try {
        for (const [i, action] of actions.entries()) {
          const key = keys[i] as Item;
          const image = images[i];
          const reason = await apply(action, image, key);
          reasons.push(reason);
          if (reason.Code === "None" && action.kind !== "ConditionCheck")
            written.push({ tableName: action.tableName, key, image });
        }
      } catch (error) {
        await restoreAll(written);
        throw error;
      }
      if (reasons.some((reason) => reason.Code !== "None")) {
        await restoreAll(written);
        throw new DynamoError(
          400,
          "TransactionCanceledException",
          `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(", ")}]`,
          { CancellationReasons: reasons },
        );
      }
      journal?.clear();
      if (token !== undefined) tokens.set(token, { fingerprint, expiresAt: now() + CLIENT_TOKEN_TTL_MS });
      return {};
    } finally {
      gate.leaveExclusive();
    }
  }

  function serveTransaction(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      void (async () => {
        try {
          if (tooLarge) throw new DynamoError(413, "RequestEntityTooLarge", "Request body too large");
          if (!req.headers.authorization?.trim().startsWith("AWS4-"))
            throw new DynamoError(
              400,
              "MissingAuthenticationTokenException",
              "Request is missing Authentication Token",
            );
          let input: unknown;
          try {
            input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          } catch {
            throw new DynamoError(
              400,
              "SerializationException",
              "Start of structure or map found where not expected",
            );
          }
          if (!isObject(input))
            throw new DynamoError(
              400,
              "SerializationException",
              "Start of structure or map found where not expected",
            );
          send(res, 200, await transact(input));
        } catch (error) {
          if (error instanceof DynamoError) {
            const message = error.type === "TransactionCanceledException" ? "Message" : "message";
            send(res, error.status, {
              __type: `${ERROR_PREFIX}${error.type}`,
              [message]: error.message,
              ...error.extra,
            });
          } else {
            send(res, 500, {
              __type: `${ERROR_PREFIX}InternalServerError`,
              message: "Internal server error",
            });
          }
        }
      })();
    });
  }

  return {
    async recover(options = {}) {
      const left = journal?.read();
      for (const item of [...(left ?? [])].reverse()) {
        try {
          await restore(item);
        } catch (error) {
          // A table deleted since holds nothing to put back.
          if (!(error instanceof DynamoError && error.type === "ResourceNotFoundException")) throw error;
        }
      }
      if (left) journal?.clear();
      return options.indexes ? repairIndexes((operation, body) => dynalite.ok(operation, body)) : undefined;
    },
    route(req, res) {
      const target = req.headers["x-amz-target"];
      if (target === TRANSACT_TARGET && req.method === "POST") {
        serveTransaction(req, res);
        return;
      }
      const operation = typeof target === "string" ? target.slice(target.indexOf(".") + 1) : "";
      if (!PLAIN_WRITES.has(operation)) {
        dynamo.emit("request", req, res);
        return;
      }
      gate.enterShared(() => {
        let left = false;
        const leave = () => {
          if (left) return;
          left = true;
          gate.leaveShared();
        };
        res.once("finish", leave);
        res.once("close", leave);
        dynamo.emit("request", req, res);
      });
    },
    close() {
      dynalite.close();
    },
  };
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/x-amz-json-1.0",
    "content-length": Buffer.byteLength(text),
    "x-amzn-requestid": randomBytes(26).toString("hex").toUpperCase(),
  });
  res.end(text);
}
