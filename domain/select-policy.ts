import type { AllowlistRecord, PolicyMapping } from "./types.ts";

/**
 * The mapping selectors to look up for a device, most specific first (contract order):
 * `device:<deviceId>` > `profile:<profile>` > `thingType:<thingType>` > `ca:<caCertificateId>` > `default`.
 */
export function mappingSelectors(
  deviceId: string,
  record: AllowlistRecord | undefined,
  caCertificateId: string,
): string[] {
  const selectors = [`device:${deviceId}`];
  if (record?.profile) selectors.push(`profile:${record.profile}`);
  if (record?.thingType) selectors.push(`thingType:${record.thingType}`);
  selectors.push(`ca:${caCertificateId}`, "default");
  return selectors;
}

/** The first mapping found in precedence order, or undefined. */
export function selectMapping(selectors: string[], mappings: PolicyMapping[]): PolicyMapping | undefined {
  const bySelector = new Map(mappings.map((m) => [m.selector, m]));
  for (const selector of selectors) {
    const mapping = bySelector.get(selector);
    if (mapping) return mapping;
  }
  return undefined;
}
