import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, apiAll } from "./api.js";

// Live events fan out from the one stream in <App> to whoever subscribed.
const listeners = new Set();
export function publish(event) {
  for (const fn of listeners) fn(event);
}
export function useLiveEvents(match, onMatch) {
  const saved = useRef(onMatch);
  saved.current = onMatch;
  useEffect(() => {
    const fn = (event) => {
      if (match(event)) saved.current(event);
    };
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
}

// Load data, with loading / error / empty states, a retry, and live refresh (debounced).
export function useResource(load, deps, liveMatch) {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  const seq = useRef(0);
  const refresh = useCallback(() => {
    const mine = ++seq.current;
    load().then(
      (data) => mine === seq.current && setState({ loading: false, data, error: null }),
      (error) => mine === seq.current && setState({ loading: false, data: null, error }),
    );
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    refresh();
  }, [refresh]);
  const timer = useRef(null);
  useLiveEvents(liveMatch || (() => false), () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      refresh();
    }, 250);
  });
  useEffect(() => () => timer.current && clearTimeout(timer.current), []);
  return { ...state, refresh };
}

export function Loadable({ resource, empty, children }) {
  const { loading, data, error, refresh } = resource;
  if (error) {
    return (
      <div class="state error" role="alert">
        <p>
          <strong>Could not load.</strong> {errorText(error)}
        </p>
        <button type="button" onClick={refresh}>
          Retry
        </button>
      </div>
    );
  }
  if (loading && data === null) return <p class="state" aria-busy="true">Loading…</p>;
  if (empty && empty(data)) {
    return (
      <div class="state empty">
        <p>No data.</p>
        <button type="button" onClick={refresh}>
          Retry
        </button>
      </div>
    );
  }
  return children(data);
}

export function errorText(error) {
  if (error instanceof ApiError) {
    const p = error.problem || {};
    return `${error.status} ${p.title || ""}: ${p.detail || error.message}`;
  }
  return String(error && error.message ? error.message : error);
}

export function Badge({ value }) {
  return <span class={`badge badge-${value}`}>{value}</span>;
}

// A control action: asks for confirmation with a reason (required) and a ticket.
// `fields`: extra inputs asked for in the dialog, e.g. [{name: "priority", label: "Priority",
// type: "number", value: "0"}]; their values reach `action(reason, ticket, values)`.
export function ControlButton({ label, title, action, disabled, danger, onDone, testId, fields }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        class={danger ? "danger" : ""}
        disabled={disabled}
        onClick={() => setOpen(true)}
        data-testid={testId}
      >
        {label}
      </button>
      {open && (
        <ConfirmDialog
          title={title || label}
          fields={fields}
          onCancel={() => setOpen(false)}
          onConfirm={async (reason, ticket, values) => {
            await action(reason, ticket, values);
            setOpen(false);
            if (onDone) onDone();
          }}
        />
      )}
    </>
  );
}

export function ConfirmDialog({ title, onCancel, onConfirm, fields = [] }) {
  const ref = useRef(null);
  const [values, setValues] = useState(Object.fromEntries(fields.map((f) => [f.name, f.value])));
  const [reason, setReason] = useState("");
  const [ticket, setTicket] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const input = dialog && dialog.querySelector("input");
    if (input) input.focus();
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    if (!reason.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await onConfirm(reason.trim(), ticket.trim(), values);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <dialog
      ref={ref}
      class="confirm"
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form onSubmit={submit}>
        <h2 id="confirm-title">{title}?</h2>
        <p>This action is recorded in the audit trail with your reason.</p>
        {fields.map((f) => (
          <label key={f.name}>
            {f.label}
            <input
              name={f.name}
              type={f.type || "text"}
              step="any"
              required
              value={values[f.name]}
              onInput={(e) => setValues({ ...values, [f.name]: e.currentTarget.value })}
            />
          </label>
        ))}
        <label>
          Reason (required)
          <input
            name="reason"
            required
            maxLength={256}
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
        </label>
        <label>
          Ticket
          <input
            name="ticket"
            maxLength={128}
            value={ticket}
            onInput={(e) => setTicket(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {errorText(error)}
          </p>
        )}
        <div class="actions">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy || !reason.trim()}>
            Confirm
          </button>
        </div>
      </form>
    </dialog>
  );
}

export function Pager({ page, onPage }) {
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={!page.prev.length} onClick={() => onPage("prev")}>
        Previous page
      </button>
      <button type="button" disabled={!page.next} onClick={() => onPage("next")}>
        Next page
      </button>
    </nav>
  );
}

// Cursor paging state: the token of the current page and the stack of previous ones.
export function usePaging() {
  const [page, setPage] = useState({ token: "", prev: [], next: "" });
  const go = (dir) =>
    setPage((p) =>
      dir === "next"
        ? { token: p.next, prev: [...p.prev, p.token], next: "" }
        : { token: p.prev[p.prev.length - 1] || "", prev: p.prev.slice(0, -1), next: "" },
    );
  const setNext = (next) => setPage((p) => (p.next === next ? p : { ...p, next }));
  return [page, go, setNext];
}

export async function control(path, reason, ticket, body) {
  return api(path, { method: "POST", reason, ticket, body });
}

// The tenant's sources (for pickers and names): [sources, Map id -> name].
export function useSources() {
  const res = useResource(() => apiAll("/sources"), [], () => false);
  const sources = res.data || [];
  return [sources, new Map(sources.map((s) => [s.id, s.name]))];
}

export function SourceSelect({ sources, value, onChange, none }) {
  return (
    <select value={value} onChange={onChange}>
      <option value="">{none}</option>
      {sources.map((s) => (
        <option key={s.id} value={s.id}>
          {s.name}
        </option>
      ))}
    </select>
  );
}
