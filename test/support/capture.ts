import { afterEach, beforeEach, vi } from "vitest";

/** Captures what the code under test writes to stdout and stderr, test by test. */
export function captureOutput(): { stdout: () => string; stderr: () => string; reset: () => void } {
  let out = "";
  let err = "";
  beforeEach(() => {
    out = "";
    err = "";
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());
  return {
    stdout: () => out,
    stderr: () => err,
    reset: () => {
      out = "";
      err = "";
    },
  };
}
