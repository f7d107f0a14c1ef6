import { ImportLimitError } from "../admin/import-lines.ts";

/** One line of a file and the byte offset just after it (its newline included). */
export interface FileLine {
  text: string;
  /** 1-based line number in the file. */
  line: number;
  end: number;
}

/**
 * Splits a file's bytes, read from byte `start` (the start of line `firstLine`), into UTF-8 lines on `\n`,
 * with the offset after each; a line longer than `lineBytes` throws ImportLimitError naming it.
 */
export async function* fileLines(
  chunks: AsyncIterable<Uint8Array>,
  start: number,
  firstLine: number,
  lineBytes: number,
): AsyncGenerator<FileLine> {
  let parts: Uint8Array[] = [];
  let held = 0;
  let offset = start;
  let line = firstLine;
  for await (const chunk of chunks) {
    let from = 0;
    while (from < chunk.length) {
      const newline = chunk.indexOf(10, from);
      const end = newline < 0 ? chunk.length : newline;
      held += end - from;
      if (held > lineBytes) {
        throw new ImportLimitError(
          "line",
          line,
          `line ${line} is longer than ${lineBytes} bytes; the import stopped there`,
        );
      }
      parts.push(chunk.subarray(from, end));
      if (newline < 0) break;
      offset += held + 1;
      yield { text: Buffer.concat(parts).toString("utf8"), line, end: offset };
      parts = [];
      held = 0;
      line += 1;
      from = newline + 1;
    }
  }
  if (held > 0) yield { text: Buffer.concat(parts).toString("utf8"), line, end: offset + held };
}

/** The number of `"` in a text (an even running count ends a CSV record: quotes come in pairs). */
export function quoteCount(text: string): number {
  let count = 0;
  for (let i = text.indexOf('"'); i >= 0; i = text.indexOf('"', i + 1)) count += 1;
  return count;
}
