// The audit log and signed audit bundles: export a scope (a time range, a run or a source) and
// download the tar (verify it offline with `stella orchestrator audit verify`).
import { useEffect, useState } from "preact/hooks";
import { apiBlob, fromUtcInput, utc } from "./api.js";
import { errorText } from "./components.jsx";
import { Paged, Section } from "./views.jsx";

function BundleExport() {
  const [scope, setScope] = useState("time_range");
  const [form, setForm] = useState({ start: "", end: "", run_id: "", source_id: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [bundle, setBundle] = useState(null);
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  // The object URL holds the archive in memory: released when replaced or on leaving.
  useEffect(() => () => bundle && URL.revokeObjectURL(bundle.url), [bundle]);
  const params = () =>
    scope === "time_range"
      ? { start: fromUtcInput(form.start), end: fromUtcInput(form.end) }
      : { [scope]: form[scope].trim() };
  const exportBundle = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { blob, headers } = await apiBlob("/audit/bundle", params());
      const disposition = headers.get("Content-Disposition") || "";
      const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "audit-bundle.tar";
      setBundle({ url: URL.createObjectURL(blob), name, size: blob.size, sha256: headers.get("X-Bundle-Sha256") });
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return (
    <>
      <form class="backfill-form" aria-label="export audit bundle" onSubmit={exportBundle}>
        <label>
          Scope
          <select value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="time_range">time range</option>
            <option value="run_id">run</option>
            <option value="source_id">source</option>
          </select>
        </label>
        {scope === "time_range" ? (
          <>
            <label>
              From (UTC)
              <input type="datetime-local" required value={form.start} onInput={set("start")} />
            </label>
            <label>
              To (UTC)
              <input type="datetime-local" required value={form.end} onInput={set("end")} />
            </label>
          </>
        ) : (
          <label>
            {scope === "run_id" ? "Run id" : "Source id"}
            <input required value={form[scope]} onInput={set(scope)} maxLength={64} />
          </label>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Export bundle
        </button>
      </form>
      {error && (
        <p class="error" role="alert">
          {errorText(error)}
        </p>
      )}
      {bundle && (
        <dl class="facts" data-testid="bundle">
          <dt>Bundle</dt>
          <dd>
            <a href={bundle.url} download={bundle.name} data-testid="bundle-download">
              Download {bundle.name}
            </a>
          </dd>
          <dt>Size</dt>
          <dd>{bundle.size} bytes</dd>
          <dt>SHA-256</dt>
          <dd>
            <code data-testid="bundle-sha256">{bundle.sha256}</code>
          </dd>
        </dl>
      )}
    </>
  );
}

export function Audit() {
  return (
    <Section title="Audit log">
      <h2>Export a signed bundle</h2>
      <BundleExport />
      <h2>Operator actions</h2>
      <Paged
        path="/audit"
        params={{}}
        rowKey={(a) => a.seq}
        testId="audit"
        columns={[
          { title: "Seq", render: (a) => a.seq },
          { title: "At", render: (a) => utc(a.occurred_at) },
          { title: "Actor", render: (a) => a.actor && a.actor.subject },
          { title: "Action", render: (a) => a.action },
          { title: "Target", render: (a) => a.target },
          { title: "Reason", render: (a) => a.reason },
          { title: "Ticket", render: (a) => a.ticket || "–" },
        ]}
      />
    </Section>
  );
}
