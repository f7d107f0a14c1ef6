import { readFileSync } from "node:fs";
import { readCertificate } from "../../../domain/certificate.ts";
import type { TemplateContext } from "../../../domain/jitp/index.ts";
import { isObject } from "../../../domain/jitp/template.ts";
import { certificateIdOf, issueCertificate, type SubjectFields } from "../../../pki/certificates.ts";
import { testCa } from "../../support/world.ts";

/** A JSON object from test/fixtures/jitp. */
export function fixture(name: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(
    readFileSync(new URL(`../../fixtures/jitp/${name}`, import.meta.url), "utf8"),
  );
  if (!isObject(parsed)) throw new Error(`fixture ${name} is not a JSON object`);
  return parsed;
}

/** The template body of AWS's documented JITP registration config: an escaped JSON string, as AWS stores it. */
export function awsJitpTemplateBody(): string {
  const { templateBody } = fixture("aws-jitp-registration-config.json");
  if (typeof templateBody !== "string") throw new Error("templateBody is not a string");
  return templateBody;
}

/** A real device certificate from the test CA, and the context a template is evaluated in for it. */
export async function deviceContext(
  subject: SubjectFields,
  extra: Partial<TemplateContext> = {},
): Promise<TemplateContext & { pem: string }> {
  const issued = await issueCertificate(await testCa(), { subject });
  const pem = issued.certificatePem;
  return {
    pem,
    deviceId: subject.CN ?? "device-without-cn",
    certificateId: certificateIdOf(pem),
    certificate: readCertificate(pem),
    recordAttributes: {},
    region: "eu-west-1",
    accountId: "111122223333",
    ...extra,
  };
}
