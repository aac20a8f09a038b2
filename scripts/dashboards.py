"""Writes the Grafana dashboards under deploy/k8s/base/grafana-dashboards/.

``python scripts/dashboards.py`` writes them.

The JSON files are committed and shipped as a ConfigMap (deploy/k8s/base, label
``grafana_dashboard``, which Grafana's dashboard sidecar loads); this script is their
source, so the six dashboards share one layout, one set of template variables and one
datasource variable. ``tests/unit/test_dashboards.py`` fails when a committed file differs
from what this script writes, and ``tests/crosslang/test_dashboards_prometheus.py`` runs
every panel query against a real Prometheus scraping the running stack (docs/metrics.md,
"Dashboards").

Every selector of a templated label uses ``=~"$var"`` and every variable has the "All"
value ``.*``, so each query also works with the variables left at All.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "k8s" / "base" / "grafana-dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
# Buckets without a configured or learnt rate report 1e9 (unlimited); graphs leave them out.
FINITE = "< 1e8"
TENANT_SERIES = (
    '{__name__=~"orch_queue_depth|orch_dead_letter_entries|orch_ratelimit_bucket_rate_per_second"}'
)

Obj = dict[str, Any]


def variable(name: str, label: str, query: str) -> Obj:
    definition = f"label_values({query}, {label})"
    return {
        "name": name,
        "label": name.replace("_", " "),
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": {"query": definition, "refId": f"{name}-values"},
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


DATASOURCE_VAR: Obj = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "current": {},
    "refresh": 1,
}
VARIABLES = {
    "tenant": variable("tenant", "tenant", TENANT_SERIES),
    "job_type": variable("job_type", "job_type", "orch_job_start_latency_seconds_count"),
    "host": variable("host", "host", 'orch_ratelimit_bucket_rate_per_second{tenant=~"$tenant"}'),
    "sdk": variable("sdk", "sdk", "stella_worker_jobs_started_total"),
}


def panel(title: str, description: str, *targets: tuple[str, str], unit: str = "short") -> Obj:
    """A time series panel: ``targets`` are ``(expr, legend)`` pairs."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": e, "legendFormat": lf}
            for i, (e, lf) in enumerate(targets)
        ],
    }


def stat(title: str, description: str, expr: str, unit: str = "short") -> Obj:
    out = panel(title, description, (expr, ""), unit=unit)
    out["type"] = "stat"
    out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return out


def dashboard(uid: str, title: str, description: str, variables: list[str], panels: list[Obj]):
    laid_out = []
    x = y = 0
    for n, p in enumerate(panels, start=1):
        width = 6 if p["type"] == "stat" else 12
        height = 4 if p["type"] == "stat" else 8
        if x + width > 24:
            x, y = 0, y + 8
        laid_out.append({"id": n, "gridPos": {"h": height, "w": width, "x": x, "y": y}, **p})
        x += width
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["stella-orchestrator"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["stella-orchestrator"],
                "asDropdown": True,
                "title": "Orchestrator",
            }
        ],
        "templating": {"list": [DATASOURCE_VAR, *(VARIABLES[v] for v in variables)]},
        "panels": laid_out,
    }


def fleet() -> Obj:
    return dashboard(
        "orch-fleet",
        "Orchestrator / Fleet overview",
        "Every service at a glance: up, RPC traffic and errors, the queue, leaders, workers.",
        ["tenant"],
        [
            stat(
                "Services up",
                "Scraped service processes answering.",
                'sum(up{job=~"orchestrator-.*"})',
            ),
            stat(
                "Work streams",
                "Workers connected to any leases replica.",
                "sum(orch_lease_sessions)",
            ),
            stat(
                "Unfinished jobs",
                "Queue depth of the selected tenants (leader's snapshot).",
                'sum(orch_queue_depth{tenant=~"$tenant"})',
            ),
            stat(
                "Dead-letter entries",
                "Pending dead-letter entries of the selected tenants.",
                'sum(orch_dead_letter_entries{tenant=~"$tenant"})',
            ),
            panel(
                "RPCs by service",
                "gRPC calls finished per second (grpc-ecosystem names).",
                (
                    f"sum by (grpc_service) (rate(grpc_server_handled_total[{RATE}]))",
                    "{{grpc_service}}",
                ),
                unit="reqps",
            ),
            panel(
                "RPC errors by code",
                "gRPC calls that ended with a code other than OK.",
                (
                    "sum by (grpc_service, grpc_code) "
                    f'(rate(grpc_server_handled_total{{grpc_code!="OK"}}[{RATE}]))',
                    "{{grpc_service}} {{grpc_code}}",
                ),
                unit="reqps",
            ),
            panel(
                "Unary RPC latency p99",
                "99th percentile of unary gRPC handling time by service.",
                (
                    "histogram_quantile(0.99, sum by (le, grpc_service) "
                    f'(rate(grpc_server_handling_seconds_bucket{{grpc_type="unary"}}[{RATE}])))',
                    "{{grpc_service}}",
                ),
                unit="s",
            ),
            panel(
                "REST requests by status",
                "Gateway requests per second by HTTP status.",
                (
                    f"sum by (status) (rate(orchestrator_gateway_requests_total[{RATE}]))",
                    "{{status}}",
                ),
                unit="reqps",
            ),
            panel(
                "Queue depth by state",
                "Unfinished jobs of the selected tenants by state.",
                ('sum by (state) (orch_queue_depth{tenant=~"$tenant"})', "{{state}}"),
            ),
            panel(
                "Job throughput",
                "Jobs leased, completed and failed per second (leases service).",
                (f"sum(rate(orch_leases_claimed_total[{RATE}]))", "leased"),
                (f"sum(rate(orch_leases_completed_total[{RATE}]))", "completed"),
                (f"sum(rate(orch_leases_failed_total[{RATE}]))", "failed"),
                unit="ops",
            ),
            panel(
                "Leaders",
                "1 where some replica leads the loop (0 for a while: OrchestratorNoLeader).",
                ("max by (loop) (orch_leader)", "{{loop}}"),
            ),
            panel(
                "Dependencies",
                "1 while every replica reaches the dependency; database clock offsets.",
                ("min by (dependency) (orch_dependency_up)", "{{dependency}} up"),
                ("max by (job) (abs(orch_clock_offset_seconds))", "clock offset {{job}}"),
            ),
        ],
    )


def tenant() -> Obj:
    return dashboard(
        "orch-tenant",
        "Orchestrator / Tenant",
        "One tenant's queue, dead letters and buckets; latency by job type.",
        ["tenant", "job_type"],
        [
            panel(
                "Queue depth by job type and state",
                "Unfinished jobs (leader's snapshot, every ORCH_QUEUE_METRICS_INTERVAL_S).",
                (
                    "sum by (job_type, state) "
                    '(orch_queue_depth{tenant=~"$tenant", job_type=~"$job_type"})',
                    "{{job_type}} {{state}}",
                ),
            ),
            panel(
                "Dead-letter entries by error class",
                "Pending dead-letter entries; replay or discard them from the Console.",
                (
                    'sum by (tenant, error_class) (orch_dead_letter_entries{tenant=~"$tenant"})',
                    "{{tenant}} {{error_class}}",
                ),
            ),
            panel(
                "Start latency p95 by job type",
                "Claimable (not_before or creation) to lease.",
                (
                    "histogram_quantile(0.95, sum by (le, job_type) "
                    f'(rate(orch_job_start_latency_seconds_bucket{{job_type=~"$job_type"}}[{RATE}])))',
                    "{{job_type}}",
                ),
                unit="s",
            ),
            panel(
                "Run duration p95 by job type",
                "Lease to successful completion.",
                (
                    "histogram_quantile(0.95, sum by (le, job_type) "
                    f'(rate(orch_job_run_duration_seconds_bucket{{job_type=~"$job_type"}}[{RATE}])))',
                    "{{job_type}}",
                ),
                unit="s",
            ),
            panel(
                "Completed jobs by job type",
                "Jobs that succeeded per second.",
                (
                    "sum by (job_type) (rate(orch_job_run_duration_seconds_count"
                    f'{{job_type=~"$job_type"}}[{RATE}]))',
                    "{{job_type}}",
                ),
                unit="ops",
            ),
            panel(
                "Bucket rates of the tenant",
                "Rate in force per source host (hosts without a limit left out).",
                (
                    "max by (host) "
                    f'(orch_ratelimit_bucket_rate_per_second{{tenant=~"$tenant"}} {FINITE})',
                    "{{host}}",
                ),
                unit="short",
            ),
        ],
    )


def upstreams() -> Obj:
    selector = 'tenant=~"$tenant", host=~"$host"'
    return dashboard(
        "orch-upstreams",
        "Orchestrator / Upstream hosts and throttling",
        "Circuit breakers, learnt rates, pauses after 429s, and what admission deferred.",
        ["tenant", "host"],
        [
            stat(
                "Open circuits",
                "Buckets whose circuit is open (OrchestratorCircuitOpen after 5 m).",
                f"sum(orch_ratelimit_circuit_state{{{selector}}} == bool 2)",
            ),
            stat(
                "Paused buckets",
                "Buckets paused by an upstream Retry-After.",
                f"sum(orch_ratelimit_bucket_paused{{{selector}}})",
            ),
            panel(
                "Circuit state",
                "0 closed, 1 half-open, 2 open, per {tenant, host}.",
                (
                    f"max by (tenant, host) (orch_ratelimit_circuit_state{{{selector}}})",
                    "{{tenant}} {{host}}",
                ),
            ),
            panel(
                "Rate in force vs configured",
                "Learnt or overridden rate against the configured one, tokens/s.",
                (
                    "max by (tenant, host) "
                    f"(orch_ratelimit_bucket_rate_per_second{{{selector}}} {FINITE})",
                    "in force {{tenant}} {{host}}",
                ),
                (
                    "max by (tenant, host) "
                    f"(orch_ratelimit_bucket_configured_rate_per_second{{{selector}}} {FINITE})",
                    "configured {{tenant}} {{host}}",
                ),
            ),
            panel(
                "Throttle episodes",
                "Buckets throttled after upstream 429/5xx with Retry-After, by origin.",
                (f"sum by (origin) (rate(orch_leases_throttles_total[{RATE}]))", "{{origin}}"),
                unit="ops",
            ),
            panel(
                "Deferred claims",
                "Claim candidates not leased, by admission reason (tokens, paused, circuit...).",
                (f"sum by (reason) (rate(orch_leases_deferred_total[{RATE}]))", "{{reason}}"),
                unit="ops",
            ),
            panel(
                "Failures by error class",
                "Failed attempts per second (upstream 5xx, parse errors...).",
                (
                    f"sum by (error_class) (rate(orch_leases_failed_total[{RATE}]))",
                    "{{error_class}}",
                ),
                unit="ops",
            ),
            panel(
                "Ratelimit service decisions",
                "Acquire/Envoy decisions: granted or the deny reason.",
                (f"sum by (result) (rate(orch_ratelimit_decisions_total[{RATE}]))", "{{result}}"),
                unit="ops",
            ),
        ],
    )


def workers() -> Obj:
    sdk = 'sdk=~"$sdk"'
    return dashboard(
        "orch-workers",
        "Orchestrator / Workers",
        "What the worker SDKs report (STELLA_METRICS_PORT) and what the leases service sees.",
        ["sdk"],
        [
            panel(
                "Work streams",
                "Open Work streams per leases replica.",
                ("sum by (instance) (orch_lease_sessions)", "{{instance}}"),
            ),
            panel(
                "Handlers started by SDK",
                "Jobs whose handler started, per second.",
                (
                    f"sum by (sdk) (rate(stella_worker_jobs_started_total{{{sdk}}}[{RATE}]))",
                    "{{sdk}}",
                ),
                unit="ops",
            ),
            panel(
                "Outcomes by SDK",
                "Results and failures the workers reported, per second.",
                (
                    f"sum by (sdk) (rate(stella_worker_jobs_succeeded_total{{{sdk}}}[{RATE}]))",
                    "succeeded {{sdk}}",
                ),
                (
                    "sum by (sdk, error_class) "
                    f"(rate(stella_worker_jobs_failed_total{{{sdk}}}[{RATE}]))",
                    "failed {{sdk}} {{error_class}}",
                ),
                unit="ops",
            ),
            panel(
                "Handlers in flight",
                "Handlers running now, by SDK and job type.",
                (
                    f"sum by (sdk, job_type) (stella_worker_jobs_in_flight{{{sdk}}})",
                    "{{sdk}} {{job_type}}",
                ),
            ),
            panel(
                "Handler duration p95",
                "95th percentile of handler run time by SDK and job type.",
                (
                    "histogram_quantile(0.95, sum by (le, sdk, job_type) "
                    f"(rate(stella_worker_handler_duration_seconds_bucket{{{sdk}}}[{RATE}])))",
                    "{{sdk}} {{job_type}}",
                ),
                unit="s",
            ),
            panel(
                "Leases lost",
                "Leases the watchdog expired and leases released with their stream.",
                (f"sum(rate(orch_leases_expired_total[{RATE}]))", "expired"),
                (f"sum(rate(orch_leases_released_total[{RATE}]))", "released"),
                unit="ops",
            ),
        ],
    )


def slo() -> Obj:
    return dashboard(
        "orch-slo",
        "Orchestrator / SLO burn",
        "Start latency (99 % of jobs leased within 5 s) and job failures (95 % of attempts "
        "succeed) against their 30-day budgets; the burn alerts fire on these rules.",
        [],
        [
            stat(
                "Burn alerts firing",
                "OrchestratorStartLatencyBurn* and OrchestratorJobFailureBurn* alerts firing.",
                'sum(ALERTS{alertname=~"Orchestrator.*Burn.*", alertstate="firing"}) or vector(0)',
            ),
            stat(
                "Start-latency burn rate (1 h)",
                "Error ratio over the budget (1 %): 1 spends the budget in exactly 30 days.",
                "orch:start_latency_slo_errors:ratio_rate1h / 0.01",
            ),
            stat(
                "Failure burn rate (1 h)",
                "Failed-attempt ratio over the budget (5 %).",
                "orch:job_failure_slo_errors:ratio_rate1h / 0.05",
            ),
            panel(
                "Start-latency error ratio",
                "Share of jobs not leased within 5 s of becoming claimable.",
                ("orch:start_latency_slo_errors:ratio_rate5m", "5m"),
                ("orch:start_latency_slo_errors:ratio_rate1h", "1h"),
                ("orch:start_latency_slo_errors:ratio_rate6h", "6h"),
                unit="percentunit",
            ),
            panel(
                "Job failure ratio",
                "Share of finished attempts that failed (429s and cancellations excluded).",
                ("orch:job_failure_slo_errors:ratio_rate5m", "5m"),
                ("orch:job_failure_slo_errors:ratio_rate1h", "1h"),
                ("orch:job_failure_slo_errors:ratio_rate6h", "6h"),
                unit="percentunit",
            ),
            panel(
                "Burn rates",
                "Fast burn pages above 14.4 (1 h and 5 m), slow burn warns above 6 (6 h and 1 h).",
                ("orch:start_latency_slo_errors:ratio_rate1h / 0.01", "start latency 1h"),
                ("orch:start_latency_slo_errors:ratio_rate6h / 0.01", "start latency 6h"),
                ("orch:job_failure_slo_errors:ratio_rate1h / 0.05", "failures 1h"),
                ("orch:job_failure_slo_errors:ratio_rate6h / 0.05", "failures 6h"),
            ),
        ],
    )


def audit() -> Obj:
    service = 'grpc_service="stella.orchestrator.v1.AuditService"'
    return dashboard(
        "orch-audit",
        "Orchestrator / Audit",
        "The hash chain's lag behind the outbox, its leader, and the audit service's RPCs.",
        [],
        [
            stat(
                "Chain lag (events)",
                "Event seqs handed out past the chainer's cursor.",
                "max(orch_audit_chain_lag_events)",
            ),
            stat(
                "Chain lag (seconds)",
                "Age of the oldest committed event not chained yet.",
                "max(orch_audit_chain_lag_seconds)",
                unit="s",
            ),
            stat(
                "Chainer leader",
                "1 while some audit replica leads the chainer.",
                'max(orch_leader{loop="audit_chain"})',
            ),
            stat(
                "Audit database",
                "1 while every audit replica reaches PostgreSQL.",
                'min(orch_dependency_up{job=~"orchestrator-audit.*"})',
            ),
            panel(
                "Chain lag",
                "Events and seconds behind (OrchestratorAuditChainLag above 5 m).",
                ("max(orch_audit_chain_lag_events)", "events"),
                ("max(orch_audit_chain_lag_seconds)", "seconds"),
            ),
            panel(
                "Audit RPCs by method and code",
                "Bundle exports, verifications, entry listings.",
                (
                    "sum by (grpc_method, grpc_code) "
                    f"(rate(grpc_server_handled_total{{{service}}}[{RATE}]))",
                    "{{grpc_method}} {{grpc_code}}",
                ),
                unit="reqps",
            ),
        ],
    )


DASHBOARDS = {
    "fleet-overview": fleet,
    "tenant": tenant,
    "upstreams": upstreams,
    "workers": workers,
    "slo-burn": slo,
    "audit": audit,
}


def render() -> dict[str, str]:
    """``{file name: JSON text}`` of every dashboard, deterministic."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for stale in OUT.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(wanted)} dashboards to {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
