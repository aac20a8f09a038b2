// Schedules (next fire times, history), quotas (usage against limits, fair-share weights) and
// watermarks per source.
import { api, apiAll, shortId, utc } from "./api.js";
import { Badge, Loadable, useResource, useSources } from "./components.jsx";
import { Paged, Section, Table } from "./views.jsx";

// ------------------------------------------------------------------ schedules

// The next fire times of a five-field cron expression (UTC; numbers, *, ranges, lists and
// steps). The scheduler's own next_fire_at comes first; these are the ones after it. An
// expression this cannot read shows the scheduler's only.
const CRON_LIMITS = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];

function cronField(text, [lo, hi]) {
  const values = new Set();
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let [a, b] = range === "*" ? [lo, hi] : range.split("-").map(Number);
    if (b === undefined) b = stepText === undefined ? a : hi;
    if (![a, b, step].every(Number.isInteger) || step < 1 || a < lo || b > hi) return null;
    for (let v = a; v <= b; v += step) values.add(v);
  }
  return values;
}

export function nextFireTimes(cron, after, count) {
  const parts = cron.trim().split(/\s+/);
  if (parts.length !== 5) return [];
  const fields = parts.map((p, i) => cronField(p, CRON_LIMITS[i]));
  if (fields.some((f) => f === null)) return [];
  const [min, hour, dom, mon, dow] = fields;
  if (dow.has(7)) dow.add(0);
  const domAny = parts[2] === "*";
  const dowAny = parts[4] === "*";
  const out = [];
  const t = new Date(after);
  t.setUTCSeconds(0, 0);
  // Minute by minute, skipping whole hours and days that cannot match: bounded to a year.
  for (let guard = 0; out.length < count && guard < 600000; guard++) {
    t.setUTCMinutes(t.getUTCMinutes() + 1);
    const dayOk = domAny && dowAny
      ? true
      : domAny
        ? dow.has(t.getUTCDay())
        : dowAny
          ? dom.has(t.getUTCDate())
          : dom.has(t.getUTCDate()) || dow.has(t.getUTCDay());
    if (!mon.has(t.getUTCMonth() + 1) || !dayOk) {
      t.setUTCHours(23, 59);
      continue;
    }
    if (!hour.has(t.getUTCHours())) {
      t.setUTCMinutes(59);
      continue;
    }
    if (min.has(t.getUTCMinutes())) out.push(new Date(t));
  }
  return out;
}

export function Schedules() {
  const [, names] = useSources();
  // History: the runs each schedule created (newest last pages of runs, bounded).
  const runs = useResource(() => apiAll("/runs", {}, 10), [], (e) => e.type.startsWith("run."));
  const bySchedule = new Map();
  for (const run of runs.data || []) {
    if (!run.schedule_id) continue;
    if (!bySchedule.has(run.schedule_id)) bySchedule.set(run.schedule_id, []);
    bySchedule.get(run.schedule_id).push(run);
  }
  return (
    <Section title="Schedules">
      <Paged
        path="/schedules"
        params={{}}
        live={(e) => e.type.startsWith("schedule.") || e.type.startsWith("run.")}
        testId="schedules"
        columns={[
          { title: "Name", render: (s) => <strong>{s.name}</strong> },
          { title: "Cron (UTC)", render: (s) => <code>{s.cron}</code> },
          { title: "Source", render: (s) => (s.source_id ? names.get(s.source_id) || shortId(s.source_id) : "–") },
          { title: "State", render: (s) => <Badge value={s.enabled ? "active" : "disabled"} /> },
          {
            title: "Next fire times",
            render: (s) =>
              s.enabled && s.next_fire_at ? (
                <ol class="fire-times" data-testid="next-fires">
                  <li>{utc(s.next_fire_at)}</li>
                  {nextFireTimes(s.cron, s.next_fire_at, 2).map((t) => (
                    <li key={t.toISOString()} class="muted">
                      {utc(t)}
                    </li>
                  ))}
                </ol>
              ) : (
                "–"
              ),
          },
          { title: "Last fired", render: (s) => utc(s.last_fire_at) },
          {
            title: "History",
            render: (s) => {
              const mine = (bySchedule.get(s.id) || []).slice(-6).reverse();
              if (!mine.length) return <span class="muted">no runs yet</span>;
              return (
                <ul class="history" data-testid="schedule-history">
                  {mine.map((r) => (
                    <li key={r.id}>
                      <a href={`#/runs/${r.id}`}>{utc(r.created_at).slice(5, 16)}</a> <Badge value={r.state} />
                    </li>
                  ))}
                </ul>
              );
            },
          },
        ]}
      />
    </Section>
  );
}

// ------------------------------------------------------------------ quotas

function Usage({ used, limit, testId }) {
  if (!limit) return <span class="muted">{used} (no cap)</span>;
  return (
    <span class="usage" data-testid={testId}>
      <meter min="0" max={limit} high={limit * 0.8} value={used} /> {used} / {limit}
    </span>
  );
}

export function Quotas() {
  const quotas = useResource(() => apiAll("/quotas"), [], (e) => e.type.startsWith("quota."));
  const usage = useResource(() => api("/insights/quota-usage"), [], (e) => e.type.startsWith("job."));
  const tenants = useResource(() => api("/tenants"), [], () => false);
  const byQuota = new Map(((usage.data && usage.data.items) || []).map((u) => [u.quota_id, u]));
  return (
    <Section title="Quotas">
      <Loadable resource={quotas} empty={(d) => !d.length}>
        {(items) => (
          <Table
            testId="quotas"
            caption="Caps on the tenant's (or one job type's) jobs, with their use now"
            rows={items}
            columns={[
              { title: "Job type", render: (q) => q.job_type || <em>whole tenant</em> },
              {
                title: "Active (leased)",
                render: (q) => <Usage used={(byQuota.get(q.id) || {}).active || 0} limit={q.max_active} testId="active" />,
              },
              {
                title: "Queued",
                render: (q) => <Usage used={(byQuota.get(q.id) || {}).queued || 0} limit={q.max_queued} testId="queued" />,
              },
              {
                title: "Per hour",
                render: (q) => {
                  const left = (byQuota.get(q.id) || {}).hourly_tokens_left;
                  if (!q.max_per_hour) return <span class="muted">no cap</span>;
                  return (
                    <span class="usage">
                      <meter min="0" max={q.burst || q.max_per_hour} low={1} optimum={q.burst || q.max_per_hour} value={left || 0} />{" "}
                      {left === null || left === undefined ? "–" : left.toFixed(1)} left of burst {q.burst || q.max_per_hour},
                      refills {q.max_per_hour}/h
                    </span>
                  );
                },
              },
              { title: "State", render: (q) => <Badge value={q.paused ? "paused" : "active"} /> },
              { title: "Reason", render: (q) => q.reason || "–" },
            ]}
          />
        )}
      </Loadable>
      <h2>Fair share</h2>
      <Loadable resource={tenants}>
        {(t) => {
          const total = t.items.reduce((a, x) => a + x.weight, 0) || 1;
          return (
            <Table
              testId="tenant-weights"
              caption="Worker slots are shared between tenants with ready jobs in proportion to their weights"
              rows={t.items}
              columns={[
                { title: "Tenant", render: (x) => x.display_name || x.id },
                { title: "Weight", render: (x) => <span data-testid="weight">{x.weight}</span> },
                {
                  title: "Share among these tenants",
                  render: (x) => `${((x.weight / total) * 100).toFixed(0)}%`,
                },
              ]}
            />
          );
        }}
      </Loadable>
    </Section>
  );
}

// ------------------------------------------------------------------ watermarks

function lag(iso) {
  if (!iso) return "–";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function Watermarks() {
  const [, names] = useSources();
  return (
    <Section title="Watermarks">
      <p class="muted">How far each source's event time has been processed, per job type.</p>
      <Paged
        path="/watermarks"
        params={{}}
        live={(e) => e.type === "job.succeeded"}
        rowKey={(w) => `${w.source_id}/${w.job_type}`}
        testId="watermarks"
        columns={[
          { title: "Source", render: (w) => names.get(w.source_id) || shortId(w.source_id) },
          { title: "Job type", render: (w) => w.job_type },
          { title: "High watermark", render: (w) => utc(w.high_watermark) },
          { title: "Behind now", render: (w) => lag(w.high_watermark) },
          { title: "Last job", render: (w) => (w.last_job_id ? <a href={`#/jobs/${w.last_job_id}`}>{shortId(w.last_job_id)}</a> : "–") },
          { title: "Updated", render: (w) => utc(w.updated_at) },
        ]}
      />
    </Section>
  );
}
