import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, getToken, openEventStream, setToken } from "./api.js";
import { errorText, publish } from "./components.jsx";
import { IncidentDetail, Incidents } from "./incidents.jsx";
import { Audit } from "./audit.jsx";
import { Quotas, Schedules, Watermarks } from "./config.jsx";
import { Failures, JobList, Slo } from "./insights.jsx";
import {
  Backfills,
  DeadLetter,
  JobDetail,
  Overview,
  RunDetail,
  Runs,
  Sources,
  Throttles,
} from "./views.jsx";
import { WebhookDetail, Webhooks } from "./webhooks.jsx";

const SECTIONS = [
  ["overview", "Overview", "o"],
  ["sources", "Sources", "s"],
  ["runs", "Runs", "r"],
  ["jobs", "Jobs", "j"],
  ["failures", "Failures", "f"],
  ["slo", "SLO", "l"],
  ["schedules", "Schedules", "c"],
  ["quotas", "Quotas", "q"],
  ["watermarks", "Watermarks", "w"],
  ["deadletter", "Dead letter", "d"],
  ["incidents", "Incidents", "i"],
  ["throttles", "Throttles", "t"],
  ["backfills", "Backfills", "b"],
  ["webhooks", "Webhooks", "h"],
  ["audit", "Audit log", "a"],
];

// "#/jobs?state=dead" -> {section: "jobs", id: null, query: {state: "dead"}}
function parseRoute() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const query = Object.fromEntries(new URLSearchParams(search));
  return { section: parts[0] || "overview", id: parts[1] || null, query };
}

function Login({ onLogin, error }) {
  const [value, setValue] = useState("");
  return (
    <main id="main" class="login">
      <h1>Stella Orchestrator</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onLogin(value);
        }}
      >
        <label>
          Bearer token
          <textarea
            name="token"
            rows={4}
            required
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
            placeholder="paste a token (make demo prints one)"
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
      <p class="muted">The token stays in this browser tab (session storage) only.</p>
    </main>
  );
}

function App() {
  const [route, setRoute] = useState(parseRoute());
  const [me, setMe] = useState(null);
  const [loginError, setLoginError] = useState(null);
  const [live, setLive] = useState("connecting");
  const [lastEvent, setLastEvent] = useState(null);

  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (!getToken()) return;
    api("/whoami").then(setMe, (err) => {
      setToken("");
      setLoginError(errorText(err));
      setMe(null);
    });
  }, []);

  useEffect(() => {
    if (!me) return undefined;
    return openEventStream({
      onEvent: (event) => {
        setLastEvent(event);
        publish(event);
      },
      onState: setLive,
    });
  }, [me]);

  useEffect(() => {
    // Keyboard: "g" then a section letter jumps there (e.g. g r = Runs).
    let armed = false;
    const onKey = (e) => {
      const tag = (e.target && e.target.tagName) || "";
      if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (armed) {
        armed = false;
        const hit = SECTIONS.find(([, , key]) => key === e.key);
        if (hit) location.hash = `#/${hit[0]}`;
      } else if (e.key === "g") {
        armed = true;
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  useEffect(() => {
    const heading = document.getElementById("section-title");
    if (heading) heading.focus();
  }, [route.section, route.id]);

  if (!me) {
    return (
      <Login
        error={loginError}
        onLogin={(token) => {
          setToken(token);
          api("/whoami").then(
            (who) => {
              setLoginError(null);
              setMe(who);
            },
            (err) => {
              setToken("");
              setLoginError(errorText(err));
            },
          );
        }}
      />
    );
  }
  const { section, id, query } = route;
  const scopes = me.scopes;
  let view;
  if (section === "runs" && id) view = <RunDetail id={id} scopes={scopes} />;
  else if (section === "jobs" && id) view = <JobDetail id={id} scopes={scopes} />;
  else if (section === "incidents" && id) view = <IncidentDetail id={id} scopes={scopes} />;
  else if (section === "webhooks" && id) view = <WebhookDetail id={id} scopes={scopes} />;
  else if (section === "jobs") view = <JobList query={query} />;
  else if (section === "failures") view = <Failures />;
  else if (section === "slo") view = <Slo />;
  else if (section === "schedules") view = <Schedules />;
  else if (section === "quotas") view = <Quotas />;
  else if (section === "watermarks") view = <Watermarks />;
  else if (section === "webhooks") view = <Webhooks scopes={scopes} />;
  else if (section === "sources") view = <Sources scopes={scopes} />;
  else if (section === "runs") view = <Runs />;
  else if (section === "deadletter") view = <DeadLetter scopes={scopes} />;
  else if (section === "incidents") view = <Incidents />;
  else if (section === "throttles") view = <Throttles />;
  else if (section === "backfills") view = <Backfills scopes={scopes} />;
  else if (section === "audit") view = <Audit />;
  else view = <Overview />;
  const active = section === "jobs" && id ? "runs" : section;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Stella Orchestrator</span>
        <nav aria-label="sections">
          {SECTIONS.map(([key, label, letter]) => (
            <a
              key={key}
              href={`#/${key}`}
              aria-current={active === key ? "page" : undefined}
              title={`${label} (g ${letter})`}
            >
              {label}
            </a>
          ))}
        </nav>
        <span class={`live live-${live}`} role="status" aria-live="polite" data-testid="live">
          {live === "live" ? "● live" : live}
          {lastEvent ? ` · seq ${lastEvent.seq}` : ""}
        </span>
        <span class="who">
          {me.subject} @ {me.tenant}{" "}
          <button
            type="button"
            onClick={() => {
              setToken("");
              location.reload();
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main id="main" key={`${section}/${id}`}>
        {view}
      </main>
      <footer class="muted">All times UTC.</footer>
    </>
  );
}

render(<App />, document.getElementById("app"));
