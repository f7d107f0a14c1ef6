/*
 * The field-by-field difference between two versions of a record's admin fields, as a dry run reports it
 * (import, restore): each field whose value changes, with its value before and after (absent: unset). A
 * field holding an object (attributes, a mapping's policy) is compared key by key (`attributes.site`).
 */

/** One field that changes, with its value before and after (undefined: not set). */
export interface FieldChange {
  field: string;
  before?: unknown;
  after?: unknown;
}

/** The fields whose values differ between `before` and `after`, in the order they first appear. */
export function fieldChanges(before: object, after: object, prefix = ""): FieldChange[] {
  const was = before as Record<string, unknown>;
  const now = after as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(was), ...Object.keys(now)])];
  return fields.flatMap((field): FieldChange[] => {
    const [a, b] = [was[field], now[field]];
    if (canonicalText(a) === canonicalText(b)) return [];
    if (isPlainObject(a) && isPlainObject(b)) return fieldChanges(a, b, `${prefix}${field}.`);
    return [
      {
        field: `${prefix}${field}`,
        ...(a !== undefined ? { before: a } : {}),
        ...(b !== undefined ? { after: b } : {}),
      },
    ];
  });
}

const isPlainObject = (value: unknown): value is object =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** True when two records' fields hold the same values, whatever the order of their keys. */
export const sameValues = (a: unknown, b: unknown): boolean => canonicalText(a) === canonicalText(b);

/** JSON text with object keys sorted, so equal values give equal text. */
function canonicalText(value: unknown): string {
  return JSON.stringify(canonical(value)) ?? "undefined";
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}
