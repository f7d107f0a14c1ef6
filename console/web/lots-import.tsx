/*
 * The lots page (quota bars, window) and the import page (pick a file, see the dry-run diff, import with
 * progress; export).
 */
import { useState } from "preact/hooks";
import type { ImportFormat, ImportMode, ImportReport, Lot } from "../../api/contract.ts";
import { API_PREFIX } from "../paths.ts";
import { chunksOf, formatOf, mergeReports } from "./import-chunks.ts";
import { api, ErrorBox, Field, fieldErrorsOf, Notice, Page, Select, Time, useLoad } from "./shared.tsx";

/** Lots with their quota bars (provisioned of max) and window; create or change one. */
export function LotsPage() {
  const lots = useLoad(() => api.lots.list({ limit: 1000 }), []);
  const [form, setForm] = useState({ lot: "", maxDevices: "", notBefore: "", notAfter: "" });
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState("");
  const fields = fieldErrorsOf(error);

  async function save(e: Event) {
    e.preventDefault();
    setError(undefined);
    try {
      const existing = (lots.data?.items ?? []).find((l) => l.lot === form.lot);
      const draft = Object.fromEntries(
        Object.entries({
          maxDevices: form.maxDevices.trim() === "" ? undefined : Number(form.maxDevices),
          notBefore: form.notBefore.trim() || undefined,
          notAfter: form.notAfter.trim() || undefined,
        }).filter(([, v]) => v !== undefined),
      );
      const saved = await api.lots.put(
        form.lot,
        draft,
        existing ? { ifMatch: `"${existing.version ?? 0}"` } : { ifNoneMatch: "*" },
      );
      setNotice(`Lot ${form.lot} saved at version ${saved.value.version ?? 0}`);
      lots.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <Page title="Lots">
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={lots.error} />
      <table>
        <caption>{lots.loading ? "Loading…" : `${lots.data?.items.length ?? 0} lots`}</caption>
        <thead>
          <tr>
            <th scope="col">Lot</th>
            <th scope="col">Quota</th>
            <th scope="col">Window</th>
          </tr>
        </thead>
        <tbody>
          {(lots.data?.items ?? []).map((lot: Lot) => (
            <tr key={lot.lot}>
              <td>
                <button
                  type="button"
                  class="link"
                  aria-label={`Change lot ${lot.lot}`}
                  onClick={() =>
                    setForm({
                      lot: lot.lot,
                      maxDevices: lot.maxDevices === undefined ? "" : String(lot.maxDevices),
                      notBefore: lot.notBefore ?? "",
                      notAfter: lot.notAfter ?? "",
                    })
                  }
                >
                  {lot.lot}
                </button>
              </td>
              <td>
                {lot.maxDevices === undefined ? (
                  `${lot.provisionedCount} provisioned, no limit`
                ) : (
                  <span class="quota">
                    <meter
                      aria-label={`Lot ${lot.lot} quota`}
                      min={0}
                      max={lot.maxDevices}
                      low={lot.maxDevices * 0.8}
                      high={lot.maxDevices * 0.95}
                      optimum={0}
                      value={lot.provisionedCount}
                    />{" "}
                    {lot.provisionedCount} / {lot.maxDevices}
                  </span>
                )}
              </td>
              <td>
                <Time at={lot.notBefore} /> – <Time at={lot.notAfter} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="editor" aria-label="Create or change a lot" onSubmit={save}>
        <h2>Create or change a lot</h2>
        <ErrorBox error={error} />
        <div class="grid">
          <Field
            id="l-lot"
            label="Lot"
            value={form.lot}
            onInput={(lot) => setForm({ ...form, lot })}
            error={fields.lot}
          />
          <Field
            id="l-max"
            label="Most devices"
            type="number"
            value={form.maxDevices}
            onInput={(maxDevices) => setForm({ ...form, maxDevices })}
            error={fields.maxDevices}
          />
          <Field
            id="l-notBefore"
            label="Not before"
            value={form.notBefore}
            onInput={(notBefore) => setForm({ ...form, notBefore })}
            error={fields.notBefore}
          />
          <Field
            id="l-notAfter"
            label="Not after"
            value={form.notAfter}
            onInput={(notAfter) => setForm({ ...form, notAfter })}
            error={fields.notAfter}
          />
        </div>
        <button type="submit">Save lot</button>
      </form>
    </Page>
  );
}

const CHUNK_LINES = 200;

/** Import: pick a file, see the dry run, import it chunk by chunk with progress; export the allowlist. */
export function ImportPage() {
  const [file, setFile] = useState<{ name: string; text: string }>();
  const [format, setFormat] = useState("");
  const [mode, setMode] = useState<ImportMode>("best-effort");
  const [dryRun, setDryRun] = useState<ImportReport>();
  const [done, setDone] = useState<ImportReport>();
  const [progress, setProgress] = useState<{ sent: number; total: number }>();
  const [error, setError] = useState<unknown>();
  const chosenFormat = (format || undefined) as ImportFormat | undefined;

  async function pick(e: Event) {
    const picked = (e.currentTarget as HTMLInputElement).files?.[0];
    setDryRun(undefined);
    setDone(undefined);
    setError(undefined);
    if (!picked) return;
    const text = await picked.text();
    setFile({ name: picked.name, text });
    try {
      setDryRun(
        await api.allowlist.import(text, { dryRun: true, mode, format: formatOf(text, chosenFormat) }),
      );
    } catch (failure) {
      setError(failure);
    }
  }

  async function run() {
    if (!file) return;
    setError(undefined);
    setDone(undefined);
    const fileFormat = formatOf(file.text, chosenFormat);
    // all-or-nothing is one request (the server must see every line before writing any)
    const chunks =
      mode === "all-or-nothing"
        ? [{ body: file.text, offset: 0, lines: 0 }]
        : chunksOf(file.text, fileFormat, CHUNK_LINES);
    const total = chunks.reduce((sum, c) => sum + c.lines, 0);
    const parts: { report: ImportReport; offset: number }[] = [];
    let sent = 0;
    setProgress({ sent, total });
    try {
      for (const chunk of chunks) {
        parts.push({
          report: await api.allowlist.import(chunk.body, { mode, format: fileFormat }),
          offset: chunk.offset,
        });
        sent += chunk.lines;
        setProgress({ sent, total });
      }
    } catch (failure) {
      setError(failure);
    }
    setDone(mergeReports(parts));
  }

  return (
    <Page title="Import">
      <section aria-labelledby="h-import">
        <h2 id="h-import">Import allowlist records</h2>
        <p>
          JSON lines (the export's form, or AWS bulk-provisioning parameter lines) or CSV with a header line.
        </p>
        <div class="grid">
          <div class="field">
            <label for="i-file">File</label>
            <input id="i-file" type="file" accept=".jsonl,.ndjson,.json,.csv,.txt" onChange={pick} />
          </div>
          <Select
            id="i-format"
            label="Format"
            value={format}
            options={[
              ["", "from the file"],
              ["jsonl", "JSON lines"],
              ["csv", "CSV"],
            ]}
            onChange={setFormat}
          />
          <Select
            id="i-mode"
            label="Mode"
            value={mode}
            options={[
              ["best-effort", "best effort (good lines are imported)"],
              ["all-or-nothing", "all or nothing"],
            ]}
            onChange={(value) => setMode(value as ImportMode)}
          />
        </div>
        <ErrorBox error={error} />
        {dryRun && file && (
          <>
            <Report title={`Dry run of ${file.name}: nothing written yet`} report={dryRun} />
            <button type="button" onClick={run}>
              Import {file.name}
            </button>
          </>
        )}
        {progress && (
          <div role="status">
            <progress aria-label="Import progress" max={progress.total || 1} value={progress.sent} />{" "}
            {progress.sent} of {progress.total} lines sent
          </div>
        )}
        {done && <Report title="Imported" report={done} />}
      </section>
      <section aria-labelledby="h-export">
        <h2 id="h-export">Export / backup</h2>
        <p>
          <a href={`${API_PREFIX}allowlist/export`} download="allowlist.jsonl">
            Download every allowlist record (JSON lines)
          </a>
          : the file imports back as it is.
        </p>
      </section>
    </Page>
  );
}

/** An import report: counts, each record's outcome, rejected lines with their reason, warnings. */
function Report({ title, report }: { title: string; report: ImportReport }) {
  return (
    <section class="report" aria-label={title}>
      <h3>{title}</h3>
      <p>
        {report.created} to create, {report.updated} to update, {report.unchanged} unchanged,{" "}
        <strong>{report.rejectedCount} rejected</strong>
        {report.stopped ? `; stopped at line ${report.stopped.line}: ${report.stopped.reason}` : ""}.
      </p>
      {report.rejected.length > 0 && (
        <table class="rejected">
          <caption>Rejected lines</caption>
          <thead>
            <tr>
              <th scope="col">Line</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {report.rejected.map((r) => (
              <tr key={r.line}>
                <td>{r.line}</td>
                <td>{r.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {report.warnings.length > 0 && (
        <ul class="warnings">
          {report.warnings.map((w) => (
            <li key={`${w.line}-${w.message}`}>
              line {w.line}: {w.message}
            </li>
          ))}
        </ul>
      )}
      {report.records.length > 0 && (
        <details>
          <summary>{report.records.length} records</summary>
          <ul>
            {report.records.map((r) => (
              <li key={r.line}>
                line {r.line}: {r.deviceId} — {r.outcome}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
