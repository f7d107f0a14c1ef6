/** Reading a packaged CloudFormation template in tests: resources by type, intrinsic values, IAM statements. */

export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  Condition?: string;
}

export interface Template {
  Resources: Record<string, Resource>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** An IAM policy statement found in the template, with where it was found. */
export interface FoundStatement {
  where: string;
  Effect: string;
  Action: string[];
  Resource: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The resources of one type, by logical id. */
export function resourcesOfType(template: Template, type: string): Record<string, Resource> {
  return Object.fromEntries(
    Object.entries(template.Resources).filter(([, resource]) => resource.Type === type),
  );
}

/** A resource's properties, failing clearly when the resource is missing. */
export function props(template: Template, logicalId: string): Json {
  const resource = template.Resources[logicalId];
  if (resource === undefined) throw new Error(`the template has no resource ${logicalId}`);
  return resource.Properties ?? {};
}

/**
 * Evaluates the intrinsic functions the stack uses on package-time values into a string (or list):
 * Fn::Join and Fn::Split compute; Ref, Fn::GetAtt and Fn::Sub stay symbolic (`Ref:X`, `GetAtt:X.Arn`,
 * the Sub template text), which is what the assertions compare.
 */
export function evaluate(value: unknown): string | string[] {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.flatMap((item) => evaluate(item));
  if (!isObject(value)) throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
  if ("Ref" in value) return `Ref:${String(value.Ref)}`;
  if ("Fn::GetAtt" in value) return `GetAtt:${(value["Fn::GetAtt"] as string[]).join(".")}`;
  if ("Fn::Sub" in value) {
    const sub = value["Fn::Sub"];
    return Array.isArray(sub) ? String(sub[0]) : String(sub);
  }
  if ("Fn::Join" in value) {
    const [delimiter, parts] = value["Fn::Join"] as [string, unknown];
    return [evaluate(parts)].flat().join(delimiter);
  }
  if ("Fn::Split" in value) {
    const [delimiter, source] = value["Fn::Split"] as [string, unknown];
    return [evaluate(source)].flat().join(delimiter).split(delimiter);
  }
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}

/** Like {@link evaluate}, always as a list. */
export const evaluateList = (value: unknown): string[] => [evaluate(value)].flat();

/**
 * Every IAM policy statement in the template: inline role policies, AWS::IAM::Policy / ManagedPolicy,
 * and resource policies (bucket, queue, topic policies). Statements under Fn::If count in each branch.
 */
export function iamStatements(template: Template): FoundStatement[] {
  const found: FoundStatement[] = [];
  const collect = (document: unknown, where: string): void => {
    if (!isObject(document)) return;
    for (const statement of [document.Statement].flat()) {
      for (const branch of branches(statement)) {
        found.push({
          where: `${where}${typeof branch.Sid === "string" ? ` (${branch.Sid})` : ""}`,
          Effect: String(branch.Effect),
          Action: evaluateList(branch.Action ?? []),
          Resource: evaluateList(branch.Resource ?? []),
        });
      }
    }
  };
  for (const [id, resource] of Object.entries(template.Resources)) {
    const properties = resource.Properties ?? {};
    if (resource.Type === "AWS::IAM::Role") {
      for (const policy of (properties.Policies as Json[] | undefined) ?? []) {
        collect(policy.PolicyDocument, `${id}/${String(policy.PolicyName)}`);
      }
    }
    if (properties.PolicyDocument !== undefined) collect(properties.PolicyDocument, id);
  }
  return found;
}

/** The statements a value stands for: itself, or each branch of an Fn::If (AWS::NoValue dropped). */
function branches(statement: unknown): Json[] {
  if (!isObject(statement)) return [];
  if ("Fn::If" in statement) {
    const [, whenTrue, whenFalse] = statement["Fn::If"] as [string, unknown, unknown];
    return [...branches(whenTrue), ...branches(whenFalse)];
  }
  if ("Ref" in statement && statement.Ref === "AWS::NoValue") return [];
  return [statement];
}
