import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type EvaluatedTemplate, evaluateProvisioningTemplate } from "../../domain/jitp/index.ts";
import type { CertificateFacts } from "../../domain/types.ts";
import { policyTemplates, renderPolicy } from "../../policies/index.ts";

/*
 * A rendered policy never grants more than its template's scope, whatever the device id or attribute
 * values (quotes, `*`, `#`, `+`, `/`, `${`, `}}`, newlines, ...): a render either fails, or is the
 * template with each placeholder replaced by a value that cannot widen a resource (no wildcard, no policy
 * variable, no extra topic level, no quote) in the string it stood in, every other part unchanged.
 */

const REGION = "eu-west-1";
const ACCOUNT = "111122223333";

/** Characters that would widen a resource or break out of a JSON string. */
const widens = (value: string): boolean =>
  /[*?+#/${}"\\\s]/.test(value) || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Values an attacker or a careless admin may put in a device id or an attribute. */
const hostile = fc.constantFrom(
  "*",
  "#",
  "+",
  "dev/1",
  "dev-1/#",
  "${iot:ClientId}",
  "${iot:Connection.Thing.ThingName}",
  "{{deviceId}}",
  "}}",
  "{{",
  'a","Resource":"*',
  "a\\u0022",
  "line\nbreak",
  "tab\there",
  "",
  " ",
  "..",
  "a*b",
  "x".repeat(129),
  "dev\u0000",
  "ünï",
);
/** Half safe values (so renders happen), half hostile or arbitrary ones. */
const value = fc.oneof(
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9:_.@=,-]{1,24}$/), weight: 4 },
  { arbitrary: hostile, weight: 2 },
  { arbitrary: fc.string({ maxLength: 20 }), weight: 1 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 8 }), weight: 1 },
);

/** The template with its placeholders replaced in its strings: what a render may produce and nothing else. */
function substituted(node: unknown, values: Record<string, string>): unknown {
  if (typeof node === "string") {
    return node.replace(
      /\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}/g,
      (_, name: string) => values[name] ?? "\u0000missing",
    );
  }
  if (Array.isArray(node)) return node.map((n) => substituted(n, values));
  if (node !== null && typeof node === "object") {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, substituted(v, values)]));
  }
  return node;
}

/** A template an admin might write: placeholders in ARNs, topic filters, a condition and a list. */
const ADMIN_TEMPLATE = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: ["iot:Publish", "iot:Receive"],
      Resource: [
        "arn:aws:iot:{{region}}:{{accountId}}:topic/fleet/{{attributes.site}}/{{deviceId}}/up",
        "arn:aws:iot:{{region}}:{{accountId}}:topic/fleet/{{attributes.site}}-{{attributes.line}}/{{thingName}}",
      ],
    },
    {
      Effect: "Allow",
      Action: "iot:Connect",
      Resource: "arn:aws:iot:{{region}}:{{accountId}}:client/{{deviceId}}",
      Condition: { StringEquals: { "iot:Connection.Thing.Attributes[site]": "{{attributes.site}}" } },
    },
    {
      Effect: "Deny",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:{{region}}:{{accountId}}:topic/${iot:ClientId}/x",
    },
  ],
};

const templates = fc.constantFrom(
  ...Object.values(policyTemplates).map((t) => t.document),
  ADMIN_TEMPLATE,
  JSON.stringify(ADMIN_TEMPLATE, null, 2),
);

describe("policy rendering, whatever the device id and attributes", () => {
  it("renders only the template's scope, with values that cannot widen it", () => {
    let renders = 0;
    fc.assert(
      fc.property(
        templates,
        value,
        fc.record({ site: value, line: value }),
        (template, deviceId, attributes) => {
          const rendered = renderPolicy(template, {
            deviceId,
            region: REGION,
            accountId: ACCOUNT,
            attributes,
          });
          if (!rendered.ok) return;
          renders += 1;
          const source = typeof template === "string" ? JSON.parse(template) : template;
          const text = JSON.stringify(source);
          const used = [...text.matchAll(/\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}/g)].map((m) => m[1]);
          const values: Record<string, string> = {
            deviceId,
            thingName: deviceId,
            region: REGION,
            accountId: ACCOUNT,
            "attributes.site": attributes.site,
            "attributes.line": attributes.line,
          };
          for (const name of used) expect(widens(values[name ?? ""] ?? "")).toBe(false);
          expect(JSON.parse(rendered.document)).toEqual(substituted(source, values));
          expect(rendered.perDevice).toBe(used.some((n) => n !== "region" && n !== "accountId"));
        },
      ),
      { numRuns: 1500 },
    );
    // the property held on real renders, not only on refusals
    expect(renders).toBeGreaterThan(300);
  });

  it("refuses every value that would widen a resource", () => {
    fc.assert(
      fc.property(
        value.filter((v) => widens(v) || v === ""),
        (deviceId) => {
          const rendered = renderPolicy(ADMIN_TEMPLATE, {
            deviceId,
            region: REGION,
            accountId: ACCOUNT,
            attributes: { site: "s1", line: "l1" },
          });
          expect(rendered.ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** A JITP template whose policy takes a certificate attribute, a record attribute and the thing name. */
const JITP_TEMPLATE = {
  Parameters: {
    ThingName: { Type: "String" },
    "AWS::IoT::Certificate::OrganizationalUnit": { Type: "String" },
    Site: { Type: "String" },
  },
  Resources: {
    thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "ThingName" } } },
    certificate: {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "ACTIVE" },
    },
    policy: {
      Type: "AWS::IoT::Policy",
      Properties: {
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Publish",
              Resource: {
                "Fn::Sub":
                  "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topic/${AWS::IoT::Certificate::OrganizationalUnit}/${Site}/${ThingName}/data",
              },
            },
            {
              Effect: "Allow",
              Action: "iot:Subscribe",
              Resource: {
                "Fn::Join": [
                  "",
                  [
                    "arn:aws:iot:eu-west-1:111122223333:topicfilter/",
                    { Ref: "Site" },
                    "/",
                    { Ref: "ThingName" },
                  ],
                ],
              },
            },
          ],
        },
      },
    },
  },
};

/** Device ids: mostly valid thing names (so templates evaluate), some hostile. */
const deviceIds = fc.oneof(
  { arbitrary: fc.stringMatching(/^[a-zA-Z0-9:_-]{1,24}$/), weight: 6 },
  { arbitrary: value, weight: 2 },
);

const facts = (unit: string, cn: string): CertificateFacts => ({
  fingerprint: "a".repeat(64),
  subject: `CN=${cn}`,
  issuer: "CN=Fleet",
  subjectAttributes: { CN: cn, OU: unit },
  commonName: cn,
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date(0),
  notAfter: new Date(4e12),
});

describe("JITP policy documents, whatever the certificate and record hold", () => {
  it("substitute only values that cannot widen the template's resources", () => {
    let documents = 0;
    fc.assert(
      fc.property(deviceIds, value, value, (deviceId, unit, site) => {
        const evaluated = evaluateProvisioningTemplate(
          { templateBody: JITP_TEMPLATE },
          {
            deviceId,
            certificateId: "a".repeat(64),
            certificate: facts(unit, deviceId),
            recordAttributes: { Site: site },
            region: REGION,
            accountId: ACCOUNT,
          },
        );
        if (!evaluated.ok) return;
        documents += 1;
        const policy = evaluated.template.policy as Extract<
          EvaluatedTemplate["policy"],
          { document: unknown }
        >;
        for (const v of [deviceId, unit, site]) expect(widens(v)).toBe(false);
        expect(policy.document).toEqual({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: "iot:Publish",
              Resource: `arn:aws:iot:${REGION}:${ACCOUNT}:topic/${unit}/${site}/${deviceId}/data`,
            },
            {
              Effect: "Allow",
              Action: "iot:Subscribe",
              Resource: `arn:aws:iot:eu-west-1:111122223333:topicfilter/${site}/${deviceId}`,
            },
          ],
        });
      }),
      { numRuns: 1500 },
    );
    expect(documents).toBeGreaterThan(50);
  });
});
