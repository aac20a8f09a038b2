// Incidents: failure clusters the scheduler opened (threshold within a window), how they grew,
// who acknowledged them and when they resolved (a quiet period). docs/incidents.md.
import { api, shortId, utc } from "./api.js";
import { Badge, ControlButton, Loadable, control, useResource } from "./components.jsx";
import { Paged, Section, Table } from "./views.jsx";

const isIncidentEvent = (e) => e.type.startsWith("incident.");

export function Incidents() {
  const stats = useResource(() => api("/deadletter/stats"), [], (e) => e.type === "job.dead");
  return (
    <Section title="Incidents">
      <Paged
        path="/incidents"
        params={{}}
        live={isIncidentEvent}
        testId="incidents"
        columns={[
          {
            title: "Incident",
            render: (i) => <a href={`#/incidents/${i.id}`}>{i.reason_code}</a>,
          },
          { title: "State", render: (i) => <Badge value={i.state} /> },
          { title: "Class", render: (i) => <Badge value={i.error_class} /> },
          { title: "Job type", render: (i) => i.job_type || "–" },
          { title: "Failures", render: (i) => i.failure_count },
          { title: "First seen", render: (i) => utc(i.first_seen_at) },
          { title: "Last seen", render: (i) => utc(i.last_seen_at) },
          { title: "Acknowledged by", render: (i) => i.acknowledged_by || "–" },
        ]}
      />
      <h2>Failure clusters (dead letters by error class)</h2>
      <Loadable resource={stats} empty={(s) => !s.total}>
        {(s) => (
          <Table
            rows={Object.entries(s.by_error_class).map(([cls, n]) => ({ id: cls, cls, n }))}
            columns={[
              { title: "Error class", render: (r) => <Badge value={r.cls} /> },
              { title: "Pending entries", render: (r) => r.n },
            ]}
          />
        )}
      </Loadable>
    </Section>
  );
}

export function IncidentDetail({ id, scopes }) {
  const mine = (e) => isIncidentEvent(e) && e.data && e.data.incident_id === id;
  const got = useResource(() => api(`/incidents/${id}`), [id], mine);
  const canOperate = scopes.includes("orch:operate");
  return (
    <Section title="Incident">
      <Loadable resource={got}>
        {({ incident: i, timeline }) => (
          <>
            <div class="controls">
              <ControlButton
                label="Acknowledge"
                title="Acknowledge this incident (you have seen it; it stays open until quiet)"
                testId="acknowledge"
                disabled={!canOperate || Boolean(i.acknowledged_by)}
                action={(reason, ticket) => control(`/incidents/${id}/acknowledge`, reason, ticket)}
                onDone={got.refresh}
              />
            </div>
            <dl class="facts">
              <dt>Reason code</dt>
              <dd>{i.reason_code}</dd>
              <dt>State</dt>
              <dd data-testid="incident-state">
                <Badge value={i.state} />
              </dd>
              <dt>Error class</dt>
              <dd>
                <Badge value={i.error_class} />
              </dd>
              <dt>Job type</dt>
              <dd>{i.job_type || "–"}</dd>
              <dt>Source</dt>
              <dd>{i.source_id ? <code>{i.source_id}</code> : "–"}</dd>
              <dt>Failures</dt>
              <dd data-testid="incident-failures">{i.failure_count}</dd>
              <dt>First seen</dt>
              <dd>{utc(i.first_seen_at)}</dd>
              <dt>Last seen</dt>
              <dd>{utc(i.last_seen_at)}</dd>
              <dt>Resolved</dt>
              <dd>{utc(i.resolved_at)}</dd>
              <dt>Acknowledged</dt>
              <dd data-testid="incident-ack">
                {i.acknowledged_by
                  ? `${i.acknowledged_by} at ${utc(i.acknowledged_at)}: ${i.acknowledge_reason}`
                  : "–"}
              </dd>
            </dl>
            <h2>Sample jobs</h2>
            <ul class="samples" data-testid="incident-samples">
              {(i.sample_job_ids || []).map((job) => (
                <li key={job}>
                  <a href={`#/jobs/${job}`}>{shortId(job)}</a>
                </li>
              ))}
            </ul>
            <h2>Timeline</h2>
            <Table
              testId="incident-timeline"
              rows={timeline || []}
              rowKey={(e) => e.seq}
              columns={[
                { title: "At", render: (e) => utc(e.occurred_at) },
                { title: "Event", render: (e) => <Badge value={e.type.replace("incident.", "")} /> },
                { title: "Failures", render: (e) => e.failure_count },
                { title: "By", render: (e) => e.actor || "–" },
                { title: "Reason", render: (e) => e.reason || "–" },
              ]}
            />
          </>
        )}
      </Loadable>
    </Section>
  );
}
