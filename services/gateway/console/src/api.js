// REST and live-event access for the Console. The token lives in this module's memory only:
// not in Web Storage (which any script on the origin could read), the URL or a cookie. A
// reload or a new tab signs in again. Every call sends it as a bearer token.

export const API = "/api/v1/orchestrator";
let token = "";

export function getToken() {
  return token;
}

export function setToken(value) {
  token = value ? value.trim() : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(path, { method = "GET", params, body, reason, ticket } = {}) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
  }
  const headers = { Authorization: `Bearer ${getToken()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (reason) headers["X-Stella-Operator-Reason"] = reason;
  if (ticket) headers["X-Stella-Operator-Ticket"] = ticket;
  const resp = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 204) return null;
  let data = {};
  try {
    data = await resp.json();
  } catch (_) {
    data = {};
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// A binary download (e.g. an audit bundle): the body as a Blob and the response headers.
export async function apiBlob(path, params) {
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(params || {})) if (value) url.searchParams.append(key, value);
  const resp = await fetch(url, { headers: { Authorization: `Bearer ${getToken()}` } });
  if (!resp.ok) {
    let problem = {};
    try {
      problem = await resp.json();
    } catch (_) {
      problem = {};
    }
    throw new ApiError(resp.status, problem);
  }
  return { blob: await resp.blob(), headers: resp.headers };
}

// Every page of a list endpoint (bounded, for small lists such as a run's events).
export async function apiAll(path, params = {}, maxPages = 20) {
  const items = [];
  let token = "";
  for (let i = 0; i < maxPages; i++) {
    const page = await api(path, { params: { ...params, page_size: 500, page_token: token } });
    items.push(...page.items);
    token = page.next_page_token;
    if (!token || page.items.length === 0) break;
  }
  return items;
}

// Live events over SSE, read with fetch (EventSource cannot send the Authorization header).
// Reconnects with Last-Event-ID after a drop, so no event is missed or repeated.
export function openEventStream({ onEvent, onState }) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  let retryMs = 1000;

  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      const headers = { Authorization: `Bearer ${getToken()}`, Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
      try {
        const resp = await fetch(API + "/events/stream", { headers, signal: controller.signal });
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        onState("live");
        retryMs = 1000;
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const fields = {};
            for (const line of block.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const i = line.indexOf(":");
              fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, "");
            }
            if (fields.data !== undefined) {
              lastId = Number(fields.id);
              onEvent(JSON.parse(fields.data));
            }
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, retryMs));
      retryMs = Math.min(retryMs * 2, 15000);
    }
  }
  connect();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

// "2026-11-27T17:48:01.123Z" -> "2026-11-27 17:48:01 UTC"
export function utc(value) {
  if (!value) return "–";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

// <input type="datetime-local"> values are read as UTC (the Console shows UTC everywhere):
// "2026-01-01T06:00" -> "2026-01-01T06:00:00Z".
export function fromUtcInput(local) {
  return local ? `${local}:00Z` : "";
}

export function shortId(id) {
  return id ? id.slice(0, 8) + "…" + id.slice(-4) : "–";
}
