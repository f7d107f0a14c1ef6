import type { X509Certificate } from "@peculiar/x509";
import { ATTRIBUTE_NAME_PATTERN, ATTRIBUTE_VALUE_PATTERN, isThingName } from "../../../domain/naming.ts";
import { invalid } from "./errors.ts";

/**
 * Helpers the IoT emulator's resource families share: paging, times and validity, copies and
 * comparisons of records, and the name checks several families apply.
 */

/** A certificate id as AWS IoT writes it: 64 lowercase hex digits. */
export const CERTIFICATE_ID = /^[0-9a-f]{64}$/;

const MAX_ATTRIBUTES_UNTYPED = 3;
const MAX_ATTRIBUTES_TYPED = 50;

export interface Page<T> {
  items: T[];
  next?: string;
}

/** The current time in epoch seconds, as the records keep it. */
export const nowSeconds = (): number => Date.now() / 1000;

/** A deep copy of a record, so callers never hold the registry's own objects. */
export const copy = <T>(value: T): T => structuredClone(value);

/** A certificate's validity window in epoch seconds. */
export function validity(cert: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: cert.notBefore.getTime() / 1000, notAfter: cert.notAfter.getTime() / 1000 };
}

/** Offset-based page tokens, opaque to clients. */
export function paginate<T>(items: T[], token: string | undefined, limit: number): Page<T> {
  let offset = 0;
  if (token !== undefined && token !== "") {
    const decoded = Number(Buffer.from(token, "base64url").toString("utf8"));
    if (!Number.isInteger(decoded) || decoded < 0) throw invalid("The pagination token is invalid");
    offset = decoded;
  }
  const slice = items.slice(offset, offset + limit);
  const end = offset + slice.length;
  return {
    items: slice,
    next: end < items.length ? Buffer.from(String(end)).toString("base64url") : undefined,
  };
}

/** Validates a page size against the operation's modelled range. */
export function pageLimit(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw invalid(`Page size must be an integer between 1 and ${max}`);
  return value;
}

/** True when two JSON values are equal, whatever the order of their keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}

/** Refuses a thing, thing type or thing group name AWS IoT would refuse. */
export function checkThingName(name: string, what = "thing name"): void {
  if (!isThingName(name))
    throw invalid(`Invalid ${what}: must match [a-zA-Z0-9:_-]+ with 1 to 128 characters`);
}

/** Refuses attribute names, values or counts AWS IoT would refuse (a typed thing may have more). */
export function checkAttributes(attributes: Record<string, string>, typed: boolean): void {
  const names = Object.keys(attributes);
  const max = typed ? MAX_ATTRIBUTES_TYPED : MAX_ATTRIBUTES_UNTYPED;
  if (names.length > max)
    throw invalid(`A thing ${typed ? "with" : "without"} a thing type can have at most ${max} attributes`);
  for (const name of names) {
    const value = attributes[name];
    if (!ATTRIBUTE_NAME_PATTERN.test(name)) throw invalid(`Invalid attribute name: ${name}`);
    if (typeof value !== "string" || !ATTRIBUTE_VALUE_PATTERN.test(value))
      throw invalid(`Invalid value for attribute ${name}`);
  }
}

/** A page of certificates (device or CA) in creation order, newest first unless ascending is asked for. */
export function certificatePage<T extends { creationDate: number; certificateId: string }>(
  list: T[],
  input: { ascendingOrder?: boolean; marker?: string; pageSize?: number },
): Page<T> {
  const sorted = [...list].sort(
    (a, b) => a.creationDate - b.creationDate || (a.certificateId < b.certificateId ? -1 : 1),
  );
  if (input.ascendingOrder !== true) sorted.reverse();
  return paginate(sorted, input.marker, pageLimit(input.pageSize, 25, 250));
}
