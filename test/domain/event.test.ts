import { describe, expect, it } from "vitest";
import { ValidationError } from "../../domain/errors.ts";
import { parseRegisteredEvent } from "../../domain/event.ts";

const valid = {
  certificateId: "a".repeat(64),
  caCertificateId: "b".repeat(64),
  timestamp: 1700000000000,
  certificateStatus: "PENDING_ACTIVATION",
  awsAccountId: "123456789012",
  certificateRegistrationTimestamp: "1700000000000",
};

describe("parseRegisteredEvent", () => {
  it("accepts the event AWS publishes", () => {
    expect(parseRegisteredEvent(valid)).toEqual(valid);
  });

  it("accepts a null or absent registration timestamp, and a JSON string body", () => {
    expect(
      parseRegisteredEvent({ ...valid, certificateRegistrationTimestamp: null })
        .certificateRegistrationTimestamp,
    ).toBeNull();
    const { certificateRegistrationTimestamp: _omit, ...without } = valid;
    expect(parseRegisteredEvent(without).certificateRegistrationTimestamp).toBeNull();
    expect(parseRegisteredEvent(JSON.stringify(valid)).certificateId).toBe(valid.certificateId);
  });

  it("tolerates unknown extra fields such as sourceIp and drops them", () => {
    const parsed = parseRegisteredEvent({ ...valid, sourceIp: "203.0.113.9", extra: { nested: true } });
    expect(parsed).toEqual(valid);
  });

  it.each([
    ["certificateId", { certificateId: undefined }],
    ["caCertificateId", { caCertificateId: undefined }],
    ["timestamp", { timestamp: undefined }],
    ["awsAccountId", { awsAccountId: undefined }],
  ])("names the missing field %s", (field, patch) => {
    const error = catchError(() => parseRegisteredEvent({ ...valid, ...patch }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.issues.map((i) => i.path)).toContain(field);
  });

  it.each([
    ["certificateId", { certificateId: 42 }],
    ["certificateId", { certificateId: "A".repeat(64) }],
    ["certificateId", { certificateId: "a".repeat(63) }],
    ["timestamp", { timestamp: "yesterday" }],
    ["awsAccountId", { awsAccountId: "12345" }],
    ["certificateRegistrationTimestamp", { certificateRegistrationTimestamp: "soon" }],
  ])("refuses a wrong type or form in %s", (field, patch) => {
    const error = catchError(() => parseRegisteredEvent({ ...valid, ...patch }));
    expect(error.issues.map((i) => i.path)).toContain(field);
    expect(error.message).toContain(field);
  });

  it.each([null, 42, "not json", [], '{"certificateId":'])(
    "refuses a body that is not an event: %j",
    (body) => {
      expect(() => parseRegisteredEvent(body)).toThrow(ValidationError);
    },
  );
});

function catchError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected a ValidationError");
}
