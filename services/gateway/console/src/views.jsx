import { useEffect, useState } from "preact/hooks";
import { api, apiAll, fromUtcInput, shortId, utc } from "./api.js";
import {
  Badge,
  ControlButton,
  Loadable,
  Pager,
  SourceSelect,
  control,
  useResource,
  usePaging,
  useSources,
} from "./components.jsx";
import { DagView, GanttView } from "./dag.jsx";

const LIFECYCLE = ["pending", "ready", "leased", "succeeded", "dead", "canceled"];
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const isJobOrRun = (e) => e.type.startsWith("job.") || e.type.startsWith("run.");

export function Section({ title, children, actions }) {
  useEffect(() => {
    document.title = `${title} · Stella Orchestrator`;
  }, [title]);
  return (
    <section aria-labelledby="section-title">
      <header class="section-header">
        <h1 id="section-title" tabIndex={-1}>
          {title}
        </h1>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Paged({ path, params, live, columns, rowKey, empty, testId }) {
  const [page, go, setNext] = usePaging();
  const res = useResource(
    () => api(path, { params: { ...params, page_size: 50, page_token: page.token } }),
    [path, JSON.stringify(params), page.token],
    live,
  );
  useEffect(() => {
    if (res.data) setNext(res.data.next_page_token);
  }, [res.data]);
  return (
    <Loadable resource={res} empty={(d) => !d.items.length && !page.prev.length}>
      {(data) => (
        <>
          <Table columns={columns} rows={data.items} rowKey={rowKey} testId={testId} />
          {empty && !data.items.length && <p class="state">{empty}</p>}
          <Pager page={page} onPage={go} />
        </>
      )}
    </Loadable>
  );
}

export function Table({ columns, rows, rowKey = (r) => r.id, testId, caption }) {
  return (
    <div class="table-wrap">
      <table data-testid={testId}>
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.title}>
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} data-id={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.title}>{c.render(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// ------------------------------------------------------------------ overview

export function Overview() {
  const res = useResource(() => api("/overview", { params: { window_s: 900 } }), [], isJobOrRun);
  return (
    <Section title="Overview">
      <Loadable resource={res}>
        {(o) => (
          <>
            <div class="tiles">
              <Tile label="Queue depth" value={o.queue_depth} hint="pending + ready jobs" testId="queue-depth" />
              <Tile label="Throughput" value={`${o.throughput_per_minute.toFixed(1)}/min`} hint="jobs succeeded, last 15 min" />
              <Tile label="Failure rate" value={pct(o.failure_rate)} hint="failed attempts, last 15 min" />
              <Tile
                label="SLO burn"
                value={`${o.slo_burn_rate.toFixed(2)}×`}
                hint={`budget ${pct(1 - o.slo_target)} of attempts`}
                alert={o.slo_burn_rate >= 2}
              />
              <Tile label="Dead letters" value={o.dead_letter_pending} hint="pending review" />
              <Tile label="Active runs" value={o.active_runs} hint="pending or running" />
            </div>
            <Table
              caption="Jobs by state"
              columns={[
                { title: "State", render: (r) => <Badge value={r.state} /> },
                { title: "Jobs", render: (r) => r.count },
              ]}
              rows={LIFECYCLE.filter((state) => state in o.jobs_by_state).map((state) => ({
                id: state,
                state,
                count: o.jobs_by_state[state],
              }))}
            />
            <p class="muted">As of {utc(o.as_of)} · head event seq {o.head_seq}</p>
          </>
        )}
      </Loadable>
    </Section>
  );
}

function Tile({ label, value, hint, alert, testId }) {
  return (
    <div class={`tile${alert ? " alert" : ""}`} data-testid={testId}>
      <div class="tile-label">{label}</div>
      <div class="tile-value">{value}</div>
      <div class="tile-hint">{hint}</div>
    </div>
  );
}

// ------------------------------------------------------------------ sources

export function Sources({ scopes }) {
  const buckets = useResource(
    () => apiAll("/throttles/buckets").catch(() => []),
    [],
    (e) => e.type.startsWith("throttle.") || e.type.startsWith("source."),
  );
  const circuits = useResource(() => apiAll("/throttles/circuits").catch(() => []), [], () => false);
  const byHost = new Map((buckets.data || []).map((b) => [b.key.host, b]));
  const circuitByHost = new Map((circuits.data || []).map((c) => [c.key.host, c]));
  const canOperate = scopes.includes("orch:operate");
  const canQuota = scopes.includes("orch:quota");
  const [tick, setTick] = useState(0);
  return (
    <Section title="Sources">
      <Paged
        key={tick}
        path="/sources"
        params={{}}
        live={(e) => e.type.startsWith("source.")}
        testId="sources"
        columns={[
          { title: "Name", render: (s) => <span data-testid="source-name">{s.name}</span> },
          { title: "Type", render: (s) => s.source_type },
          { title: "Host", render: (s) => s.host },
          {
            title: "State",
            render: (s) => (
              <span data-testid="source-state">
                <Badge value={!s.enabled ? "disabled" : s.paused ? "paused" : "active"} />
                {s.paused && s.paused_reason ? <span class="muted"> {s.paused_reason}</span> : null}
              </span>
            ),
          },
          {
            title: "Tokens",
            render: (s) => {
              const b = byHost.get(s.host);
              return b ? `${b.tokens.toFixed(1)} / ${b.capacity}` : "–";
            },
          },
          {
            title: "Effective rate",
            render: (s) => {
              const b = byHost.get(s.host);
              return b ? `${b.effective_refill_per_second}/s of ${b.refill_per_second}/s` : "–";
            },
          },
          {
            title: "Circuit",
            render: (s) => {
              const c = circuitByHost.get(s.host) || byHost.get(s.host);
              return <Badge value={(c && (c.state || c.circuit_state)) || "closed"} />;
            },
          },
          {
            title: "Controls",
            render: (s) => (
              <div class="controls">
                {s.paused ? (
                  <ControlButton
                    label="Resume"
                    title={`Resume ${s.name}`}
                    disabled={!canOperate}
                    testId="resume"
                    action={(reason, ticket) => control(`/sources/${s.id}/resume`, reason, ticket)}
                    onDone={() => setTick((t) => t + 1)}
                  />
                ) : (
                  <ControlButton
                    label="Pause"
                    title={`Pause ${s.name}`}
                    disabled={!canOperate}
                    testId="pause"
                    action={(reason, ticket) => control(`/sources/${s.id}/pause`, reason, ticket)}
                    onDone={() => setTick((t) => t + 1)}
                  />
                )}
                <ControlButton
                  label="Throttle"
                  title={`Throttle ${s.host}`}
                  disabled={!canQuota}
                  fields={[
                    { name: "rate", label: "Requests per second (0 pauses)", type: "number", value: "1" },
                    { name: "minutes", label: "For minutes", type: "number", value: "60" },
                  ]}
                  action={(reason, ticket, v) =>
                    control(`/sources/${s.id}/throttle`, reason, ticket, {
                      refill_per_second: Number(v.rate),
                      duration_s: Number(v.minutes) * 60,
                    })
                  }
                  onDone={() => buckets.refresh()}
                />
              </div>
            ),
          },
        ]}
      />
    </Section>
  );
}

// ------------------------------------------------------------------ runs

const RUN_STATES = ["", "pending", "running", "succeeded", "failed", "canceled"];

export function Runs() {
  const [state, setState] = useState("");
  return (
    <Section
      title="Runs"
      actions={
        <label>
          State{" "}
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            {RUN_STATES.map((s) => (
              <option key={s} value={s}>
                {s || "any"}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <Paged
        path="/runs"
        params={{ state: state || undefined }}
        live={isJobOrRun}
        testId="runs"
        columns={[
          { title: "Run", render: (r) => <a href={`#/runs/${r.id}`}>{r.name || shortId(r.id)}</a> },
          { title: "State", render: (r) => <Badge value={r.state} /> },
          { title: "Jobs", render: (r) => <Counts counts={r.job_counts} /> },
          { title: "Created", render: (r) => utc(r.created_at) },
          { title: "Finished", render: (r) => utc(r.finished_at) },
        ]}
      />
    </Section>
  );
}

function Counts({ counts }) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  if (!entries.length) return "–";
  return (
    <span class="counts">
      {entries.map(([state, n]) => (
        <span key={state} class={`count state-${state}`}>
          {state} {n}
        </span>
      ))}
    </span>
  );
}

export function RunDetail({ id, scopes }) {
  const dag = useResource(() => api(`/runs/${id}/dag`), [id], (e) => e.run_id === id);
  const events = useResource(() => apiAll("/events", { run_id: id }), [id], (e) => e.run_id === id);
  return (
    <Section
      title="Run"
      actions={
        dag.data &&
        (dag.data.run.state === "failed" ? (
          <ControlButton
            label="Resume run"
            title="Re-run the dead jobs and the jobs their failure canceled; succeeded jobs do not run again"
            testId="resume-run"
            disabled={!scopes.includes("orch:operate")}
            action={(reason, ticket) => control(`/runs/${id}/resume`, reason, ticket)}
            onDone={dag.refresh}
          />
        ) : (
          !["succeeded", "canceled"].includes(dag.data.run.state) && (
            <ControlButton
              label="Cancel run"
              danger
              disabled={!scopes.includes("orch:operate")}
              action={(reason, ticket) => control(`/runs/${id}/cancel`, reason, ticket)}
              onDone={dag.refresh}
            />
          )
        ))
      }
    >
      <Loadable resource={dag}>
        {(d) => (
          <>
            <dl class="run-facts">
              <dt>Name</dt>
              <dd>{d.run.name || "–"}</dd>
              <dt>Id</dt>
              <dd>
                <code>{d.run.id}</code>
              </dd>
              <dt>State</dt>
              <dd data-testid="run-state">
                <Badge value={d.run.state} />
              </dd>
              <dt>Jobs</dt>
              <dd>
                <Counts counts={d.run.job_counts} />
              </dd>
              <dt>Created</dt>
              <dd>{utc(d.run.created_at)}</dd>
              <dt>Finished</dt>
              <dd>{utc(d.run.finished_at)}</dd>
            </dl>
            <h2>DAG</h2>
            <DagView jobs={d.jobs} edges={d.edges} />
            <h2>Timeline</h2>
            <Loadable resource={events}>{(evs) => <GanttView jobs={d.jobs} events={evs} />}</Loadable>
            <h2>Jobs</h2>
            <JobTable jobs={d.jobs} />
          </>
        )}
      </Loadable>
    </Section>
  );
}

function JobTable({ jobs, testId = "jobs" }) {
  return (
    <Table
      testId={testId}
      rows={jobs}
      columns={[
        { title: "Job", render: (j) => <a href={`#/jobs/${j.id}`}>{j.key || shortId(j.id)}</a> },
        { title: "Type", render: (j) => j.job_type },
        { title: "State", render: (j) => <Badge value={j.state} /> },
        { title: "Reason", render: (j) => j.reason || "–" },
        { title: "Attempt", render: (j) => j.attempt },
        { title: "Updated", render: (j) => utc(j.updated_at) },
      ]}
    />
  );
}

// ------------------------------------------------------------------ job detail

export function JobDetail({ id, scopes }) {
  const mine = (e) => e.job && e.job.id === id;
  const job = useResource(() => api(`/jobs/${id}`), [id], mine);
  const history = useResource(() => apiAll(`/jobs/${id}/history`), [id], mine);
  const artifacts = useResource(() => apiAll(`/jobs/${id}/artifacts`), [id], mine);
  const canOperate = scopes.includes("orch:operate");
  return (
    <Section title="Job">
      <Loadable resource={job}>
        {(j) => (
          <>
            <div class="controls">
              <ControlButton
                label="Retry"
                disabled={!canOperate || j.state !== "dead"}
                action={(reason, ticket) => control(`/jobs/${id}/retry`, reason, ticket)}
                onDone={job.refresh}
              />
              <ControlButton
                label="Cancel"
                danger
                disabled={!canOperate || ["succeeded", "dead", "canceled"].includes(j.state)}
                action={(reason, ticket) => control(`/jobs/${id}/cancel`, reason, ticket)}
                onDone={job.refresh}
              />
              <ControlButton
                label="Prioritize"
                title="Change this job's priority"
                disabled={!canOperate || !["pending", "ready"].includes(j.state)}
                fields={[{ name: "priority", label: "Priority (higher first)", type: "number", value: String(j.priority) }]}
                action={(reason, ticket, v) =>
                  control(`/jobs/${id}/prioritize`, reason, ticket, { priority: Number(v.priority) })
                }
                onDone={job.refresh}
              />
              <ControlButton
                label="Replay"
                title="Run this job again as a new job"
                disabled={!canOperate || j.state !== "succeeded"}
                action={async (reason, ticket) => {
                  const copy = await control(`/jobs/${id}/replay`, reason, ticket);
                  location.hash = `#/jobs/${copy.id}`;
                }}
              />
            </div>
            <dl class="facts">
              <dt>Key</dt>
              <dd>{j.key || "–"}</dd>
              <dt>Id</dt>
              <dd>
                <code>{j.id}</code>
              </dd>
              <dt>Type</dt>
              <dd>{j.job_type}</dd>
              <dt>State</dt>
              <dd data-testid="job-state">
                <Badge value={j.state} /> {j.reason}
              </dd>
              <dt>Attempt</dt>
              <dd>
                {j.attempt} of {j.retry_policy ? j.retry_policy.max_attempts : "?"}
              </dd>
              <dt>Priority</dt>
              <dd data-testid="job-priority">{j.priority}</dd>
              {j.replay_of && (
                <>
                  <dt>Replay of</dt>
                  <dd>
                    <a href={`#/jobs/${j.replay_of}`}>{shortId(j.replay_of)}</a>
                  </dd>
                </>
              )}
              <dt>Run</dt>
              <dd>{j.run_id ? <a href={`#/runs/${j.run_id}`}>{shortId(j.run_id)}</a> : "–"}</dd>
              <dt>Progress</dt>
              <dd>
                {j.progress ? (
                  <>
                    <progress max="100" value={j.progress.percent} /> {j.progress.percent.toFixed(0)}%{" "}
                    {j.progress.message}
                  </>
                ) : (
                  "–"
                )}
              </dd>
              <dt>Lease</dt>
              <dd>
                {j.lease ? `${j.lease.worker_id}, expires ${utc(j.lease.lease_expires_at)}` : "–"}
              </dd>
              <dt>Last error</dt>
              <dd>
                {j.last_error ? (
                  <span class="error-text">
                    <Badge value={j.last_error.error_class} /> {j.last_error.message}
                  </span>
                ) : (
                  "–"
                )}
              </dd>
              <dt>Created</dt>
              <dd>{utc(j.created_at)}</dd>
              <dt>Finished</dt>
              <dd>{utc(j.finished_at)}</dd>
            </dl>
          </>
        )}
      </Loadable>
      <h2>History</h2>
      <Loadable resource={history} empty={(d) => !d.length}>
        {(events) => (
          <Table
            testId="history"
            rows={events}
            rowKey={(e) => e.seq}
            columns={[
              { title: "Seq", render: (e) => e.seq },
              { title: "Event", render: (e) => e.type },
              { title: "Attempt", render: (e) => (e.job ? e.job.attempt : "–") },
              { title: "Reason", render: (e) => (e.job && e.job.reason) || "–" },
              { title: "Actor", render: (e) => (e.actor ? e.actor.subject : "–") || "–" },
              { title: "At", render: (e) => utc(e.occurred_at) },
            ]}
          />
        )}
      </Loadable>
      <h2>Artifacts</h2>
      <Loadable resource={artifacts}>
        {(items) =>
          items.length ? (
            <Table
              rows={items}
              columns={[
                { title: "Name", render: (a) => a.name },
                { title: "Media type", render: (a) => a.media_type },
                { title: "Size", render: (a) => `${a.size_bytes} B` },
                { title: "Digest", render: (a) => <code>{a.digest.slice(0, 19)}…</code> },
                { title: "URI", render: (a) => a.uri || "–" },
              ]}
            />
          ) : (
            <p class="state">No artifacts.</p>
          )
        }
      </Loadable>
    </Section>
  );
}

// ------------------------------------------------------------------ dead letter

export function DeadLetter({ scopes }) {
  const deadEvents = (e) => e.type === "job.dead" || e.type === "job.retried";
  const stats = useResource(() => api("/deadletter/stats"), [], deadEvents);
  const [tick, setTick] = useState(0);
  const canOperate = scopes.includes("orch:operate");
  const refresh = () => {
    setTick((t) => t + 1);
    stats.refresh();
  };
  return (
    <Section title="Dead letter">
      <h2>Clusters</h2>
      <Loadable resource={stats} empty={(s) => !s.clusters.length}>
        {(s) => (
          <Table
            testId="clusters"
            rows={s.clusters}
            rowKey={(c) => `${c.error_class}/${c.job_type}/${c.source_id}`}
            columns={[
              { title: "Error class", render: (c) => <Badge value={c.error_class} /> },
              { title: "Job type", render: (c) => c.job_type },
              { title: "Entries", render: (c) => c.count },
              { title: "Retryable", render: (c) => c.retryable_count },
              { title: "Last failure", render: (c) => utc(c.last_failed_at) },
              { title: "Sample", render: (c) => c.sample_message },
              {
                title: "Replay",
                render: (c) => (
                  <ControlButton
                    label={`Replay ${c.count}`}
                    title={`Replay ${c.count} ${c.error_class} entries of ${c.job_type}`}
                    disabled={!canOperate}
                    action={(reason, ticket) =>
                      control("/deadletter/replay", reason, ticket, {
                        error_class: c.error_class,
                        job_type: c.job_type,
                        source_id: c.source_id || null,
                        limit: 500,
                      })
                    }
                    onDone={refresh}
                  />
                ),
              },
            ]}
          />
        )}
      </Loadable>
      <h2>Pending entries</h2>
      <Paged
        key={tick}
        path="/deadletter"
        params={{ status: "pending" }}
        live={deadEvents}
        testId="deadletter"
        columns={[
          { title: "Job", render: (d) => <a href={`#/jobs/${d.job_id}`}>{shortId(d.job_id)}</a> },
          { title: "Type", render: (d) => d.job_type },
          { title: "Error", render: (d) => <Badge value={d.error_class} /> },
          { title: "Message", render: (d) => (d.last_error ? d.last_error.message : "–") },
          { title: "Attempts", render: (d) => d.attempts },
          { title: "Failed", render: (d) => utc(d.failed_at) },
          {
            title: "Controls",
            render: (d) => (
              <ControlButton
                label="Retry"
                title="Retry this dead job"
                testId="replay"
                disabled={!canOperate}
                action={(reason, ticket) => control(`/deadletter/${d.id}/replay`, reason, ticket)}
                onDone={refresh}
              />
            ),
          },
        ]}
      />
    </Section>
  );
}

// ------------------------------------------------------------------ throttles (incidents: incidents.jsx, audit: audit.jsx)

export function Throttles() {
  return (
    <Section title="Throttles">
      <h2>Token buckets</h2>
      <Paged
        path="/throttles/buckets"
        params={{}}
        live={(e) => e.type.startsWith("throttle.")}
        rowKey={(b) => b.key.host}
        testId="buckets"
        columns={[
          { title: "Host", render: (b) => b.key.host || "(tenant default)" },
          { title: "Tokens", render: (b) => `${b.tokens.toFixed(1)} / ${b.capacity}` },
          { title: "Configured", render: (b) => `${b.refill_per_second}/s` },
          { title: "Effective", render: (b) => `${b.effective_refill_per_second}/s` },
          { title: "Paused until", render: (b) => utc(b.paused_until) },
          { title: "Override until", render: (b) => utc(b.override_until) },
          { title: "Circuit", render: (b) => <Badge value={b.circuit_state} /> },
          { title: "Reason", render: (b) => b.reason || "–" },
        ]}
      />
      <h2>Circuit breakers</h2>
      <Paged
        path="/throttles/circuits"
        params={{}}
        rowKey={(c) => c.key.host}
        columns={[
          { title: "Host", render: (c) => c.key.host },
          { title: "State", render: (c) => <Badge value={c.state} /> },
          { title: "Failures", render: (c) => `${c.failure_count} of ${c.request_count}` },
          { title: "Opened", render: (c) => utc(c.opened_at) },
        ]}
      />
      <h2>Blackouts</h2>
      <Paged
        path="/throttles/blackouts"
        params={{}}
        columns={[
          { title: "Source", render: (b) => (b.source_id ? shortId(b.source_id) : "whole tenant") },
          { title: "Start", render: (b) => utc(b.start) },
          { title: "End", render: (b) => utc(b.end) },
          { title: "Reason", render: (b) => b.reason },
        ]}
      />
    </Section>
  );
}

// ------------------------------------------------------------------ backfills

export function Backfills({ scopes }) {
  const [sources] = useSources();
  const [form, setForm] = useState({ source_id: "", job_type: "", start: "", end: "", hours: "1" });
  const [preview, setPreview] = useState(null);
  const [tick, setTick] = useState(0);
  const canBackfill = scopes.includes("orch:backfill");
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const body = (dryRun) => ({
    source_id: form.source_id,
    job_type: form.job_type,
    start: fromUtcInput(form.start),
    end: fromUtcInput(form.end),
    window_size_s: Number(form.hours) * 3600,
    dry_run: dryRun,
  });
  const ready = form.source_id && form.job_type && form.start && form.end && Number(form.hours) > 0;
  return (
    <Section title="Backfills">
      <form class="backfill-form" onSubmit={(e) => e.preventDefault()} aria-label="new backfill">
        <label>
          Source
          <SourceSelect sources={sources} value={form.source_id} onChange={set("source_id")} none="choose…" />
        </label>
        <label>
          Job type
          <input value={form.job_type} onInput={set("job_type")} maxLength={200} />
        </label>
        <label>
          From (UTC)
          <input type="datetime-local" value={form.start} onInput={set("start")} />
        </label>
        <label>
          To (UTC)
          <input type="datetime-local" value={form.end} onInput={set("end")} />
        </label>
        <label>
          Window (hours)
          <input type="number" min="0.01" step="any" value={form.hours} onInput={set("hours")} />
        </label>
        <div class="controls">
          <ControlButton
            label="Preview"
            title="Preview this backfill (dry run)"
            disabled={!canBackfill || !ready}
            action={async (reason, ticket) => {
              const result = await control("/backfills", reason, ticket, body(true));
              setPreview(result.preview);
            }}
          />
          <ControlButton
            label="Create backfill"
            title="Create this backfill"
            disabled={!canBackfill || !ready}
            action={async (reason, ticket) => {
              await control("/backfills", reason, ticket, body(false));
              setPreview(null);
            }}
            onDone={() => setTick((t) => t + 1)}
          />
        </div>
      </form>
      {preview && (
        <dl class="facts" data-testid="backfill-preview">
          <dt>Windows</dt>
          <dd>{preview.window_count}</dd>
          <dt>Jobs</dt>
          <dd>{preview.job_count}</dd>
          <dt>Suppressed windows</dt>
          <dd>{preview.suppressed_window_count}</dd>
          <dt>Estimated duration</dt>
          <dd>{preview.estimated_duration === null ? "–" : `${Math.round(preview.estimated_duration)} s`}</dd>
          <dt>Limited by</dt>
          <dd>{preview.limited_by || "–"}</dd>
          <dt>Overlapping backfills</dt>
          <dd>{preview.overlapping_backfill_ids.length ? preview.overlapping_backfill_ids.join(", ") : "none"}</dd>
        </dl>
      )}
      <h2>Backfills</h2>
      <Paged
        key={tick}
        path="/backfills"
        params={{}}
        live={(e) => e.type.startsWith("job.") && !!e.run_id}
        testId="backfills"
        columns={[
          { title: "Source", render: (b) => shortId(b.source_id) },
          { title: "Job type", render: (b) => b.job_type },
          { title: "Range (UTC)", render: (b) => `${utc(b.range && b.range.start)} → ${utc(b.range && b.range.end)}` },
          { title: "State", render: (b) => <Badge value={b.state} /> },
          { title: "Progress", render: (b) => `${b.succeeded_job_count} / ${b.job_count} jobs` },
          { title: "Ticket", render: (b) => b.ticket },
          { title: "Run", render: (b) => (b.run_id ? <a href={`#/runs/${b.run_id}`}>{shortId(b.run_id)}</a> : "–") },
          {
            title: "Controls",
            render: (b) => (
              <ControlButton
                label="Cancel"
                danger
                disabled={!canBackfill || ["succeeded", "failed", "canceled"].includes(b.state)}
                action={(reason, ticket) => control(`/backfills/${b.id}/cancel`, reason, ticket)}
                onDone={() => setTick((t) => t + 1)}
              />
            ),
          },
        ]}
      />
    </Section>
  );
}
