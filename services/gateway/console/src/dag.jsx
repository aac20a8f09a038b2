import dagre from "@dagrejs/dagre";
import { useMemo, useState } from "preact/hooks";
import { utc } from "./api.js";

// Three sizes of drawing: a few jobs as full cards; up to GROUP_OVER jobs as compact chips
// (the demo's 114-job runs fit a 1400 × 900 screen at 100 %); more, grouped by job type
// (one node per group with its state counts), which stays readable at any size. The
// reader switches grouping (job type, level = depth in the DAG), zooms and searches.
const FULL = { w: 150, h: 44, nodesep: 18, ranksep: 48 };
const COMPACT = { w: 118, h: 16, nodesep: 2, ranksep: 40 };
const GROUP = { w: 240, h: 58, nodesep: 24, ranksep: 60 };
const COMPACT_OVER = 30;
const GROUP_OVER = 300;
const ZOOMS = [0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2];

// Depth of each job: 0 for a job without parents, else one more than its deepest parent.
export function levels(jobs, edges) {
  const parents = new Map(jobs.map((j) => [j.id, []]));
  for (const e of edges) if (parents.has(e.child_job_id)) parents.get(e.child_job_id).push(e.parent_job_id);
  const level = new Map();
  const visit = (id, seen) => {
    if (level.has(id)) return level.get(id);
    if (seen.has(id)) return 0; // a cycle cannot exist; guard anyway
    seen.add(id);
    const ps = (parents.get(id) || []).filter((p) => parents.has(p));
    const d = ps.length ? 1 + Math.max(...ps.map((p) => visit(p, seen))) : 0;
    level.set(id, d);
    return d;
  };
  for (const j of jobs) visit(j.id, new Set());
  return level;
}

function layout(nodes, links, size) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: size.nodesep, ranksep: size.ranksep, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  // Insert in a stable order so the layout is the same on every render.
  for (const n of [...nodes].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    g.setNode(n.id, { width: size.w, height: size.h, item: n });
  }
  for (const [v, w] of links) if (g.hasNode(v) && g.hasNode(w) && v !== w) g.setEdge(v, w);
  dagre.layout(g);
  return g;
}

const matches = (job, q) =>
  !!q && [job.key, job.job_type, job.state, job.id].some((t) => (t || "").toLowerCase().includes(q));

function groupsOf(jobs, edges, by) {
  const level = levels(jobs, edges);
  const keyOf = (j) => (by === "level" ? `level ${level.get(j.id)}` : j.job_type);
  const groups = new Map();
  for (const j of jobs) {
    const k = keyOf(j);
    if (!groups.has(k)) groups.set(k, { id: k, jobs: [], counts: {} });
    const grp = groups.get(k);
    grp.jobs.push(j);
    grp.counts[j.state] = (grp.counts[j.state] || 0) + 1;
  }
  const group = new Map(jobs.map((j) => [j.id, keyOf(j)]));
  const links = new Map();
  for (const e of edges) {
    const v = group.get(e.parent_job_id);
    const w = group.get(e.child_job_id);
    if (v && w && v !== w) links.set(`${v}\u0000${w}`, [v, w]);
  }
  return { nodes: [...groups.values()], links: [...links.values()] };
}

function Edges({ g, thin }) {
  return g.edges().map((e) => {
    const d = g
      .edge(e)
      .points.map((p, i) => `${i ? "L" : "M"}${p.x},${p.y}`)
      .join(" ");
    return <path key={`${e.v}-${e.w}`} d={d} class={thin ? "edge thin" : "edge"} marker-end="url(#arrow)" />;
  });
}

function JobNode({ n, size, q }) {
  const job = n.item;
  const label = job.key || job.id.slice(0, 8);
  const hit = matches(job, q);
  const cls = `node state-${job.state}${hit ? " match" : q ? " dim" : ""}`;
  const compact = size === COMPACT;
  return (
    <a href={`#/jobs/${job.id}`} aria-label={`job ${label} ${job.state}`}>
      <g transform={`translate(${n.x - size.w / 2},${n.y - size.h / 2})`} class={cls} data-key={label}>
        <title>{`${label} (${job.job_type}): ${job.state}${job.attempt > 1 ? `, attempt ${job.attempt}` : ""}`}</title>
        <rect width={size.w} height={size.h} rx={compact ? 3 : 6} />
        {compact ? (
          <text x="5" y="12" class="node-key compact">
            {label.slice(0, 18)}
          </text>
        ) : (
          <>
            <text x="8" y="18" class="node-key">
              {label.slice(0, 20)}
            </text>
            <text x="8" y="34" class="node-state">
              {job.state}
              {job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}
            </text>
          </>
        )}
      </g>
    </a>
  );
}

const STATE_ORDER = ["succeeded", "leased", "ready", "pending", "dead", "canceled"];

function GroupNode({ n, q, onOpen }) {
  const grp = n.item;
  const hits = q ? grp.jobs.filter((j) => matches(j, q)).length : 0;
  // The group's colour: its most alarming state.
  const worst = ["dead", "canceled", "leased", "ready", "pending", "succeeded"].find((st) => grp.counts[st]);
  const cls = `node group state-${worst}${hits ? " match" : q ? " dim" : ""}`;
  const counts = STATE_ORDER.filter((s) => grp.counts[s]).map((s) => `${grp.counts[s]} ${s}`);
  return (
    <g
      transform={`translate(${n.x - GROUP.w / 2},${n.y - GROUP.h / 2})`}
      class={cls}
      role="button"
      tabIndex={0}
      aria-label={`${grp.id}: ${grp.jobs.length} jobs, ${counts.join(", ")}; show its jobs`}
      onClick={() => onOpen(grp.id)}
      onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && onOpen(grp.id)}
      data-group={grp.id}
    >
      <rect width={GROUP.w} height={GROUP.h} rx="8" />
      <text x="10" y="19" class="node-key">
        {grp.id.slice(0, 24)} · {grp.jobs.length}
      </text>
      <text x="10" y="36" class="node-state">
        {counts.slice(0, 3).join(", ")}
      </text>
      <text x="10" y="51" class="node-state">
        {hits ? `${hits} match` : counts.slice(3).join(", ")}
      </text>
    </g>
  );
}

// The run's DAG laid out left to right by dagre (a layered, Sugiyama-style layout).
export function DagView({ jobs, edges }) {
  const [group, setGroup] = useState(jobs.length > GROUP_OVER ? "job_type" : "none");
  const [zoom, setZoom] = useState(1);
  const [search, setSearch] = useState("");
  const [only, setOnly] = useState(null); // a group opened from the grouped drawing
  const q = search.trim().toLowerCase();
  let shown = jobs;
  if (only) {
    const { nodes } = groupsOf(jobs, edges, only.by);
    shown = (nodes.find((n) => n.id === only.id) || { jobs: [] }).jobs;
  }
  const ids = new Set(shown.map((j) => j.id));
  const grouped = group !== "none" && !only;
  const size = grouped ? GROUP : shown.length > COMPACT_OVER ? COMPACT : FULL;
  const g = useMemo(() => {
    if (grouped) {
      const { nodes, links } = groupsOf(jobs, edges, group);
      return layout(nodes, links, GROUP);
    }
    const links = edges.filter((e) => ids.has(e.parent_job_id) && ids.has(e.child_job_id)).map((e) => [e.parent_job_id, e.child_job_id]);
    return layout(shown, links, size);
  }, [jobs, edges, group, only]);
  const { width = 0, height = 0 } = g.graph();
  const w = Math.max(width, 200);
  const h = Math.max(height, 60);
  const hits = q ? shown.filter((j) => matches(j, q)).length : 0;
  const step = (dir) => setZoom((z) => ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, ZOOMS.indexOf(z) + dir))]);
  return (
    <figure class="dag" data-testid="dag">
      <div class="dag-tools" role="toolbar" aria-label="DAG view">
        <label>
          Group by{" "}
          <select
            value={group}
            onChange={(e) => {
              setGroup(e.currentTarget.value);
              setOnly(null);
            }}
          >
            <option value="none">none (every job)</option>
            <option value="job_type">job type</option>
            <option value="level">level</option>
          </select>
        </label>
        <span class="zoom">
          <button type="button" aria-label="zoom out" onClick={() => step(-1)}>
            −
          </button>
          <span data-testid="zoom">{Math.round(zoom * 100)}%</span>
          <button type="button" aria-label="zoom in" onClick={() => step(1)}>
            +
          </button>
        </span>
        <label>
          Search{" "}
          <input
            type="search"
            value={search}
            placeholder="key, type, state"
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
        </label>
        {q && <span data-testid="dag-matches">{hits} of {shown.length} jobs match</span>}
        {only && (
          <button type="button" onClick={() => setOnly(null)}>
            All groups
          </button>
        )}
      </div>
      <div class="dag-canvas">
        <svg
          width={w * zoom}
          height={h * zoom}
          viewBox={`0 0 ${w} ${h}`}
          role="img"
          aria-label={`DAG of ${jobs.length} jobs and ${edges.length} dependencies`}
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">
              <path d="M0,0 L10,5 L0,10 z" class="arrow" />
            </marker>
          </defs>
          <Edges g={g} thin={size === COMPACT} />
          {g.nodes().map((id) =>
            grouped ? (
              <GroupNode key={id} n={g.node(id)} q={q} onOpen={(gid) => setOnly({ by: group, id: gid })} />
            ) : (
              <JobNode key={id} n={g.node(id)} size={size} q={q} />
            ),
          )}
        </svg>
      </div>
      <figcaption>
        {only ? `${only.id}: ${shown.length} jobs. ` : ""}
        Dependencies flow left to right; colour = state; select a job for its detail
        {grouped ? ", a group for its jobs" : ""}.
      </figcaption>
    </figure>
  );
}

// Attempts of every job from the run's event history: leased → succeeded/retrying/dead/canceled.
export function attemptsFromEvents(events) {
  const open = new Map();
  const bars = [];
  for (const ev of events) {
    if (!ev.job) continue;
    const id = ev.job.id;
    const at = new Date(ev.occurred_at).getTime();
    if (ev.type === "job.leased") {
      open.set(id, { job_id: id, attempt: ev.job.attempt, start: at, end: null, outcome: "running" });
    } else if (["job.succeeded", "job.retrying", "job.dead", "job.canceled"].includes(ev.type)) {
      const bar = open.get(id);
      if (bar) {
        bar.end = at;
        bar.outcome = ev.type.slice(4);
        bars.push(bar);
        open.delete(id);
      }
    }
  }
  for (const bar of open.values()) bars.push(bar);
  return bars;
}

export function GanttView({ jobs, events }) {
  const bars = attemptsFromEvents(events);
  if (!bars.length) return <p class="state">No attempts yet.</p>;
  const now = Date.now();
  const start = Math.min(...bars.map((b) => b.start));
  const end = Math.max(...bars.map((b) => b.end || now));
  const span = Math.max(end - start, 1);
  const keyOf = new Map(jobs.map((j) => [j.id, j.key || j.id.slice(0, 8)]));
  const rows = [...new Set(bars.map((b) => b.job_id))].sort((a, b) =>
    (keyOf.get(a) || a) < (keyOf.get(b) || b) ? -1 : 1,
  );
  const W = 640;
  const ROW = 22;
  const LABEL = 120;
  return (
    <figure class="gantt">
      <svg width={LABEL + W + 10} height={rows.length * ROW + 30} role="img" aria-label="Gantt timeline of job attempts">
        {rows.map((id, i) => (
          <text key={id} x="0" y={i * ROW + 15} class="gantt-label">
            {(keyOf.get(id) || id).slice(0, 16)}
          </text>
        ))}
        {bars.map((b) => {
          const row = rows.indexOf(b.job_id);
          const x = LABEL + ((b.start - start) / span) * W;
          const w = Math.max((((b.end || now) - b.start) / span) * W, 2);
          return (
            <rect
              key={`${b.job_id}-${b.attempt}`}
              x={x}
              y={row * ROW + 4}
              width={w}
              height={ROW - 8}
              class={`bar outcome-${b.outcome}`}
            >
              <title>{`${keyOf.get(b.job_id)} attempt ${b.attempt}: ${b.outcome}, ${utc(b.start)} → ${b.end ? utc(b.end) : "now"}`}</title>
            </rect>
          );
        })}
        <text x={LABEL} y={rows.length * ROW + 24} class="gantt-axis">{utc(start)}</text>
        <text x={LABEL + W} y={rows.length * ROW + 24} text-anchor="end" class="gantt-axis">{utc(end)}</text>
      </svg>
      <figcaption>Attempts over time (UTC); colour = outcome.</figcaption>
    </figure>
  );
}
