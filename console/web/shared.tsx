/*
 * What every page of the console shares: the admin API client (same origin, the session cookie; the console
 * server signs), loading state, error display with the fields at fault, and small formatting helpers.
 */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { AdminClient, ApiError } from "../../api/client.ts";
import { fieldIssuesOf } from "../../api/contract.ts";
import { fetchTransport } from "../../api/fetch-transport.ts";
import { API_PREFIX } from "../paths.ts";

/** The admin API, through the console server's `/api/` proxy. */
export const api = new AdminClient<Blob>({
  baseUrl: new URL(API_PREFIX, location.origin),
  transport: fetchTransport((input, init) => fetch(input, { ...init, credentials: "same-origin" })),
});

/** A value loaded once per change of `deps`, with its error and a way to load it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const run = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => setState({ data, loading: false }),
      (error: unknown) => setState({ error, loading: false }),
    );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** The message of an error, as shown to the admin. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code}, HTTP ${error.status})`;
  return error instanceof Error ? error.message : String(error);
}

/** The fields at fault of a validation error, by the first segment of their path. */
export function fieldErrorsOf(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const issue of fieldIssuesOf(error.details)) {
    const field = issue.path.split(/[.[]/)[0] ?? "";
    out[field] = out[field] ? `${out[field]}; ${issue.message}` : issue.message;
  }
  return out;
}

/** An error, announced to assistive technology. */
export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined) return null;
  return (
    <div class="error" role="alert">
      {messageOf(error)}
    </div>
  );
}

/** A message about what just happened, announced politely. */
export function Notice({ children }: { children?: ComponentChildren }) {
  return (
    <div class="notice" role="status">
      {children}
    </div>
  );
}

/** A page's heading and content. */
export function Page({ title, children }: { title: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · jitr console`;
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">{title}</h1>
      {children}
    </section>
  );
}

/** A labelled text input; its error, if any, below it and tied to it. */
export function Field(props: {
  id: string;
  label: string;
  value: string;
  onInput: (value: string) => void;
  error?: string | undefined;
  hint?: string;
  multiline?: boolean;
  disabled?: boolean;
  type?: "text" | "number";
}) {
  const describedBy = [props.error ? `${props.id}-error` : "", props.hint ? `${props.id}-hint` : ""]
    .filter(Boolean)
    .join(" ");
  const common = {
    id: props.id,
    value: props.value,
    disabled: props.disabled,
    "aria-invalid": props.error ? ("true" as const) : undefined,
    "aria-describedby": describedBy || undefined,
    onInput: (e: Event) => props.onInput((e.currentTarget as HTMLInputElement).value),
  };
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.multiline ? (
        <textarea rows={5} {...common} />
      ) : props.type === "number" ? (
        <input type="number" {...common} />
      ) : (
        <input type="text" {...common} />
      )}
      {props.hint && (
        <small id={`${props.id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={`${props.id}-error`} class="field-error">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** A labelled select. */
export function Select(props: {
  id: string;
  label: string;
  value: string;
  options: [value: string, label: string][];
  onChange: (value: string) => void;
  error?: string | undefined;
}) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        value={props.value}
        aria-describedby={props.error ? `${props.id}-error` : undefined}
        onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}
      >
        {props.options.map(([value, label]) => (
          <option value={value} key={value}>
            {label}
          </option>
        ))}
      </select>
      {props.error && (
        <small id={`${props.id}-error`} class="field-error">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** A time as the admin's locale shows it (the ISO text in a tooltip). */
export function Time({ at }: { at: string | undefined }) {
  if (at === undefined) return <span>—</span>;
  return <time dateTime={at}>{new Date(at).toLocaleString()}</time>;
}

/** A long id cut to its start (the whole id in a tooltip). */
export function ShortId({ id }: { id: string | undefined }) {
  if (id === undefined) return <span>—</span>;
  return (
    <code title={id}>
      {id.slice(0, 12)}
      {id.length > 12 ? "…" : ""}
    </code>
  );
}

/** `name=value` lines as a record (blank lines skipped); undefined when there are none. */
export function parsePairs(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "") continue;
    const at = trimmed.indexOf("=");
    if (at <= 0) throw new Error(`"${trimmed}" is not name=value`);
    out[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1).trim();
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A record as `name=value` lines. */
export const pairsOf = (value: Record<string, string> | undefined): string =>
  Object.entries(value ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");

/** Comma-separated names as a list; undefined when empty. */
export function parseList(text: string): string[] | undefined {
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

/** The location hash of a route. */
export const href = (...parts: string[]): string => `#/${parts.map(encodeURIComponent).join("/")}`;
