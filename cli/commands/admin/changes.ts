/** A record's field changes as one cell of text: `field: before -> after`, one change a line. */
export function changesText(
  changes: { field: string; before?: unknown; after?: unknown }[] | undefined,
): string {
  if (changes === undefined) return "";
  const value = (v: unknown) => (v === undefined ? "(unset)" : typeof v === "string" ? v : JSON.stringify(v));
  return changes.map((c) => `${c.field}: ${value(c.before)} -> ${value(c.after)}`).join("\n");
}
