/*
 * The fleet-wide pages: the approve queue (approve one or many) and the activity (the ledger, and outcomes
 * by reason over time as a small chart).
 */
import { useState } from "preact/hooks";
import type { Approval, LedgerEntry, LedgerQuery } from "../../api/contract.ts";
import { bucketsOf, colourOf } from "./chart.ts";
import {
  api,
  ErrorBox,
  Field,
  href,
  messageOf,
  Notice,
  Page,
  Select,
  ShortId,
  Time,
  useLoad,
} from "./shared.tsx";

/** Quarantined devices, the reason, and whether their records now allow them; approve one or many. */
export function ApprovalsPage() {
  const queue = useLoad(() => api.ledger.approvals({ limit: 200 }), []);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [results, setResults] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const items = queue.data?.items ?? [];

  async function approve(deviceIds: string[]) {
    setBusy(true);
    const lines: string[] = [];
    for (const deviceId of deviceIds) {
      try {
        const result = await api.devices.approve(deviceId);
        lines.push(
          result.outcome === "provisioned"
            ? `${deviceId}: provisioned`
            : `${deviceId}: ${result.outcome}${"reason" in result ? ` (${result.reason})` : ""}`,
        );
      } catch (error) {
        lines.push(`${deviceId}: ${messageOf(error)}`);
      }
    }
    setResults(lines);
    setSelected(new Set());
    setBusy(false);
    queue.reload();
  }

  const toggle = (deviceId: string) => {
    const next = new Set(selected);
    if (next.has(deviceId)) next.delete(deviceId);
    else next.add(deviceId);
    setSelected(next);
  };
  const ready = items.filter((a) => a.ready).map((a) => a.deviceId);

  return (
    <Page title="Approve queue">
      <p>
        Quarantined devices: a fixed record lets approve provision them without the device reconnecting first.
      </p>
      <div class="toolbar">
        <button type="button" disabled={busy || selected.size === 0} onClick={() => approve([...selected])}>
          Approve selected ({selected.size})
        </button>
        <button type="button" disabled={busy || ready.length === 0} onClick={() => approve(ready)}>
          Approve all ready ({ready.length})
        </button>
        <button type="button" onClick={() => queue.reload()}>
          Refresh
        </button>
      </div>
      {results.length > 0 && (
        <Notice>
          <ul>
            {results.map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
        </Notice>
      )}
      <ErrorBox error={queue.error} />
      <table>
        <caption>
          {queue.loading ? "Loading…" : `${items.length} quarantined device${items.length === 1 ? "" : "s"}`}
        </caption>
        <thead>
          <tr>
            <th scope="col">Select</th>
            <th scope="col">Device</th>
            <th scope="col">Quarantined for</th>
            <th scope="col">When</th>
            <th scope="col">Now</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {items.map((a: Approval) => (
            <tr key={`${a.deviceId}-${a.certificateId}`}>
              <td>
                <input
                  type="checkbox"
                  aria-label={`Select ${a.deviceId}`}
                  checked={selected.has(a.deviceId)}
                  onChange={() => toggle(a.deviceId)}
                />
              </td>
              <td>
                <a href={href("devices", a.deviceId)}>{a.deviceId}</a>
              </td>
              <td>
                <strong class="reason">{a.reason ?? "—"}</strong>
              </td>
              <td>
                <Time at={a.deniedAt} />
              </td>
              <td>
                {a.ready ? (
                  <span class="badge allow">ready</span>
                ) : (
                  <span>
                    <span class="badge deny">still denied</span> {a.now.reason ?? ""}
                  </span>
                )}
              </td>
              <td>
                <button
                  type="button"
                  disabled={busy}
                  aria-label={`Approve ${a.deviceId}`}
                  onClick={() => approve([a.deviceId])}
                >
                  Approve
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

/** Stacked bars of outcomes by reason over time, with a legend and a text summary for screen readers. */
function OutcomeChart({ entries }: { entries: LedgerEntry[] }) {
  const { buckets, series } = bucketsOf(entries);
  if (buckets.length === 0) return <p>No outcomes in this period.</p>;
  const max = Math.max(1, ...buckets.map((b) => Object.values(b.counts).reduce((s, n) => s + n, 0)));
  const height = 120;
  const barWidth = 28;
  const totals = series.map((name) => [name, buckets.reduce((sum, b) => sum + (b.counts[name] ?? 0), 0)]);
  const summary = totals.map(([name, n]) => `${name}: ${n}`).join(", ");
  return (
    <figure class="chart">
      <svg
        role="img"
        aria-label={`Outcomes by reason over time. ${summary}`}
        width={buckets.length * (barWidth + 6)}
        height={height + 2}
        viewBox={`0 0 ${buckets.length * (barWidth + 6)} ${height + 2}`}
      >
        {buckets.map((bucket, i) => {
          let y = height;
          return series.map((name, s) => {
            const n = bucket.counts[name] ?? 0;
            if (n === 0) return null;
            const h = (n / max) * height;
            y -= h;
            return (
              <rect
                key={`${i}-${name}`}
                x={i * (barWidth + 6)}
                y={y}
                width={barWidth}
                height={h}
                fill={colourOf(name, s)}
              >
                <title>{`${new Date(bucket.start).toLocaleString()}: ${name} ${n}`}</title>
              </rect>
            );
          });
        })}
        <line x1="0" x2={buckets.length * (barWidth + 6)} y1={height + 1} y2={height + 1} stroke="#333" />
      </svg>
      <figcaption>
        <ul class="legend">
          {totals.map(([name, n], s) => (
            <li key={String(name)}>
              <svg width="12" height="12" aria-hidden="true">
                <rect width="12" height="12" fill={colourOf(String(name), s)} />
              </svg>{" "}
              {name}: {n}
            </li>
          ))}
        </ul>
        From <Time at={new Date(buckets[0]?.start ?? 0).toISOString()} /> to now.
      </figcaption>
    </figure>
  );
}

/** The fleet-wide ledger with its filters, and the chart of outcomes by reason over time. */
export function ActivityPage() {
  const [filters, setFilters] = useState({ kind: "", reason: "", lot: "", since: "7d" });
  const [applied, setApplied] = useState(filters);
  const ledger = useLoad(() => {
    const query: LedgerQuery = { limit: 1000 };
    if (applied.kind) query.kind = applied.kind as LedgerEntry["kind"];
    if (applied.reason) query.reason = applied.reason;
    if (applied.lot) query.lot = applied.lot;
    if (applied.since) query.since = applied.since;
    return api.ledger.list(query);
  }, [applied]);
  const entries = ledger.data?.items ?? [];
  return (
    <Page title="Activity">
      <form
        class="filters"
        aria-label="Filter the ledger"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filters);
        }}
      >
        <Select
          id="a-kind"
          label="Kind"
          value={filters.kind}
          options={[
            ["", "any"],
            ["provisioned", "provisioned"],
            ["denied", "denied"],
            ["failed", "failed"],
            ["admin", "admin change"],
          ]}
          onChange={(kind) => setFilters({ ...filters, kind })}
        />
        <Field
          id="a-reason"
          label="Reason"
          value={filters.reason}
          onInput={(reason) => setFilters({ ...filters, reason })}
        />
        <Field
          id="a-lot"
          label="Lot"
          value={filters.lot}
          onInput={(lot) => setFilters({ ...filters, lot })}
        />
        <Field
          id="a-since"
          label="Since"
          hint="30m, 12h, 7d or a time"
          value={filters.since}
          onInput={(since) => setFilters({ ...filters, since })}
        />
        <button type="submit">Show</button>
      </form>
      <ErrorBox error={ledger.error} />
      <OutcomeChart entries={entries.filter((e) => e.kind !== "admin" || applied.kind === "admin")} />
      <table>
        <caption>
          {ledger.loading
            ? "Loading…"
            : `${entries.length} entries${ledger.data?.cursor ? " (the newest 1000)" : ""}`}
        </caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Device</th>
            <th scope="col">Kind</th>
            <th scope="col">Reason</th>
            <th scope="col">Certificate</th>
            <th scope="col">By</th>
          </tr>
        </thead>
        <tbody>
          {entries.slice(0, 200).map((e) => (
            <tr key={`${e.deviceId}-${e.at}-${e.kind}-${e.certificateId ?? ""}`}>
              <td>
                <Time at={e.at} />
              </td>
              <td>
                <a href={href("devices", e.deviceId)}>{e.deviceId}</a>
              </td>
              <td>
                <span class={`badge ${e.kind}`}>{e.kind}</span>
              </td>
              <td>{e.reason ?? e.error ?? "—"}</td>
              <td>
                <ShortId id={e.certificateId} />
              </td>
              <td>{e.actor ?? "service"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
