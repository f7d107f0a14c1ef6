/**
 * Evaluator for AWS IoT Core policy documents, used by the emulator's TestAuthorization
 * and by the local device gateway.
 *
 * Supported: Allow/Deny statements (an explicit Deny always wins), Action/NotAction and
 * Resource/NotResource as a string or an array, `*` and `?` wildcards (actions match
 * case-insensitively, resources case-sensitively), the IoT policy variables listed in
 * `resolveVariable`, the `${*}` / `${?}` / `${$}` escapes, and the common condition
 * operators (String*, Bool, Null, Arn*, with the `IfExists` suffix).
 *
 * Stricter readings where AWS leaves the behaviour open:
 * - a policy variable that cannot be resolved makes the whole statement not match;
 * - a condition operator the evaluator does not know makes the statement not match;
 * - a document that is not valid JSON contributes no statements.
 */

import { RE2JS } from "re2js";

export interface EvaluationContext {
  /** MQTT client id of the connection (`${iot:ClientId}`). */
  clientId?: string;
  /** Name of the thing the connection speaks for (its certificate's exclusive thing, or the attached thing its client id names). */
  thingName?: string;
  thingTypeName?: string;
  thingAttributes?: Record<string, string>;
  /** `${iot:Connection.Thing.IsAttached}`; defaults to whether `thingName` is set. */
  isAttached?: boolean;
  /** Certificate id (SHA-256 of the DER); not an AWS policy variable, kept for callers. */
  certificateId?: string;
  subjectCommonName?: string;
  /** The subject's serialNumber attribute (OID 2.5.4.5), not the certificate serial. */
  subjectSerialNumber?: string;
  /** Other subject / issuer fields keyed by the IoT names (CommonName, Organization, Country, ...). */
  certificateSubject?: Record<string, string>;
  certificateIssuer?: Record<string, string>;
  /** The certificate's own serial number (`${iot:Certificate.SerialNumber}`). */
  certificateSerialNumber?: string;
  /** Extra variables / condition keys by full name, e.g. `{ "aws:SourceIp": "127.0.0.1" }`. */
  variables?: Record<string, string>;
}

export interface EvaluationRequest {
  /** e.g. `iot:Publish` */
  action: string;
  /** e.g. `arn:aws:iot:us-east-1:123456789012:topic/devices/d1` */
  resource: string;
  context: EvaluationContext;
}

export type EvaluationReason = "explicit-deny" | "allowed" | "implicit-deny";

export interface EvaluationResult {
  allowed: boolean;
  reason: EvaluationReason;
}

export interface DetailedEvaluationResult extends EvaluationResult {
  /** Indexes (into `documents`) of documents with a matching Allow statement. */
  allowedBy: number[];
  /** Indexes (into `documents`) of documents with a matching Deny statement. */
  deniedBy: number[];
}

export function evaluate(documents: readonly string[], request: EvaluationRequest): EvaluationResult {
  const { allowed, reason } = evaluateDetailed(documents, request);
  return { allowed, reason };
}

export function evaluateDetailed(
  documents: readonly string[],
  request: EvaluationRequest,
): DetailedEvaluationResult {
  const allowedBy: number[] = [];
  const deniedBy: number[] = [];
  documents.forEach((document, index) => {
    let allows = false;
    let denies = false;
    for (const statement of statementsOf(document)) {
      if (!statementMatches(statement, request)) continue;
      if (statement.Effect === "Deny") denies = true;
      else if (statement.Effect === "Allow") allows = true;
    }
    if (allows) allowedBy.push(index);
    if (denies) deniedBy.push(index);
  });
  if (deniedBy.length > 0) return { allowed: false, reason: "explicit-deny", allowedBy, deniedBy };
  if (allowedBy.length > 0) return { allowed: true, reason: "allowed", allowedBy, deniedBy };
  return { allowed: false, reason: "implicit-deny", allowedBy, deniedBy };
}

interface Statement {
  Effect?: unknown;
  Action?: unknown;
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
  Condition?: unknown;
}

function statementsOf(document: string): Statement[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    return [];
  }
  if (!isObject(parsed)) return [];
  const statements = parsed.Statement;
  const list = Array.isArray(statements) ? statements : [statements];
  return list.filter(isObject) as Statement[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] | undefined {
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
  return undefined;
}

function statementMatches(statement: Statement, request: EvaluationRequest): boolean {
  const { context } = request;
  // Action / NotAction (no policy variables in actions).
  if (statement.Action !== undefined) {
    const actions = stringList(statement.Action);
    if (!actions?.some((a) => wildcardRegex([{ text: a, literal: false }], true).test(request.action)))
      return false;
  } else if (statement.NotAction !== undefined) {
    const actions = stringList(statement.NotAction);
    if (
      !actions ||
      actions.some((a) => wildcardRegex([{ text: a, literal: false }], true).test(request.action))
    )
      return false;
  } else {
    return false;
  }
  // Resource / NotResource, with policy variables.
  const resourceMatches = (patterns: string[]): boolean | undefined => {
    let any = false;
    for (const pattern of patterns) {
      const parts = substitute(pattern, context);
      if (parts === undefined) return undefined; // unresolvable variable: statement does not match
      if (wildcardRegex(parts, false).test(request.resource)) any = true;
    }
    return any;
  };
  if (statement.Resource !== undefined) {
    const resources = stringList(statement.Resource);
    if (!resources || resourceMatches(resources) !== true) return false;
  } else if (statement.NotResource !== undefined) {
    const resources = stringList(statement.NotResource);
    if (!resources || resourceMatches(resources) !== false) return false;
  } else {
    return false;
  }
  if (statement.Condition !== undefined) return conditionsHold(statement.Condition, context);
  return true;
}

interface PatternPart {
  text: string;
  /** true for text that came from a variable: wildcards in it are not wildcards. */
  literal: boolean;
}

const regexCache = new Map<string, RE2JS>();

/**
 * A policy pattern as an anchored regular expression for the linear-time engine (RE2): a document's
 * wildcards and a device's topic or client id are user data, and a backtracking engine takes time
 * polynomial in the topic's length to the power of the number of `*`s on a near miss.
 */
function wildcardRegex(parts: PatternPart[], ignoreCase: boolean): RE2JS {
  const key = `${ignoreCase ? "i" : "s"}${JSON.stringify(parts)}`;
  const cached = regexCache.get(key);
  if (cached) return cached;
  let source = "";
  for (const part of parts) {
    for (const ch of part.text) {
      if (!part.literal && ch === "*") source += ".*";
      else if (!part.literal && ch === "?") source += ".";
      else source += ch.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    }
  }
  const regex = RE2JS.compile(`^${source}$`, RE2JS.DOTALL | (ignoreCase ? RE2JS.CASE_INSENSITIVE : 0));
  if (regexCache.size > 5000) regexCache.clear();
  regexCache.set(key, regex);
  return regex;
}

/** Splits a pattern into wildcard text and substituted (literal) values; undefined if a variable is unresolvable. */
function substitute(pattern: string, context: EvaluationContext): PatternPart[] | undefined {
  const parts: PatternPart[] = [];
  const re = /\$\{([^}]*)\}/g;
  let last = 0;
  for (let m = re.exec(pattern); m !== null; m = re.exec(pattern)) {
    if (m.index > last) parts.push({ text: pattern.slice(last, m.index), literal: false });
    const name = m[1] ?? "";
    const value = name === "*" || name === "?" || name === "$" ? name : resolveVariable(name, context);
    if (value === undefined) return undefined;
    parts.push({ text: value, literal: true });
    last = m.index + m[0].length;
  }
  if (last < pattern.length) parts.push({ text: pattern.slice(last), literal: false });
  return parts;
}

/** Short names the x509 library uses for the IoT certificate-field variable names. */
const NAME_FIELDS: Record<string, string> = {
  CommonName: "CN",
  Country: "C",
  Organization: "O",
  OrganizationalUnit: "OU",
  State: "ST",
  Locality: "L",
  SerialNumber: "serialNumber",
  DistinguishedNameQualifier: "dnQualifier",
  Title: "title",
  Surname: "SN",
  GivenName: "G",
  Initials: "initials",
  Pseudonym: "pseudonym",
  GenerationQualifier: "generationQualifier",
};

/** Resolves an IoT policy variable / condition key; undefined when the context does not provide it. */
export function resolveVariable(name: string, context: EvaluationContext): string | undefined {
  const extra = context.variables?.[name];
  if (extra !== undefined) return extra;
  switch (name) {
    case "iot:ClientId":
      return context.clientId;
    case "iot:Connection.Thing.ThingName":
      return context.thingName;
    case "iot:Connection.Thing.ThingTypeName":
      return context.thingTypeName;
    case "iot:Connection.Thing.IsAttached":
      return String(context.isAttached ?? context.thingName !== undefined);
    case "iot:Certificate.Subject.CommonName":
      return context.subjectCommonName ?? context.certificateSubject?.CommonName;
    case "iot:Certificate.Subject.SerialNumber":
      return context.subjectSerialNumber ?? context.certificateSubject?.SerialNumber;
    case "iot:Certificate.SerialNumber":
      return context.certificateSerialNumber;
  }
  const attribute = /^iot:Connection\.Thing\.Attributes\[(.+)\]$/.exec(name);
  if (attribute?.[1] !== undefined) return context.thingAttributes?.[attribute[1]];
  const field = /^iot:Certificate\.(Subject|Issuer)\.(\w+)$/.exec(name);
  if (field?.[1] !== undefined && field[2] !== undefined && field[2] in NAME_FIELDS) {
    const fields = field[1] === "Subject" ? context.certificateSubject : context.certificateIssuer;
    return fields?.[field[2]];
  }
  return undefined;
}

function conditionsHold(condition: unknown, context: EvaluationContext): boolean {
  if (!isObject(condition)) return false;
  for (const [rawOperator, block] of Object.entries(condition)) {
    if (!isObject(block)) return false;
    const ifExists = rawOperator.endsWith("IfExists");
    const operator = ifExists ? rawOperator.slice(0, -"IfExists".length) : rawOperator;
    for (const [key, rawExpected] of Object.entries(block)) {
      const expected = stringList(typeof rawExpected === "boolean" ? String(rawExpected) : rawExpected);
      if (!expected) return false;
      const actual = resolveVariable(key, context);
      if (operator === "Null") {
        const wantsNull = expected.some((e) => e.toLowerCase() === "true");
        if ((actual === undefined) !== wantsNull) return false;
        continue;
      }
      if (actual === undefined) {
        if (ifExists) continue;
        return false;
      }
      const values: PatternPart[][] = [];
      for (const e of expected) {
        const parts = substitute(e, context);
        if (parts === undefined) return false;
        values.push(parts);
      }
      const plain = values.map((parts) => parts.map((p) => p.text).join(""));
      let holds: boolean;
      switch (operator) {
        case "StringEquals":
        case "ArnEquals":
          holds = plain.includes(actual);
          break;
        case "StringNotEquals":
        case "ArnNotEquals":
          holds = !plain.includes(actual);
          break;
        case "StringEqualsIgnoreCase":
          holds = plain.some((v) => v.toLowerCase() === actual.toLowerCase());
          break;
        case "StringNotEqualsIgnoreCase":
          holds = !plain.some((v) => v.toLowerCase() === actual.toLowerCase());
          break;
        case "StringLike":
        case "ArnLike":
          holds = values.some((parts) => wildcardRegex(parts, false).test(actual));
          break;
        case "StringNotLike":
        case "ArnNotLike":
          holds = !values.some((parts) => wildcardRegex(parts, false).test(actual));
          break;
        case "Bool":
          holds = plain.some((v) => v.toLowerCase() === actual.toLowerCase());
          break;
        default:
          return false; // unknown operator: stricter reading, the statement does not match
      }
      if (!holds) return false;
    }
  }
  return true;
}

/** Validates a policy document as AWS IoT does on CreatePolicy / CreatePolicyVersion; returns a message if malformed. */
export function policyDocumentProblem(document: string): string | undefined {
  const compact = document.replace(/\s/g, "");
  if (compact.length > 2048)
    return `Policy document is ${compact.length} characters without whitespace (max 2048)`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    return "Policy document is not valid JSON";
  }
  if (!isObject(parsed)) return "Policy document must be a JSON object";
  // Stricter reading: only the current policy language version is accepted.
  if (parsed.Version !== "2012-10-17") return 'Policy document must have "Version": "2012-10-17"';
  const statements = Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
  if (parsed.Statement === undefined || statements.length === 0) return "Policy document has no Statement";
  for (const statement of statements) {
    if (!isObject(statement)) return "Each Statement must be an object";
    if (statement.Effect !== "Allow" && statement.Effect !== "Deny")
      return "Statement Effect must be Allow or Deny";
    const hasAction = statement.Action !== undefined;
    if (hasAction === (statement.NotAction !== undefined))
      return "Statement must have exactly one of Action or NotAction";
    if (!stringList(statement.Action ?? statement.NotAction))
      return "Action must be a string or a string array";
    const hasResource = statement.Resource !== undefined;
    if (hasResource === (statement.NotResource !== undefined))
      return "Statement must have exactly one of Resource or NotResource";
    if (!stringList(statement.Resource ?? statement.NotResource))
      return "Resource must be a string or a string array";
    if (statement.Condition !== undefined && !isObject(statement.Condition))
      return "Condition must be an object";
  }
  return undefined;
}
