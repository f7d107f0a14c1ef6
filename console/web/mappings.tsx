/*
 * The policy-mapping page: list, edit with messages per field, the what-if (devices whose policy would
 * change, before and after) shown before saving, and reconcile with progress.
 */
import { useState } from "preact/hooks";
import { ApiError } from "../../api/client.ts";
import type {
  MappingDraft,
  MappingWhatIf,
  PolicyMapping,
  ReconcileSlice,
  Versioned,
} from "../../api/contract.ts";
import {
  api,
  ErrorBox,
  Field,
  fieldErrorsOf,
  messageOf,
  Notice,
  Page,
  pairsOf,
  parseList,
  parsePairs,
  Select,
  useLoad,
} from "./shared.tsx";

type PolicyKind = "template" | "policyName" | "document" | "none";

interface MappingForm {
  selector: string;
  kind: PolicyKind;
  policy: string;
  thingType: string;
  thingGroups: string;
  attributes: string;
}

function formOf(mapping: PolicyMapping | undefined): MappingForm {
  const policy = mapping?.policy;
  const kind: PolicyKind =
    policy === undefined
      ? "none"
      : "template" in policy
        ? "template"
        : "policyName" in policy
          ? "policyName"
          : "document";
  const value =
    policy === undefined
      ? ""
      : "template" in policy
        ? policy.template
        : "policyName" in policy
          ? policy.policyName
          : typeof policy.document === "string"
            ? policy.document
            : JSON.stringify(policy.document, null, 2);
  return {
    selector: mapping?.selector ?? "",
    kind,
    policy: value,
    thingType: mapping?.thingType ?? "",
    thingGroups: (mapping?.thingGroups ?? []).join(", "),
    attributes: pairsOf(mapping?.attributes),
  };
}

/** The draft a form holds, over the fields of the mapping read that the form does not show (a provisioning template). */
function draftOf(form: MappingForm, base: PolicyMapping | undefined): MappingDraft {
  const {
    selector: _s,
    version: _v,
    createdAt: _c,
    updatedAt: _u,
    updatedBy: _b,
    ...kept
  } = base ?? {
    selector: "",
    version: 0,
  };
  const draft: Record<string, unknown> = { ...kept };
  delete draft.policy;
  if (form.kind === "template") draft.policy = { template: form.policy.trim() };
  if (form.kind === "policyName") draft.policy = { policyName: form.policy.trim() };
  if (form.kind === "document") {
    try {
      draft.policy = { document: JSON.parse(form.policy) as Record<string, unknown> };
    } catch (error) {
      throw new ApiError(400, "ValidationError", "the policy document is not JSON", [
        { path: "policy", message: `not JSON: ${messageOf(error)}` },
      ]);
    }
  }
  draft.thingType = form.thingType.trim() || undefined;
  draft.thingGroups = parseList(form.thingGroups);
  try {
    draft.attributes = parsePairs(form.attributes);
  } catch (error) {
    throw new ApiError(400, "ValidationError", messageOf(error), [
      { path: "attributes", message: messageOf(error) },
    ]);
  }
  return Object.fromEntries(Object.entries(draft).filter(([, v]) => v !== undefined)) as MappingDraft;
}

/** The mappings, one editor, and reconcile. */
export function MappingsPage() {
  const list = useLoad(() => api.mappings.list({ limit: 1000 }), []);
  const [editing, setEditing] = useState<Versioned<PolicyMapping> | "new">();
  const [notice, setNotice] = useState("");
  const [error, setError] = useState<unknown>();
  return (
    <Page title="Mappings">
      <p>
        Lookup order: <code>device:&lt;id&gt;</code> › <code>profile:&lt;name&gt;</code> ›{" "}
        <code>thingType:&lt;name&gt;</code> › <code>ca:&lt;id&gt;</code> › <code>default</code>.
      </p>
      <div class="toolbar">
        <button type="button" onClick={() => setEditing("new")}>
          New mapping
        </button>
      </div>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error ?? list.error} />
      {editing && (
        <MappingEditor
          key={editing === "new" ? "new" : editing.value.selector}
          existing={editing === "new" ? undefined : editing}
          onDone={(message) => {
            setEditing(undefined);
            setNotice(message);
            list.reload();
          }}
          onCancel={() => setEditing(undefined)}
        />
      )}
      <table>
        <caption>{list.loading ? "Loading…" : `${list.data?.items.length ?? 0} mappings`}</caption>
        <thead>
          <tr>
            <th scope="col">Selector</th>
            <th scope="col">Policy</th>
            <th scope="col">Thing type</th>
            <th scope="col">Groups</th>
            <th scope="col">Version</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.items ?? []).map((m) => (
            <tr key={m.selector}>
              <td>
                <code>{m.selector}</code>
              </td>
              <td>{policySummary(m)}</td>
              <td>{m.thingType ?? "—"}</td>
              <td>{m.thingGroups?.join(", ") || "—"}</td>
              <td>{m.version}</td>
              <td>
                <button
                  type="button"
                  aria-label={`Edit mapping ${m.selector}`}
                  onClick={async () => {
                    setError(undefined);
                    try {
                      setEditing(await api.mappings.get(m.selector));
                    } catch (failure) {
                      setError(failure);
                    }
                  }}
                >
                  Edit
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Reconcile />
    </Page>
  );
}

function policySummary(m: PolicyMapping): string {
  if (m.provisioningTemplate) return "provisioning template";
  if (!m.policy) return "—";
  if ("template" in m.policy) return `template ${m.policy.template}`;
  if ("policyName" in m.policy) return `existing policy ${m.policy.policyName}`;
  return "inline document";
}

/** Edits one mapping: the what-if of the draft must be seen before it can be saved. */
function MappingEditor(props: {
  existing: Versioned<PolicyMapping> | undefined;
  onDone: (message: string) => void;
  onCancel: () => void;
}) {
  const { existing } = props;
  const [form, setForm] = useState(formOf(existing?.value));
  const [error, setError] = useState<unknown>();
  const [whatIf, setWhatIf] = useState<{ draft: string; result: MappingWhatIf }>();
  const fields = fieldErrorsOf(error);
  const set = (name: keyof MappingForm) => (value: string) => setForm({ ...form, [name]: value });
  const current = (): MappingDraft => draftOf(form, existing?.value);
  const previewed = (() => {
    try {
      return whatIf !== undefined && whatIf.draft === JSON.stringify(current());
    } catch {
      return false;
    }
  })();

  async function preview() {
    setError(undefined);
    try {
      const draft = current();
      setWhatIf({ draft: JSON.stringify(draft), result: await api.mappings.whatIf(form.selector, draft) });
    } catch (failure) {
      setWhatIf(undefined);
      setError(failure);
    }
  }

  async function save(e: Event) {
    e.preventDefault();
    setError(undefined);
    try {
      const saved = await api.mappings.put(
        form.selector,
        current(),
        existing ? { ifMatch: existing.etag } : { ifNoneMatch: "*" },
      );
      const warnings = saved.value.warnings?.map((w) => w.message).join("; ");
      props.onDone(
        `${form.selector} saved at version ${saved.value.version}${warnings ? ` (${warnings})` : ""}`,
      );
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <form
      class="editor"
      aria-label={existing ? `Edit mapping ${form.selector}` : "New mapping"}
      onSubmit={save}
    >
      <h2>
        {existing ? `Edit mapping ${form.selector} (version ${existing.value.version})` : "New mapping"}
      </h2>
      <ErrorBox error={error} />
      <div class="grid">
        <Field
          id="m-selector"
          label="Selector"
          hint="device:<id>, profile:<name>, thingType:<name>, ca:<id> or default"
          value={form.selector}
          disabled={existing !== undefined}
          onInput={set("selector")}
          error={fields.selector}
        />
        <Select
          id="m-kind"
          label="Policy from"
          value={form.kind}
          options={[
            ["template", "a template in policies/"],
            ["policyName", "an existing policy"],
            ["document", "an inline document"],
            ["none", "none (provisioning template)"],
          ]}
          onChange={(kind) => setForm({ ...form, kind: kind as PolicyKind })}
        />
        <Field
          id="m-policy"
          label={form.kind === "document" ? "Policy document (JSON)" : "Policy"}
          multiline={form.kind === "document"}
          value={form.policy}
          disabled={form.kind === "none"}
          onInput={set("policy")}
          error={fields.policy ?? fields.provisioningTemplate}
        />
        <Field
          id="m-thingType"
          label="Thing type"
          value={form.thingType}
          onInput={set("thingType")}
          error={fields.thingType}
        />
        <Field
          id="m-thingGroups"
          label="Thing groups"
          hint="comma-separated"
          value={form.thingGroups}
          onInput={set("thingGroups")}
          error={fields.thingGroups}
        />
        <Field
          id="m-attributes"
          label="Attributes"
          hint="one name=value a line"
          multiline
          value={form.attributes}
          onInput={set("attributes")}
          error={fields.attributes}
        />
      </div>
      <button type="button" onClick={preview}>
        Preview what-if
      </button>
      <button type="submit" disabled={!previewed}>
        Save mapping
      </button>
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
      {!previewed && <p class="hint">Preview the what-if of this draft to save it.</p>}
      {whatIf && <WhatIf result={whatIf.result} />}
    </form>
  );
}

/** The what-if of a mapping draft: the devices whose policy or thing would change, before and after. */
function WhatIf({ result }: { result: MappingWhatIf }) {
  return (
    <section class="whatif" aria-labelledby="h-whatif">
      <h3 id="h-whatif">What-if</h3>
      <p role="status">
        {result.affectedCount} of {result.devicesExamined} provisioned devices would change.
      </p>
      {result.warnings.length > 0 && (
        <ul class="warnings">
          {result.warnings.map((w) => (
            <li key={w.message}>{w.message}</li>
          ))}
        </ul>
      )}
      {result.affected.length > 0 && (
        <table>
          <caption>Devices whose policy or thing would change</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
              <th scope="col">Changes</th>
            </tr>
          </thead>
          <tbody>
            {result.affected.map((a) => (
              <tr key={a.deviceId}>
                <td>{a.deviceId}</td>
                <td>
                  {a.from.policyName ?? "—"} <small>({a.from.selector ?? "no mapping"})</small>
                </td>
                <td>
                  {a.to.policyName ?? "—"} <small>({a.to.selector ?? "no mapping"})</small>
                </td>
                <td>{a.changes.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Reconcile: a dry run or the real thing, slice by slice, with progress. */
function Reconcile() {
  const [progress, setProgress] = useState<{
    examined: number;
    changed: number;
    done: boolean;
    dryRun: boolean;
  }>();
  const [error, setError] = useState<unknown>();
  const [lines, setLines] = useState<string[]>([]);

  async function run(dryRun: boolean) {
    setError(undefined);
    setLines([]);
    let cursor: string | undefined;
    let examined = 0;
    let changed = 0;
    const found: string[] = [];
    setProgress({ examined, changed, done: false, dryRun });
    try {
      for (;;) {
        const slice: ReconcileSlice = await api.reconcile.slice({
          dryRun,
          limit: 20,
          ...(cursor ? { cursor } : {}),
        });
        examined += slice.examined;
        for (const device of slice.devices) {
          if (device.actions.length > 0) {
            changed += 1;
            found.push(`${device.deviceId}: ${device.outcome} — ${device.actions.join(", ")}`);
          }
        }
        setProgress({ examined, changed, done: slice.done, dryRun });
        setLines([...found]);
        if (slice.done || slice.cursor === undefined) break;
        cursor = slice.cursor;
      }
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <section aria-labelledby="h-reconcile">
      <h2 id="h-reconcile">Reconcile</h2>
      <p>Bring provisioned devices' policies, thing and groups to what their records select now.</p>
      <button type="button" onClick={() => run(true)}>
        Reconcile (dry run)
      </button>
      <button type="button" onClick={() => run(false)}>
        Apply reconcile
      </button>
      <ErrorBox error={error} />
      {progress && (
        <div role="status">
          <progress aria-label="Reconcile progress" max={1} value={progress.done ? 1 : undefined} />{" "}
          {progress.done ? "Done" : "Running"}: {progress.examined} devices examined, {progress.changed}{" "}
          {progress.dryRun ? "would change" : "changed"}.
        </div>
      )}
      {lines.length > 0 && (
        <ul>
          {lines.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
    </section>
  );
}
