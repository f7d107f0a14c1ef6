/*
 * The allowlist pages: the list (search by id prefix, filters, paging, create, edit, block) and one device
 * (record, certificate, thing, rendered policy, timeline; explain, approve, deprovision).
 */
import { useState } from "preact/hooks";
import { ApiError, orNone } from "../../api/client.ts";
import type { AllowlistDraft, AllowlistRecord, Versioned } from "../../api/contract.ts";
import {
  api,
  ErrorBox,
  Field,
  fieldErrorsOf,
  href,
  messageOf,
  Notice,
  Page,
  pairsOf,
  parseList,
  parsePairs,
  Select,
  ShortId,
  Time,
  useLoad,
} from "./shared.tsx";

const PAGE_SIZE = 50;

/** The allowlist: search, filters, paging; create, edit and block. */
export function DevicesPage() {
  const [filters, setFilters] = useState({ prefix: "", status: "", lot: "", profile: "" });
  const [applied, setApplied] = useState(filters);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [editing, setEditing] = useState<Versioned<AllowlistRecord> | "new" | undefined>();
  const [notice, setNotice] = useState("");
  const [actionError, setActionError] = useState<unknown>();
  const cursor = cursors[cursors.length - 1];
  const page = useLoad(
    () =>
      api.allowlist.list({
        limit: PAGE_SIZE,
        ...(cursor ? { cursor } : {}),
        ...(applied.status ? { status: applied.status as AllowlistRecord["status"] } : {}),
        ...(applied.lot ? { lot: applied.lot } : {}),
        ...(applied.prefix ? { prefix: applied.prefix } : {}),
        ...(applied.profile ? { profile: applied.profile } : {}),
      }),
    [applied, cursor],
  );
  const shown = page.data?.items ?? [];

  async function edit(deviceId: string) {
    setActionError(undefined);
    try {
      setEditing(await api.allowlist.get(deviceId));
    } catch (error) {
      setActionError(error);
    }
  }

  async function block(record: AllowlistRecord) {
    if (!window.confirm(`Block ${record.deviceId}? Its live certificates are revoked.`)) return;
    setActionError(undefined);
    try {
      const current = await api.allowlist.get(record.deviceId);
      const saved = await api.allowlist.put(
        record.deviceId,
        { ...draftOf(current.value), status: "blocked" },
        { ifMatch: current.etag },
      );
      setNotice(
        `${record.deviceId} is blocked${saved.value.block ? `: ${describeCutOff(saved.value.block)}` : ""}`,
      );
      page.reload();
    } catch (error) {
      setActionError(error);
    }
  }

  return (
    <Page title="Devices">
      <form
        class="filters"
        aria-label="Search the allowlist"
        onSubmit={(e) => {
          e.preventDefault();
          setCursors([undefined]);
          setApplied(filters);
        }}
      >
        <Field
          id="f-prefix"
          label="Device id starts with"
          value={filters.prefix}
          onInput={(prefix) => setFilters({ ...filters, prefix })}
        />
        <Select
          id="f-status"
          label="Status"
          value={filters.status}
          options={[
            ["", "any"],
            ["allowed", "allowed"],
            ["blocked", "blocked"],
          ]}
          onChange={(status) => setFilters({ ...filters, status })}
        />
        <Field
          id="f-lot"
          label="Lot"
          value={filters.lot}
          onInput={(lot) => setFilters({ ...filters, lot })}
        />
        <Field
          id="f-profile"
          label="Profile"
          value={filters.profile}
          onInput={(profile) => setFilters({ ...filters, profile })}
        />
        <button type="submit">Search</button>
        <button type="button" onClick={() => setEditing("new")}>
          New device
        </button>
      </form>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={actionError ?? page.error} />
      {editing !== undefined && (
        <RecordEditor
          existing={editing === "new" ? undefined : editing}
          onDone={(message) => {
            setEditing(undefined);
            setNotice(message);
            page.reload();
          }}
          onCancel={() => setEditing(undefined)}
        />
      )}
      <table>
        <caption>
          Allowlist records{page.loading ? " (loading…)" : ""}: {shown.length} shown
        </caption>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">Status</th>
            <th scope="col">Profile</th>
            <th scope="col">Lot</th>
            <th scope="col">Certificate</th>
            <th scope="col">Version</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.deviceId}>
              <td>
                <a href={href("devices", r.deviceId)}>{r.deviceId}</a>
              </td>
              <td>
                <span class={`badge ${r.status}`}>{r.status}</span>
              </td>
              <td>{r.profile ?? "—"}</td>
              <td>{r.lot ?? "—"}</td>
              <td>
                <ShortId id={r.certificateId} />
              </td>
              <td>{r.version}</td>
              <td class="actions">
                <button type="button" onClick={() => edit(r.deviceId)} aria-label={`Edit ${r.deviceId}`}>
                  Edit
                </button>
                {r.status !== "blocked" && (
                  <button
                    type="button"
                    class="danger"
                    onClick={() => block(r)}
                    aria-label={`Block ${r.deviceId}`}
                  >
                    Block
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button
          type="button"
          disabled={page.data?.cursor === undefined}
          onClick={() => setCursors([...cursors, page.data?.cursor])}
        >
          Next page
        </button>
      </nav>
    </Page>
  );
}

/** What a cut-off did, in a line. */
function describeCutOff(cutOff: { complete?: boolean }): string {
  return cutOff.complete === false
    ? "not every certificate was cut off yet: block again"
    : "certificates cut off";
}

/** The admin fields of a record (what a put sends). */
export function draftOf(record: AllowlistRecord): AllowlistDraft {
  const {
    deviceId: _id,
    version: _v,
    createdAt: _c,
    updatedAt: _u,
    updatedBy: _b,
    certificateId: _ce,
    thingName: _t,
    policyName: _p,
    provisionedAt: _pa,
    lotCounted: _lc,
    lotReleaseStartedAt: _lr,
    ...draft
  } = record;
  return draft;
}

interface FormState {
  deviceId: string;
  status: string;
  profile: string;
  lot: string;
  thingType: string;
  thingGroups: string;
  attributes: string;
  notBefore: string;
  notAfter: string;
  rotation: string;
  caCertificateId: string;
  certificateFingerprint: string;
  note: string;
}

function formOf(deviceId: string, record: AllowlistDraft | undefined): FormState {
  return {
    deviceId,
    status: record?.status ?? "allowed",
    profile: record?.profile ?? "",
    lot: record?.lot ?? "",
    thingType: record?.thingType ?? "",
    thingGroups: (record?.thingGroups ?? []).join(", "),
    attributes: pairsOf(record?.attributes),
    notBefore: record?.notBefore ?? "",
    notAfter: record?.notAfter ?? "",
    rotation: record?.rotation ?? "",
    caCertificateId: record?.caCertificateId ?? "",
    certificateFingerprint: record?.certificateFingerprint ?? "",
    note: record?.note ?? "",
  };
}

/** The draft a form holds: empty fields are left out. */
function draftOfForm(form: FormState): AllowlistDraft {
  const text = (value: string) => (value.trim() === "" ? undefined : value.trim());
  const draft: Record<string, unknown> = {
    status: form.status,
    profile: text(form.profile),
    lot: text(form.lot),
    thingType: text(form.thingType),
    thingGroups: parseList(form.thingGroups),
    attributes: parsePairs(form.attributes),
    notBefore: text(form.notBefore),
    notAfter: text(form.notAfter),
    rotation: text(form.rotation),
    caCertificateId: text(form.caCertificateId),
    certificateFingerprint: text(form.certificateFingerprint),
    note: text(form.note),
  };
  return Object.fromEntries(Object.entries(draft).filter(([, v]) => v !== undefined)) as AllowlistDraft;
}

/**
 * Creates a record (`If-None-Match: *`) or edits one at the version read (`If-Match`). When someone else
 * saved it meanwhile (412), both versions are shown: keep editing over theirs, or save mine over theirs.
 */
export function RecordEditor(props: {
  existing: Versioned<AllowlistRecord> | undefined;
  deviceId?: string;
  onDone: (message: string) => void;
  onCancel?: () => void;
}) {
  const { existing } = props;
  const [form, setForm] = useState(
    formOf(existing?.value.deviceId ?? props.deviceId ?? "", existing ? draftOf(existing.value) : undefined),
  );
  const [etag, setEtag] = useState(existing?.etag);
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState<Versioned<AllowlistRecord>>();
  const fields = fieldErrorsOf(error);
  const set = (name: keyof FormState) => (value: string) => setForm({ ...form, [name]: value });
  const idPrefix = existing ? "edit" : "new";

  async function save(e: Event) {
    e.preventDefault();
    setError(undefined);
    let draft: AllowlistDraft;
    try {
      draft = draftOfForm(form);
    } catch (parse) {
      setError(
        new ApiError(400, "ValidationError", messageOf(parse), [
          { path: "attributes", message: messageOf(parse) },
        ]),
      );
      return;
    }
    try {
      const saved = await api.allowlist.put(
        form.deviceId,
        draft,
        etag === undefined ? { ifNoneMatch: "*" } : { ifMatch: etag },
      );
      const warnings = saved.value.warnings?.map((w) => w.message).join("; ");
      props.onDone(
        `${form.deviceId} saved at version ${saved.value.version}${warnings ? ` (${warnings})` : ""}`,
      );
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 412) {
        setConflict(await api.allowlist.get(form.deviceId));
      }
      setError(failure);
    }
  }

  return (
    <form
      class="editor"
      aria-label={existing ? `Edit ${form.deviceId}` : "New allowlist record"}
      onSubmit={save}
    >
      <h2>
        {existing ? `Edit ${form.deviceId} (version ${existing.value.version})` : "New allowlist record"}
      </h2>
      <ErrorBox error={error} />
      {conflict && (
        <section class="conflict" aria-label="Conflicting versions">
          <p>Someone saved this record meanwhile (now version {conflict.value.version}). Both versions:</p>
          <div class="versions">
            <figure>
              <figcaption>Yours</figcaption>
              <pre>{JSON.stringify(draftOfForm(form), null, 2)}</pre>
            </figure>
            <figure>
              <figcaption>Theirs (version {conflict.value.version})</figcaption>
              <pre>{JSON.stringify(draftOf(conflict.value), null, 2)}</pre>
            </figure>
          </div>
          <button
            type="button"
            onClick={() => {
              setEtag(conflict.etag);
              setConflict(undefined);
              setError(undefined);
            }}
          >
            Keep mine (save over theirs next)
          </button>
          <button
            type="button"
            onClick={() => {
              setForm(formOf(conflict.value.deviceId, draftOf(conflict.value)));
              setEtag(conflict.etag);
              setConflict(undefined);
              setError(undefined);
            }}
          >
            Take theirs
          </button>
        </section>
      )}
      <div class="grid">
        <Field
          id={`${idPrefix}-deviceId`}
          label="Device id"
          value={form.deviceId}
          onInput={set("deviceId")}
          disabled={existing !== undefined || props.deviceId !== undefined}
          error={fields.deviceId}
        />
        <Select
          id={`${idPrefix}-status`}
          label="Status"
          value={form.status}
          options={[
            ["allowed", "allowed"],
            ["blocked", "blocked"],
          ]}
          onChange={set("status")}
          error={fields.status}
        />
        <Field
          id={`${idPrefix}-profile`}
          label="Profile"
          value={form.profile}
          onInput={set("profile")}
          error={fields.profile}
        />
        <Field id={`${idPrefix}-lot`} label="Lot" value={form.lot} onInput={set("lot")} error={fields.lot} />
        <Field
          id={`${idPrefix}-thingType`}
          label="Thing type"
          value={form.thingType}
          onInput={set("thingType")}
          error={fields.thingType}
        />
        <Field
          id={`${idPrefix}-thingGroups`}
          label="Thing groups"
          hint="comma-separated"
          value={form.thingGroups}
          onInput={set("thingGroups")}
          error={fields.thingGroups}
        />
        <Field
          id={`${idPrefix}-notBefore`}
          label="Not before"
          hint="ISO 8601 time"
          value={form.notBefore}
          onInput={set("notBefore")}
          error={fields.notBefore}
        />
        <Field
          id={`${idPrefix}-notAfter`}
          label="Not after"
          hint="ISO 8601 time"
          value={form.notAfter}
          onInput={set("notAfter")}
          error={fields.notAfter}
        />
        <Select
          id={`${idPrefix}-rotation`}
          label="Rotation"
          value={form.rotation}
          options={[
            ["", "default (reject)"],
            ["reject", "reject"],
            ["replace", "replace"],
            ["allow-multiple", "allow-multiple"],
          ]}
          onChange={set("rotation")}
          error={fields.rotation}
        />
        <Field
          id={`${idPrefix}-caCertificateId`}
          label="CA certificate id"
          value={form.caCertificateId}
          onInput={set("caCertificateId")}
          error={fields.caCertificateId}
        />
        <Field
          id={`${idPrefix}-certificateFingerprint`}
          label="Certificate fingerprint"
          value={form.certificateFingerprint}
          onInput={set("certificateFingerprint")}
          error={fields.certificateFingerprint}
        />
        <Field
          id={`${idPrefix}-attributes`}
          label="Attributes"
          hint="one name=value a line"
          multiline
          value={form.attributes}
          onInput={set("attributes")}
          error={fields.attributes}
        />
        <Field
          id={`${idPrefix}-note`}
          label="Note"
          value={form.note}
          onInput={set("note")}
          error={fields.note}
        />
      </div>
      <button type="submit">Save record</button>
      {props.onCancel && (
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      )}
    </form>
  );
}

/** One device: record, certificate, thing, policy and timeline; explain, approve, deprovision. */
export function DevicePage({ deviceId }: { deviceId: string }) {
  const [notice, setNotice] = useState("");
  const [actionError, setActionError] = useState<unknown>();
  const [editing, setEditing] = useState(false);
  const data = useLoad(async () => {
    const [record, explanation, history] = await Promise.all([
      orNone(api.allowlist.get(deviceId)),
      api.devices.explain({ deviceId }),
      api.devices.history(deviceId, { limit: 100 }),
    ]);
    return { record, explanation, history: history.items };
  }, [deviceId]);

  async function act(what: "approve" | "deprovision") {
    const question = `Deprovision ${deviceId}? Its certificates are revoked and its thing deleted.`;
    if (what === "deprovision" && !window.confirm(question)) return;
    setActionError(undefined);
    setNotice("");
    try {
      if (what === "approve") {
        const result = await api.devices.approve(deviceId);
        setNotice(
          result.outcome === "provisioned"
            ? `Approved: ${deviceId} is provisioned (policy ${result.policyName})`
            : `Not approved: ${"reason" in result ? String(result.reason) : result.outcome}`,
        );
      } else {
        const result = await api.devices.deprovision(deviceId);
        setNotice(`Deprovisioned ${deviceId}: certificate ${result.certificateId.slice(0, 12)}… revoked`);
      }
    } catch (error) {
      setActionError(error);
    }
    data.reload();
  }

  const explanation = data.data?.explanation;
  const record = data.data?.record;
  return (
    <Page title={`Device ${deviceId}`}>
      <p>
        <a href={href("devices")}>← All devices</a>
      </p>
      <div class="toolbar">
        <button type="button" onClick={() => data.reload()}>
          Explain again
        </button>
        <button type="button" onClick={() => act("approve")}>
          Approve
        </button>
        <button type="button" class="danger" onClick={() => act("deprovision")}>
          Deprovision
        </button>
        <button type="button" onClick={() => setEditing(!editing)}>
          {record ? "Edit record" : "Create record"}
        </button>
      </div>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={actionError ?? data.error} />
      {editing && data.data && (
        <RecordEditor
          existing={record}
          deviceId={deviceId}
          onDone={(message) => {
            setEditing(false);
            setNotice(message);
            data.reload();
          }}
          onCancel={() => setEditing(false)}
        />
      )}
      {explanation && (
        <div class="cards">
          <section class="card" aria-labelledby="h-decision">
            <h2 id="h-decision">Decision now</h2>
            <p>
              <span class={`badge ${explanation.decision}`}>{explanation.decision}</span>{" "}
              {explanation.reason && <strong class="reason">{explanation.reason}</strong>}
            </p>
            {explanation.detail && <p class="detail">{explanation.detail}</p>}
            <p>Certificate would become {explanation.certificateStatus}.</p>
            {explanation.assumptions.length > 0 && (
              <ul>
                {explanation.assumptions.map((a) => (
                  <li key={a}>{a}</li>
                ))}
              </ul>
            )}
          </section>
          <section class="card" aria-labelledby="h-record">
            <h2 id="h-record">Record</h2>
            {record ? (
              <pre>{JSON.stringify(record.value, null, 2)}</pre>
            ) : (
              <p>No allowlist record: the device is not allowlisted.</p>
            )}
          </section>
          <section class="card" aria-labelledby="h-cert">
            <h2 id="h-cert">Certificate</h2>
            <dl>
              <dt>Id</dt>
              <dd>
                <ShortId id={explanation.certificate.certificateId} />
              </dd>
              <dt>Status</dt>
              <dd>{explanation.certificate.status ?? "—"}</dd>
              <dt>CA</dt>
              <dd>
                <ShortId id={explanation.caCertificateId} />
              </dd>
            </dl>
          </section>
          <section class="card" aria-labelledby="h-thing">
            <h2 id="h-thing">Thing</h2>
            {explanation.thing ? (
              <dl>
                <dt>Name</dt>
                <dd>{explanation.thing.thingName}</dd>
                <dt>Type</dt>
                <dd>{explanation.thing.thingTypeName ?? "—"}</dd>
                <dt>Groups</dt>
                <dd>{explanation.thing.thingGroups.join(", ") || "—"}</dd>
                <dt>Attributes</dt>
                <dd>{pairsOf(explanation.thing.attributes) || "—"}</dd>
              </dl>
            ) : (
              <p>No thing would be made.</p>
            )}
          </section>
          <section class="card wide" aria-labelledby="h-policy">
            <h2 id="h-policy">Policy {explanation.policy ? explanation.policy.policyName : ""}</h2>
            <p>Selected by {explanation.mapping?.selector ?? "no mapping"}.</p>
            {explanation.policy?.document ? (
              <pre>{prettyJson(explanation.policy.document)}</pre>
            ) : (
              <p>No policy document.</p>
            )}
          </section>
        </div>
      )}
      <section aria-labelledby="h-timeline">
        <h2 id="h-timeline">Timeline</h2>
        <ol class="timeline">
          {(data.data?.history ?? []).map((entry) => (
            <li key={`${entry.at}-${entry.certificateId ?? ""}-${entry.kind}`}>
              <Time at={entry.at} /> <span class={`badge ${entry.kind}`}>{entry.kind}</span>{" "}
              {entry.reason && <strong>{entry.reason}</strong>} {entry.certificateStatus ?? ""}{" "}
              {entry.certificateId && <ShortId id={entry.certificateId} />}{" "}
              {entry.actor ? `by ${entry.actor}` : ""}
              {entry.error ? ` — ${entry.error}` : ""}
            </li>
          ))}
        </ol>
      </section>
    </Page>
  );
}

/** A JSON document indented (as it is when it does not parse). */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
