import { createHash } from "node:crypto";

/** The AWS IoT certificate id of a certificate: lowercase hex SHA-256 of its DER bytes. */
export function certificateIdOfDer(der: Uint8Array | ArrayBuffer): string {
  const bytes = der instanceof ArrayBuffer ? new Uint8Array(der) : der;
  return createHash("sha256").update(bytes).digest("hex");
}
