import { runServiceThroughput } from "./service.ts";

const factor = Number(process.argv[2] ?? 0.5);
const certificates = Number(process.argv[3] ?? 600);
const r = await runServiceThroughput({
  certificates,
  duplicatesPerCertificate: 20,
  factor,
  deadlineMs: Math.max(60_000, (4 * 1000 * certificates) / (10 * factor)),
});
console.log(JSON.stringify({ ...r, ratio: r.decidedPerSecond / r.ceiling }, null, 1));
