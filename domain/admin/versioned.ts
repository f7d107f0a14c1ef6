import { PreconditionFailedError, PreconditionRequiredError } from "../errors.ts";
import type { LedgerPort } from "../ports.ts";
import type { AdminContext } from "./deps.ts";

/*
 * Every admin change to a versioned record (allowlist record, mapping, lot):
 *  1. checks the caller's precondition (create: none may exist; update: the version they read),
 *  2. writes conditionally (a lost race is PreconditionFailedError, never a silent overwrite),
 *  3. stamps version, createdAt, updatedAt and updatedBy, and
 *  4. appends a ledger entry of kind "admin" naming the actor and the change.
 * Input validation comes first, in each use case.
 */

/** The caller's precondition on a write: create (none may exist) or update (at the version read). */
export type Precondition = { create: true } | { version: number } | undefined;

/** A record with the answer to "was it created?". */
export interface Written<T> {
  value: T;
  created: boolean;
}

/** The audit fields of a versioned record as stored (a lot may predate versions). */
export interface Audit {
  version?: number;
  createdAt?: string;
  updatedAt?: string;
  updatedBy?: string;
}

/** A record without its audit fields: what a use case composes. */
export type Content<T> = Omit<T, keyof Audit>;

/** The audit fields a write stamps. */
export interface Stamp {
  version: number;
  createdAt?: string;
  updatedAt: string;
  updatedBy: string;
}

/** A store of one kind of versioned record, `C` being a record's content without its audit fields. */
export interface VersionedStore<C> {
  get(key: string): Promise<(C & Audit) | undefined>;
  /** Writes a new record; false when one exists already. */
  create(record: C & Stamp): Promise<boolean>;
  /** Replaces the record if the stored version is `expectedVersion` (0: stored without one); false otherwise. */
  update(record: C & Stamp, expectedVersion: number): Promise<boolean>;
}

/** One versioned write, as a use case describes it. */
export interface VersionedWrite<C> {
  actor: string;
  precondition: Precondition;
  /** The record's key in its store. */
  key: string;
  /** How messages name the record ("allowlist record dev-1"). */
  what: string;
  /** Whose ledger the change goes to: the device id, or a mapping's or lot's ledger key. */
  ledgerKey: string;
  /**
   * The record's content from the admin fields, over the stored record on an update; and the admin
   * fields the ledger records as `after`.
   */
  compose(current: (C & Audit) | undefined): { content: C; fields: object };
  /** The admin fields of a stored record, recorded as `before` of an update; left out when not given. */
  fieldsOf?(current: C & Audit): object;
}

/** Creates or updates a versioned record under the caller's precondition; see the steps at the top. */
export async function writeVersioned<C extends object>(
  context: AdminContext,
  store: VersionedStore<C>,
  write: VersionedWrite<C>,
): Promise<Written<C & Stamp>> {
  const { actor, what } = write;
  const condition = requirePrecondition(write.precondition, what);
  const now = context.deps.clock.now().toISOString();
  const stamp = { updatedAt: now, updatedBy: actor };
  if ("create" in condition) {
    const { content, fields } = write.compose(undefined);
    const record: C & Stamp = { ...content, version: 1, createdAt: now, ...stamp };
    if (!(await store.create(record))) throw new PreconditionFailedError({ kind: "exists", what });
    await recordChange(context.retried.ledger, actor, write.ledgerKey, now, {
      action: "create",
      after: fields,
      version: 1,
    });
    return { value: record, created: true };
  }
  const current = checkVersion(await store.get(write.key), condition.version, what);
  const { content, fields } = write.compose(current);
  const record: C & Stamp = {
    ...content,
    version: condition.version + 1,
    ...(current.createdAt !== undefined ? { createdAt: current.createdAt } : {}),
    ...stamp,
  };
  if (!(await store.update(record, condition.version))) throw lostRace(what);
  await recordChange(context.retried.ledger, actor, write.ledgerKey, now, {
    action: "update",
    ...(write.fieldsOf ? { before: write.fieldsOf(current) } : {}),
    after: fields,
    version: record.version,
    previousVersion: condition.version,
  });
  return { value: record, created: false };
}

/** The precondition a write must name; PreconditionRequiredError when it names none. */
export function requirePrecondition(
  precondition: Precondition,
  what: string,
): { create: true } | { version: number } {
  if (precondition === undefined) throw new PreconditionRequiredError(what);
  return precondition;
}

/** Checks that an update names the stored version; answers the stored record. */
export function checkVersion<T extends Audit>(current: T | undefined, version: number, what: string): T {
  if (current === undefined) throw new PreconditionFailedError({ kind: "missing", what, version });
  const stored = current.version ?? 0;
  if (stored !== version) throw new PreconditionFailedError({ kind: "stale", what, version, stored });
  return current;
}

/** The error of a conditional write that found the record changed since it was read. */
export const lostRace = (what: string): PreconditionFailedError =>
  new PreconditionFailedError({ kind: "changed", what });

/** Appends an admin ledger entry: who changed what, when. */
export function recordChange(
  ledger: LedgerPort,
  actor: string,
  ledgerKey: string,
  at: string,
  change: Record<string, unknown>,
): Promise<void> {
  return ledger.append({ deviceId: ledgerKey, at, kind: "admin", actor, change });
}
