/*
 * Which grants of a device policy are broad enough that an admin must say they mean them. A device policy
 * is least privilege when every grant is scoped to the device: its own client id, its own topics. The
 * grants found here reach past any one device:
 *  - an Allow with NotAction or NotResource (it grants everything it does not name);
 *  - an action wildcard (`*`, `iot:*`, `iot:Pub*`...) on every resource (`*`, or an ARN whose resource part
 *    starts with `*`);
 *  - Connect for any client id (`client/*`, `client/${iot:ClientId}`, or every resource): the device may take
 *    over any other device's connection;
 *  - Publish, Subscribe, Receive or RetainPublish on every topic (a topic or topic filter starting with `*`,
 *    `#` or `+`, or every resource);
 *  - the same actions on an AWS reserved topic (`$aws/...`) with a wildcard before the device's own level
 *    (`$aws/things/${iot:Connection.Thing.ThingName}/shadow/*` is the device's own; `$aws/things/+/...`,
 *    `$aws/events/*` are not).
 * Deny statements never widen anything and are not looked at; conditions are not read (a condition may narrow
 * a grant, but that is for the admin to vouch for with the flag).
 */

import { isObject, parseJsonOrUndefined } from "../json.ts";

/** One broad grant: where in the document and what it grants. */
export interface BroadGrant {
  path: string;
  message: string;
}

const MESSAGING = ["iot:publish", "iot:subscribe", "iot:receive", "iot:retainpublish"];

/** The levels that name the device itself: policy variables and service placeholders unique to it. */
const OWN_LEVEL = /\$\{iot:Connection\.Thing\.ThingName\}|\$\{iot:ClientId\}|\{\{deviceId\}\}/;

/** The broad grants of a policy document (JSON text or object) at `path`; none when it cannot be read. */
export function broadGrants(document: unknown, path: string): BroadGrant[] {
  const parsed = typeof document === "string" ? parseJsonOrUndefined(document) : document;
  if (!isObject(parsed)) return [];
  const statements = Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
  const found: BroadGrant[] = [];
  statements.forEach((statement, i) => {
    if (!isObject(statement) || statement.Effect !== "Allow") return;
    const at = Array.isArray(parsed.Statement) ? `${path}.Statement[${i}]` : `${path}.Statement`;
    for (const key of ["NotAction", "NotResource"]) {
      if (statement[key] !== undefined)
        found.push({ path: at, message: `an Allow with ${key} grants everything it does not name` });
    }
    const actions = strings(statement.Action);
    const resources = strings(statement.Resource);
    for (const resource of resources) {
      const grant = broadGrant(actions, resource);
      if (grant !== undefined) found.push({ path: at, message: grant });
    }
  });
  return found;
}

/** Why `actions` on `resource` is broad, or undefined. */
function broadGrant(actions: string[], resource: string): string | undefined {
  const part = resourcePart(resource);
  const everything = part.startsWith("*");
  const covers = (target: string) => actions.some((action) => globMatches(action, target));
  const wildcardActions = actions.filter((action) => action.includes("*"));
  if (wildcardActions.length > 0 && everything)
    return `grants ${wildcardActions.join(", ")} on every resource (${resource})`;
  if (covers("iot:connect")) {
    const client = part.startsWith("client/") ? part.slice("client/".length) : undefined;
    if (everything || client?.startsWith("*") || client?.startsWith("${iot:ClientId}"))
      return `lets a device connect with any client id (${resource}), taking over other devices' connections`;
  }
  if (MESSAGING.some(covers)) {
    const topic = /^topic(?:filter)?\/(.*)$/.exec(part)?.[1];
    if (everything || (topic !== undefined && /^[*#+]/.test(topic)))
      return `grants ${actions.join(", ")} on every topic (${resource})`;
    if (topic?.startsWith("$aws/") && wildcardBeforeOwnLevel(topic))
      return `grants ${actions.join(", ")} on AWS reserved topics beyond the device's own (${resource})`;
  }
  return undefined;
}

/** True when a level holding a wildcard comes before any level naming the device itself. */
function wildcardBeforeOwnLevel(topic: string): boolean {
  for (const level of topic.split("/")) {
    if (OWN_LEVEL.test(level)) return false;
    if (/[*#+?]/.test(level)) return true;
  }
  return false;
}

/** The resource part of an IoT ARN (`client/x`, `topic/a/b`), or the resource as written (`*`). */
function resourcePart(resource: string): string {
  const arn = /^arn:[^:]*:iot:[^:]*:[^:]*:(.*)$/.exec(resource);
  return arn?.[1] ?? resource;
}

/**
 * An IAM action pattern (`*` any run, `?` one character, case-insensitive) against an action; matched by
 * dynamic programming in time linear in the pattern times the action, whatever wildcards the pattern holds.
 */
function globMatches(pattern: string, action: string): boolean {
  const p = pattern.toLowerCase();
  // reachable[j]: the pattern read so far can match the first j characters of the action
  let reachable = [true, ...Array.from({ length: action.length }, () => false)];
  for (const c of p) {
    const next = Array.from({ length: action.length + 1 }, () => false);
    for (let j = 0; j <= action.length; j++) {
      if (c === "*") next[j] = reachable[j] === true || (j > 0 && next[j - 1] === true);
      else if (j > 0 && reachable[j - 1] === true) next[j] = c === "?" || c === action[j - 1];
    }
    reachable = next;
  }
  return reachable[action.length] === true;
}

const strings = (value: unknown): string[] =>
  (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string");
