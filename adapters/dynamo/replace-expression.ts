import type { NativeAttributeValue } from "@aws-sdk/lib-dynamodb";

/** Fields an admin owns on an item, besides the key and the table's own fields. */
export const ADMIN_META_FIELDS = ["version", "createdAt", "updatedAt", "updatedBy"];

/**
 * An update that sets the given fields and removes the managed ones that are absent, so the item ends
 * as `fields` plus whatever the service owns. Binds `#version` for the caller's condition.
 */
export function replaceExpression(
  fields: Record<string, unknown>,
  managed: string[],
  expectedVersion?: number,
): {
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, NativeAttributeValue>;
} {
  const names: Record<string, string> = { "#version": "version" };
  const values: Record<string, NativeAttributeValue> =
    expectedVersion === undefined ? {} : { ":expectedVersion": expectedVersion };
  const sets: string[] = [];
  const removes: string[] = [];
  managed.forEach((field, i) => {
    const value = fields[field];
    const name = field === "version" ? "#version" : `#f${i}`;
    names[name] = field;
    if (value === undefined) removes.push(name);
    else {
      values[`:f${i}`] = value;
      sets.push(`${name} = :f${i}`);
    }
  });
  return {
    UpdateExpression: [
      sets.length ? `SET ${sets.join(", ")}` : "",
      removes.length ? `REMOVE ${removes.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join(" "),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}
