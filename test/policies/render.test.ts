import { describe, expect, it } from "vitest";
import { policyTemplates, renderPolicy, samePolicyDocument } from "../../policies/index.ts";

const context = {
  deviceId: "dev-1",
  region: "eu-west-1",
  accountId: "111122223333",
  attributes: { site: "north" },
};

describe("renderPolicy", () => {
  it("fills service placeholders and keeps AWS IoT policy variables as they are", () => {
    const result = renderPolicy(
      {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Publish",
            Resource:
              "arn:aws:iot:{{region}}:{{accountId}}:topic/{{attributes.site}}/{{deviceId}}/${iot:ClientId}",
          },
        ],
      },
      context,
    );
    expect(result).toEqual({
      ok: true,
      perDevice: true,
      document: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Publish",
            Resource: "arn:aws:iot:eu-west-1:111122223333:topic/north/dev-1/${iot:ClientId}",
          },
        ],
      }),
    });
  });

  it("a template with only deployment placeholders is one shared policy", () => {
    const result = renderPolicy(policyTemplates.sensor?.document ?? {}, context);
    expect(result.ok && result.perDevice).toBe(false);
  });

  it("refuses a missing attribute, and a value that would widen the policy", () => {
    const doc =
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/{{attributes.zone}}"}]}';
    expect(renderPolicy(doc, context)).toEqual({
      ok: false,
      error: "placeholder {{attributes.zone}} has no value",
    });
    for (const zone of ["*", "a/b", "${iot:ClientId}", 'x"', "#", "+"]) {
      const result = renderPolicy(doc, { ...context, attributes: { zone } });
      expect(result.ok).toBe(false);
    }
  });

  it("refuses documents that are not policies", () => {
    expect(renderPolicy("not json", context).ok).toBe(false);
    expect(renderPolicy({ Statement: [] }, context).ok).toBe(false);
  });

  it("counts size without whitespace, against the 2,048-character limit", () => {
    const filler = (n: number) =>
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "iot:Publish", Resource: "x".repeat(n) }],
      });
    const base = filler(0).length;
    expect(renderPolicy(filler(2048 - base), context).ok).toBe(true);
    const over = renderPolicy(filler(2049 - base), context);
    expect(over).toEqual({
      ok: false,
      error: "policy document is 2049 characters without whitespace; AWS IoT allows 2048",
    });
    const spaced = renderPolicy(`  ${filler(2048 - base).replace(/,/g, ",   \n")}  `, context);
    expect(spaced.ok).toBe(true);
  });
});

describe("built-in templates", () => {
  it.each(Object.values(policyTemplates))(
    "$name renders, fits and scopes every resource to the device",
    (template) => {
      const result = renderPolicy(template.document, context);
      if (!result.ok) throw new Error(result.error);
      const doc = JSON.parse(result.document) as {
        Statement: { Effect: string; Action: string | string[]; Resource: string | string[] }[];
      };
      for (const statement of doc.Statement) {
        expect(statement.Effect).toBe("Allow");
        const actions = ([] as string[]).concat(statement.Action);
        expect(actions.every((a) => a.startsWith("iot:") && !a.includes("*"))).toBe(true);
        for (const resource of ([] as string[]).concat(statement.Resource)) {
          expect(resource.startsWith("arn:aws:iot:eu-west-1:111122223333:")).toBe(true);
          // each resource names the connecting thing, by policy variable or by the rendered device id
          expect(resource.includes("${iot:Connection.Thing.ThingName}") || resource.includes("/dev-1")).toBe(
            true,
          );
        }
      }
    },
  );

  it("samePolicyDocument compares meaning, not whitespace", () => {
    expect(samePolicyDocument('{"a": 1}', '{"a":1}')).toBe(true);
    expect(samePolicyDocument('{"a": 1}', '{"a":2}')).toBe(false);
  });
});
