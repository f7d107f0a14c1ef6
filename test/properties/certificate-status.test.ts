import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { IotError } from "../../local/aws/iot/errors.ts";
import { type CertificateStatus, IotRegistry } from "../../local/aws/iot/registry.ts";
import { createCa, issueCertificate } from "../../pki/certificates.ts";

/*
 * The emulator's certificate status machine, held to AWS IoT's: UpdateCertificate sets ACTIVE, INACTIVE or
 * REVOKED and nothing else; REVOKED is terminal (every later update is CertificateStateException and the
 * status stays); registering the same certificate again never resets it. Whatever the sequence of calls.
 */

type Operation =
  | { op: "update"; status: string }
  | { op: "register"; status: "ACTIVE" | "INACTIVE" | undefined }
  | { op: "delete"; force: boolean };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("update" as const),
      status: fc.constantFrom(
        "ACTIVE",
        "INACTIVE",
        "REVOKED",
        "PENDING_ACTIVATION",
        "PENDING_TRANSFER",
        "REGISTER_INACTIVE",
        "revoked",
        "",
      ),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("register" as const),
      status: fc.constantFrom("ACTIVE" as const, "INACTIVE" as const, undefined),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("delete" as const), force: fc.boolean() }), weight: 1 },
);

const SETTABLE = ["ACTIVE", "INACTIVE", "REVOKED"];

let pem: string;
beforeAll(async () => {
  pem = (await issueCertificate(await createCa({ commonName: "Status CA" }), { subject: { CN: "status-1" } }))
    .certificatePem;
});

/** Runs a call; the IoT error code it failed with, if it failed. */
function attempt(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (!(error instanceof IotError)) throw error;
    return error.code;
  }
}

describe("the emulator's certificate status machine", () => {
  it("never leaves REVOKED and sets only what UpdateCertificate may set", () => {
    let revocations = 0;
    fc.assert(
      fc.property(fc.array(operation, { minLength: 1, maxLength: 25 }), (operations) => {
        const registry = new IotRegistry({ region: "eu-west-1", accountId: "111122223333" });
        // the model: the status the certificate must have, undefined while it does not exist
        let expected: CertificateStatus | undefined;
        let id: string | undefined;
        for (const step of operations) {
          const before = expected;
          if (step.op === "update") {
            if (id === undefined) continue;
            const certificateId = id;
            const code = attempt(() => registry.updateCertificate(certificateId, step.status));
            if (before === undefined) expect(code).toBe("ResourceNotFoundException");
            else if (!SETTABLE.includes(step.status)) expect(code).toBe("InvalidRequestException");
            else if (before === "REVOKED") expect(code).toBe("CertificateStateException");
            else {
              expect(code).toBeUndefined();
              expected = step.status as CertificateStatus;
              if (expected === "REVOKED") revocations += 1;
            }
          } else if (step.op === "register") {
            const code = attempt(() => {
              id = registry.registerCertificateWithoutCA({
                certificatePem: pem,
                ...(step.status !== undefined ? { status: step.status } : {}),
              }).certificateId;
            });
            if (before !== undefined) expect(code).toBe("ResourceAlreadyExistsException");
            else {
              expect(code).toBeUndefined();
              expected = step.status ?? "INACTIVE";
            }
          } else if (id !== undefined) {
            const certificateId = id;
            const code = attempt(() => registry.deleteCertificate(certificateId, step.force));
            if (before === undefined) expect(code).toBe("ResourceNotFoundException");
            else if (before === "ACTIVE") expect(code).toBe("CertificateStateException");
            else {
              expect(code).toBeUndefined();
              expected = undefined;
            }
          }
          const now = id === undefined ? undefined : registry.describeCertificateById(id)?.status;
          expect(now).toBe(expected);
          if (before === "REVOKED" && now !== undefined) expect(now).toBe("REVOKED");
        }
      }),
      { numRuns: 400 },
    );
    expect(revocations).toBeGreaterThan(50);
  });
});
