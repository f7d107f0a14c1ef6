import * as z from "zod/mini";
import { ValidationError } from "./errors.ts";
import type { RegisteredEvent } from "./types.ts";

const hex64 = z.string().check(z.regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters"));

/** The certificate-registered event; unknown extra fields (such as `sourceIp`) are tolerated. */
export const registeredEventSchema = z.object({
  certificateId: hex64,
  caCertificateId: hex64,
  timestamp: z.number(),
  certificateStatus: z.string(),
  awsAccountId: z.string().check(z.regex(/^\d{12}$/, "must be a 12-digit account id")),
  certificateRegistrationTimestamp: z.optional(
    z.nullable(z.union([z.string().check(z.regex(/^\d+$/, "must be a string of milliseconds")), z.number()])),
  ),
});

/** Parses a registered event, or throws a ValidationError that names every field at fault. */
export function parseRegisteredEvent(input: unknown): RegisteredEvent {
  const value = typeof input === "string" ? parseJson(input) : input;
  const result = registeredEventSchema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({
      path: issue.path.join(".") || "(event)",
      message: issue.message,
    }));
    throw new ValidationError(
      `malformed certificate-registered event: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      issues,
    );
  }
  const { certificateRegistrationTimestamp: registered, ...rest } = result.data;
  return {
    ...rest,
    certificateRegistrationTimestamp:
      registered === undefined || registered === null ? null : String(registered),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ValidationError("malformed certificate-registered event: body is not JSON", [], { cause });
  }
}
