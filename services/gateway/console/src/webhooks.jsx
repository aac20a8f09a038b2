// Webhook subscriptions (list, create, enable/disable) and a subscription's delivery log with
// redelivery, over /webhooks (docs/webhooks.md).
import { useState } from "preact/hooks";
import { api, shortId, utc } from "./api.js";
import { Badge, ControlButton, Loadable, control, useResource } from "./components.jsx";
import { Paged, Section } from "./views.jsx";

const EVENT_TYPES = "run.finished, job.dead, incident.opened";

function setEnabled(id, enabled, reason, ticket) {
  return api(`/webhooks/${id}`, { method: "PATCH", body: { enabled }, reason, ticket });
}

export function Webhooks({ scopes }) {
  const canOperate = scopes.includes("orch:operate");
  const [form, setForm] = useState({ url: "", event_types: EVENT_TYPES, description: "" });
  const [created, setCreated] = useState(null);
  const [tick, setTick] = useState(0);
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  return (
    <Section title="Webhooks">
      <form class="backfill-form" aria-label="new webhook" onSubmit={(e) => e.preventDefault()}>
        <label>
          URL
          <input type="url" value={form.url} onInput={set("url")} maxLength={2048} placeholder="https://…" />
        </label>
        <label>
          Event types (comma-separated)
          <input value={form.event_types} onInput={set("event_types")} />
        </label>
        <label>
          Description
          <input value={form.description} onInput={set("description")} maxLength={1000} />
        </label>
        <ControlButton
          label="Create webhook"
          title="Subscribe this URL"
          disabled={!canOperate || !form.url}
          action={async (reason, ticket) => {
            const answer = await control("/webhooks", reason, ticket, {
              url: form.url,
              event_types: form.event_types.split(",").map((t) => t.trim()).filter(Boolean),
              description: form.description,
            });
            setCreated(answer);
          }}
          onDone={() => setTick((t) => t + 1)}
        />
      </form>
      {created && (
        <div class="state secret" role="status" data-testid="webhook-secret">
          <p>
            Subscribed <code>{created.webhook.url}</code>. Its signing secret, shown this once:
          </p>
          <p>
            <code>{created.secret}</code>
          </p>
        </div>
      )}
      <Paged
        key={tick}
        path="/webhooks"
        params={{}}
        live={(e) => e.type.startsWith("webhook.")}
        testId="webhooks"
        columns={[
          { title: "URL", render: (w) => <a href={`#/webhooks/${w.id}`}>{w.url}</a> },
          { title: "Events", render: (w) => w.event_types.join(", ") },
          { title: "Description", render: (w) => w.description || "–" },
          {
            title: "State",
            render: (w) => (
              <span data-testid="webhook-state">
                <Badge value={w.enabled ? "active" : "disabled"} />
                {w.disabled_reason ? <span class="muted"> {w.disabled_reason}</span> : null}
              </span>
            ),
          },
          { title: "Failure streak", render: (w) => w.failure_streak },
          { title: "Created", render: (w) => utc(w.create_time) },
          {
            title: "Controls",
            render: (w) => (
              <ControlButton
                label={w.enabled ? "Disable" : "Enable"}
                title={`${w.enabled ? "Disable" : "Enable"} deliveries to ${w.url}`}
                danger={w.enabled}
                disabled={!canOperate}
                action={(reason, ticket) => setEnabled(w.id, !w.enabled, reason, ticket)}
                onDone={() => setTick((t) => t + 1)}
              />
            ),
          },
        ]}
      />
    </Section>
  );
}

export function WebhookDetail({ id, scopes }) {
  const hook = useResource(() => api(`/webhooks/${id}`), [id], () => false);
  const [tick, setTick] = useState(0);
  const canOperate = scopes.includes("orch:operate");
  return (
    <Section title="Webhook">
      <Loadable resource={hook}>
        {(w) => (
          <dl class="facts">
            <dt>URL</dt>
            <dd>
              <code>{w.url}</code>
            </dd>
            <dt>Events</dt>
            <dd>{w.event_types.join(", ")}</dd>
            <dt>State</dt>
            <dd data-testid="webhook-state">
              <Badge value={w.enabled ? "active" : "disabled"} /> {w.disabled_reason}
            </dd>
            <dt>Failure streak</dt>
            <dd>{w.failure_streak}</dd>
            <dt>Description</dt>
            <dd>{w.description || "–"}</dd>
          </dl>
        )}
      </Loadable>
      <h2>Deliveries</h2>
      <Paged
        key={tick}
        path={`/webhooks/${id}/deliveries`}
        params={{}}
        live={(e) => e.type.startsWith("webhook.")}
        testId="deliveries"
        empty="No deliveries yet."
        columns={[
          { title: "Event", render: (d) => `${d.event_type} #${d.event_seq}` },
          { title: "State", render: (d) => <Badge value={d.state} /> },
          { title: "Attempts", render: (d) => d.attempt },
          { title: "Status", render: (d) => d.status_code || "–" },
          { title: "Latency", render: (d) => (d.latency_ms ? `${d.latency_ms} ms` : "–") },
          { title: "Error", render: (d) => (d.error ? <span class="error-text">{d.error.slice(0, 100)}</span> : "–") },
          { title: "Next attempt", render: (d) => utc(d.next_attempt_time) },
          {
            title: "Controls",
            render: (d) => (
              <ControlButton
                label="Redeliver"
                title={`Send delivery ${shortId(d.id)} again now`}
                disabled={!canOperate}
                testId="redeliver"
                action={(reason, ticket) => control(`/webhook-deliveries/${d.id}/redeliver`, reason, ticket)}
                onDone={() => setTick((t) => t + 1)}
              />
            ),
          },
        ]}
      />
    </Section>
  );
}
