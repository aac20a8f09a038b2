// The job list with filters, the failure heatmap (source × hour) and the SLO burn view, over
// the gateway's /insights reads.
import { useState } from "preact/hooks";
import { api, fromUtcInput, shortId, utc } from "./api.js";
import { Badge, Loadable, SourceSelect, useResource, useSources } from "./components.jsx";
import { Paged, Section, Table } from "./views.jsx";

const JOB_STATES = ["pending", "ready", "leased", "succeeded", "dead", "canceled"];
const ERROR_CLASSES = [
  "http_429",
  "http_5xx",
  "http_4xx",
  "timeout",
  "parse_error",
  "schema_mismatch",
  "lease_expired",
  "worker_crash",
  "canceled",
  "internal",
  "other",
];
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const isJobEvent = (e) => e.type.startsWith("job.");

const toLocal = (iso) => (iso ? iso.slice(0, 16) : "");

// ------------------------------------------------------------------ job list

const FILTERS = ["state", "job_type", "source_id", "error_class", "since", "until", "failed_in_range"];

export function JobList({ query }) {
  const [sources, names] = useSources();
  const filters = Object.fromEntries(FILTERS.map((k) => [k, query[k] || ""]));
  // The filters live in the URL (#/jobs?source_id=…), so a heatmap cell or a shared link
  // opens the same list.
  const set = (key) => (e) => {
    const next = { ...filters, [key]: e.currentTarget.value };
    if (key === "since" || key === "until") next[key] = fromUtcInput(e.currentTarget.value);
    const params = new URLSearchParams(Object.entries(next).filter(([, v]) => v));
    location.hash = `#/jobs${params.toString() ? `?${params}` : ""}`;
  };
  return (
    <Section title="Jobs">
      <form class="filters" aria-label="job filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={filters.state} onChange={set("state")}>
            <option value="">any</option>
            {JOB_STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Job type
          <input value={filters.job_type} onChange={set("job_type")} maxLength={200} />
        </label>
        <label>
          Source
          <SourceSelect sources={sources} value={filters.source_id} onChange={set("source_id")} none="any" />
        </label>
        <label>
          Error class
          <select value={filters.error_class} onChange={set("error_class")}>
            <option value="">any</option>
            {ERROR_CLASSES.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          From (UTC)
          <input type="datetime-local" value={toLocal(filters.since)} onChange={set("since")} />
        </label>
        <label>
          To (UTC)
          <input type="datetime-local" value={toLocal(filters.until)} onChange={set("until")} />
        </label>
        <label>
          Time of
          <select value={filters.failed_in_range} onChange={set("failed_in_range")}>
            <option value="">creation</option>
            <option value="true">a failed attempt</option>
          </select>
        </label>
      </form>
      <Paged
        key={JSON.stringify(filters)}
        path="/insights/jobs"
        params={filters}
        live={isJobEvent}
        testId="job-list"
        empty="No job matches these filters."
        columns={[
          { title: "Job", render: (j) => <a href={`#/jobs/${j.id}`}>{j.key || shortId(j.id)}</a> },
          { title: "Type", render: (j) => j.job_type },
          { title: "State", render: (j) => <Badge value={j.state} /> },
          { title: "Source", render: (j) => (j.source_id ? names.get(j.source_id) || shortId(j.source_id) : "–") },
          { title: "Attempt", render: (j) => `${j.attempt} / ${j.max_attempts}` },
          {
            title: "Last error",
            render: (j) =>
              j.last_error_class ? (
                <span class="error-text">
                  <Badge value={j.last_error_class} /> {(j.last_error_message || "").slice(0, 80)}
                </span>
              ) : (
                "–"
              ),
          },
          { title: "Run", render: (j) => (j.run_id ? <a href={`#/runs/${j.run_id}`}>{shortId(j.run_id)}</a> : "–") },
          { title: "Created", render: (j) => utc(j.created_at) },
          { title: "Updated", render: (j) => utc(j.updated_at) },
        ]}
      />
    </Section>
  );
}

// ------------------------------------------------------------------ failure heatmap

// Six colour steps (classes heat-0 … heat-5: the CSP allows no inline style).
function heatClass(failures, max) {
  if (!failures) return "heat-0";
  return `heat-${Math.min(5, 1 + Math.floor((failures / Math.max(max, 1)) * 4.999))}`;
}

export function Failures() {
  const [hours, setHours] = useState("24");
  const res = useResource(
    () => api("/insights/failure-heatmap", { params: { hours } }),
    [hours],
    (e) => e.type === "job.retrying" || e.type === "job.dead",
  );
  return (
    <Section
      title="Failures"
      actions={
        <label>
          Last{" "}
          <select value={hours} onChange={(e) => setHours(e.currentTarget.value)}>
            <option value="24">24 hours</option>
            <option value="72">3 days</option>
            <option value="168">7 days</option>
          </select>
        </label>
      }
    >
      <Loadable resource={res}>
        {(heat) => {
          const max = Math.max(0, ...heat.rows.flatMap((r) => r.failures));
          if (!heat.rows.length) return <p class="state">No attempt finished in this period.</p>;
          return (
            <>
              <div class="table-wrap">
                <table class="heatmap" data-testid="heatmap">
                  <caption>
                    Failed attempts per source and hour (UTC), {utc(heat.since)} → {utc(heat.until)}; select a
                    cell for its jobs.
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">Source</th>
                      {heat.hours.map((h) => (
                        <th scope="col" key={h} class="hour">
                          {h.slice(11, 13)}
                        </th>
                      ))}
                      <th scope="col">Total</th>
                    </tr>
                  </thead>
                  <tbody>
                    {heat.rows.map((row) => (
                      <tr key={row.source_id} data-source={row.source_name}>
                        <th scope="row">{row.source_name}</th>
                        {heat.hours.map((h, i) => {
                          const until = new Date(new Date(h).getTime() + 3600e3).toISOString();
                          const params = new URLSearchParams({ since: h, until, failed_in_range: "true" });
                          if (row.source_id) params.set("source_id", row.source_id);
                          const n = row.failures[i];
                          const label = `${row.source_name}, ${utc(h)}: ${n} failed of ${row.attempts[i]} attempts`;
                          return (
                            <td key={h} class={`cell ${heatClass(n, max)}`}>
                              {n ? (
                                <a href={`#/jobs?${params}`} title={label} aria-label={label}>
                                  {n}
                                </a>
                              ) : (
                                <span title={label}>{row.attempts[i] ? "·" : ""}</span>
                              )}
                            </td>
                          );
                        })}
                        <td data-testid="row-total">{row.failures.reduce((a, b) => a + b, 0)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <p class="legend muted">
                Colour: failed attempts (a retry, or the death of a leased job) relative to the busiest cell ({max});
                · = attempts, none failed.
              </p>
            </>
          );
        }}
      </Loadable>
    </Section>
  );
}

// ------------------------------------------------------------------ SLO

// Multi-window burn-rate alerting (Google SRE workbook): a page when 1 h and 6 h both burn
// faster than 14.4× / 6×, a ticket when 3 d burns faster than 1×.
const THRESHOLDS = { "1h": 14.4, "6h": 6, "3d": 1 };
const WINDOW_NAMES = { "1h": "1 hour", "6h": "6 hours", "3d": "3 days" };

export function Slo() {
  const res = useResource(() => api("/insights/slo"), [], (e) => e.type === "job.retrying" || e.type === "job.dead");
  return (
    <Section title="SLO">
      <Loadable resource={res}>
        {(slo) => (
          <>
            <p>
              Target: <strong>{pct(slo.target)}</strong> of attempts succeed (error budget {pct(1 - slo.target)}). Burn
              rate 1× spends the budget exactly over the window.
            </p>
            <div class="tiles" data-testid="slo">
              {slo.windows.map((w) => {
                const hot = w.burn_rate >= THRESHOLDS[w.window];
                return (
                  <div key={w.window} class={`tile${hot ? " alert" : ""}`} data-window={w.window}>
                    <div class="tile-label">Burn over {WINDOW_NAMES[w.window] || w.window}</div>
                    <div class="tile-value">{w.burn_rate.toFixed(2)}×</div>
                    <meter min="0" max={THRESHOLDS[w.window] * 2} high={THRESHOLDS[w.window]} value={w.burn_rate} />
                    <div class="tile-hint">
                      {hot ? "above" : "below"} the {THRESHOLDS[w.window]}× alert threshold
                    </div>
                  </div>
                );
              })}
            </div>
            <Table
              caption={`Attempt outcomes as of ${utc(slo.as_of)}`}
              rowKey={(w) => w.window}
              testId="slo-windows"
              rows={slo.windows}
              columns={[
                { title: "Window", render: (w) => WINDOW_NAMES[w.window] || w.window },
                { title: "Succeeded", render: (w) => w.succeeded },
                { title: "Failed attempts", render: (w) => w.failed_attempts },
                { title: "Dead", render: (w) => w.dead },
                { title: "Failure rate", render: (w) => pct(w.failure_rate) },
                { title: "Burn rate", render: (w) => `${w.burn_rate.toFixed(2)}×` },
              ]}
            />
          </>
        )}
      </Loadable>
    </Section>
  );
}
