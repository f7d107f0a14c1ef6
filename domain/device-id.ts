import { isThingName } from "./naming.ts";
import type { CertificateFacts, DeviceIdStrategy } from "./types.ts";

/** The device id named by the certificate under the given strategy, or undefined when none is valid. */
export function deriveDeviceId(facts: CertificateFacts, strategy: DeviceIdStrategy): string | undefined {
  const candidate = candidateFor(facts, strategy);
  return candidate !== undefined && isThingName(candidate) ? candidate : undefined;
}

function candidateFor(facts: CertificateFacts, strategy: DeviceIdStrategy): string | undefined {
  switch (strategy) {
    case "cn":
      return facts.commonName;
    case "serialNumber":
      return facts.serialNumber;
    case "san-uri":
      return deviceIdFromUri(facts.sanUris);
  }
}

/**
 * A URI SAN names the device by its last path segment or URN part:
 * `urn:device:sensor-42`, `spiffe://fleet.example/device/sensor-42` -> `sensor-42`.
 * The first URI that yields a valid thing name wins.
 */
function deviceIdFromUri(uris: string[]): string | undefined {
  for (const uri of uris) {
    const last = uri
      .split(/[/:]/)
      .filter((part) => part.length > 0)
      .at(-1);
    if (last !== undefined && isThingName(last)) return last;
  }
  return undefined;
}
