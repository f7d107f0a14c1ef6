import commandOnly from "./command-only.json" with { type: "json" };
import gateway from "./gateway.json" with { type: "json" };
import perDeviceSensor from "./per-device-sensor.json" with { type: "json" };
import sensor from "./sensor.json" with { type: "json" };

/** A named IoT policy template shipped with the service. */
export interface PolicyTemplate {
  name: string;
  description: string;
  document: Record<string, unknown>;
}

/** The built-in templates, each scoped to the connecting device's own thing name and topics. */
export const policyTemplates: Record<string, PolicyTemplate> = {
  sensor: {
    name: "sensor",
    description: "Publishes telemetry on devices/<thing>/telemetry, receives commands, uses its own shadow.",
    document: sensor,
  },
  "command-only": {
    name: "command-only",
    description: "Receives commands on devices/<thing>/commands and may only publish acknowledgements.",
    document: commandOnly,
  },
  gateway: {
    name: "gateway",
    description:
      "Connects as <thing> or child client ids <thing>-*, publishes for children under gateways/<thing>/.",
    document: gateway,
  },
  "per-device-sensor": {
    name: "per-device-sensor",
    description:
      "A per-device policy: telemetry under sites/<attributes.site>/devices/<deviceId>/, rendered per device.",
    document: perDeviceSensor,
  },
};

/** AWS IoT's limit on a policy document: 2,048 characters without whitespace. */
export const POLICY_DOCUMENT_MAX_CHARS = 2048;

/** Values the service fills when it renders a template. */
export interface RenderContext {
  deviceId: string;
  region: string;
  accountId: string;
  attributes: Record<string, string>;
}

export type RenderResult = { ok: true; document: string; perDevice: boolean } | { ok: false; error: string };

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.:-]+)\s*\}\}/g;
const DEPLOYMENT_PLACEHOLDERS = new Set(["region", "accountId"]);
/** A substituted value may never widen a policy: no wildcards, variables, topic levels or quotes. */
const SAFE_VALUE = /^[A-Za-z0-9:_.@=,-]{1,128}$/;

/**
 * Renders a policy document: service placeholders (`{{deviceId}}`, `{{attributes.<name>}}`,
 * `{{region}}`, `{{accountId}}`) are filled, AWS IoT policy variables (`${iot:...}`) kept as they are,
 * and the AWS size limit checked. A document that uses per-device placeholders is a per-device policy.
 */
export function renderPolicy(
  document: string | Record<string, unknown>,
  context: RenderContext,
): RenderResult {
  const text = typeof document === "string" ? document : JSON.stringify(document);
  let perDevice = false;
  const problems: string[] = [];
  const rendered = text.replace(PLACEHOLDER, (_match, name: string) => {
    if (!DEPLOYMENT_PLACEHOLDERS.has(name)) perDevice = true;
    const value = placeholderValue(name, context);
    if (value === undefined) {
      problems.push(`placeholder {{${name}}} has no value`);
      return "";
    }
    if (!SAFE_VALUE.test(value)) {
      problems.push(`placeholder {{${name}}} has a value with characters not allowed in a policy`);
      return "";
    }
    return value;
  });
  if (problems.length > 0) return { ok: false, error: problems.join("; ") };
  let parsed: unknown;
  try {
    parsed = JSON.parse(rendered);
  } catch {
    return { ok: false, error: "policy document is not valid JSON" };
  }
  if (!isPolicyShape(parsed)) return { ok: false, error: "policy document needs Version and Statement" };
  const compact = JSON.stringify(parsed);
  const size = compact.replace(/\s/g, "").length;
  if (size > POLICY_DOCUMENT_MAX_CHARS) {
    return {
      ok: false,
      error: `policy document is ${size} characters without whitespace; AWS IoT allows ${POLICY_DOCUMENT_MAX_CHARS}`,
    };
  }
  return { ok: true, document: compact, perDevice };
}

/**
 * The service-side placeholders of a document that depend on the device (`{{deviceId}}`,
 * `{{attributes.<name>}}`, ...), each once, as written; a shared policy (a thing group's) must have none.
 */
export function devicePlaceholders(document: string | Record<string, unknown>): string[] {
  const text = typeof document === "string" ? document : JSON.stringify(document);
  const found = new Set<string>();
  for (const match of text.matchAll(PLACEHOLDER)) {
    const name = match[1] ?? "";
    if (!DEPLOYMENT_PLACEHOLDERS.has(name)) found.add(`{{${name}}}`);
  }
  return [...found];
}

function placeholderValue(name: string, context: RenderContext): string | undefined {
  if (name === "deviceId" || name === "thingName") return context.deviceId;
  if (name === "region") return context.region;
  if (name === "accountId") return context.accountId;
  if (name.startsWith("attributes.")) return context.attributes[name.slice("attributes.".length)];
  return undefined;
}

function isPolicyShape(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.Version === "string" &&
    (Array.isArray(record.Statement) || typeof record.Statement === "object")
  );
}

/** Compares two policy documents by meaning of their JSON, not by formatting. */
export function samePolicyDocument(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return a === b;
  }
}
