/**
 * The local AWS endpoint on a data directory, in a process of its own, for tests that kill it: prints its
 * URL on one line once it serves, closes cleanly on SIGTERM.
 *
 *   node --import tsx test/support/aws-endpoint-process.ts <data directory>
 */
import { startAwsEndpoint } from "../../local/aws/index.ts";

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: aws-endpoint-process.ts <data directory>");
const endpoint = await startAwsEndpoint({ dataDir, port: 0, quotas: { enabled: false }, faults: {} });
process.stdout.write(`${endpoint.url}\n`);
process.once("SIGTERM", () => {
  void endpoint.close().then(() => process.exit(0));
});
