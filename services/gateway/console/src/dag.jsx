import dagre from "@dagrejs/dagre";
import { utc } from "./api.js";

const NODE_W = 150;
const NODE_H = 44;

// The run's DAG laid out left to right by dagre (a layered, Sugiyama-style layout).
export function DagView({ jobs, edges }) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  // Insert in a stable order so the layout is the same on every render.
  const sorted = [...jobs].sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const job of sorted) g.setNode(job.id, { width: NODE_W, height: NODE_H, job });
  for (const e of edges) {
    if (g.hasNode(e.parent_job_id) && g.hasNode(e.child_job_id)) {
      g.setEdge(e.parent_job_id, e.child_job_id);
    }
  }
  dagre.layout(g);
  const { width = 0, height = 0 } = g.graph();
  return (
    <figure class="dag">
      <svg
        width={Math.max(width, 200)}
        height={Math.max(height, 60)}
        role="img"
        aria-label={`DAG of ${jobs.length} jobs and ${edges.length} dependencies`}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
        </defs>
        {g.edges().map((e) => {
          const pts = g.edge(e).points;
          const d = pts.map((p, i) => `${i ? "L" : "M"}${p.x},${p.y}`).join(" ");
          return <path key={`${e.v}-${e.w}`} d={d} class="edge" marker-end="url(#arrow)" />;
        })}
        {g.nodes().map((id) => {
          const n = g.node(id);
          const job = n.job;
          return (
            <a key={id} href={`#/jobs/${id}`} aria-label={`job ${job.key || id} ${job.state}`}>
              <g transform={`translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})`} class={`node state-${job.state}`}>
                <rect width={NODE_W} height={NODE_H} rx="6" />
                <text x="8" y="18" class="node-key">
                  {(job.key || job.id.slice(0, 8)).slice(0, 20)}
                </text>
                <text x="8" y="34" class="node-state">
                  {job.state}
                  {job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}
                </text>
              </g>
            </a>
          );
        })}
      </svg>
      <figcaption>Dependencies flow left to right; select a job for its detail.</figcaption>
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
