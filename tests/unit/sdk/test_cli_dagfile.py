"""The DAG file checks of ``runs create -f`` (no I/O beyond a temporary file): every error
with its path and line, in file order; DAG checks beside field checks; cycles; JSON strictly."""

from __future__ import annotations

import pytest

from stella_orchestrator._cli_dagfile import JOB_SCHEMA, RUN_SCHEMA, check, check_cycle, load
from stella_orchestrator._cli_output import EXIT_USAGE, CliError


def _errors(tmp_path, text: str, name: str = "dag.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CliError) as exc:
        load(str(path), RUN_SCHEMA)
    assert exc.value.code == EXIT_USAGE
    return exc.value.details


def test_a_valid_file_loads_as_the_request_body(tmp_path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        "name: n\njobs:\n  - {key: a, job_type: t}\n  - {key: b, job_type: t, depends_on: [a]}\n"
    )
    body = load(str(path), RUN_SCHEMA)
    assert body == {
        "name": "n",
        "jobs": [
            {"key": "a", "job_type": "t"},
            {"key": "b", "job_type": "t", "depends_on": ["a"]},
        ],
    }


def test_field_and_dag_errors_come_together_in_file_order(tmp_path) -> None:
    details = _errors(
        tmp_path,
        "jobs:\n"
        "  - key: a\n"
        "    job_type: t\n"
        "    depends_on: [zz]\n"
        "  - key: a\n"
        "    job_type: t\n"
        "    priority: -1001\n"
        "    retries: 3\n",
    )
    assert details == [
        "line 4: jobs[0].depends_on[0]: no job has key 'zz' (keys: a)",
        "line 5: jobs[1].key: 'a' is also the key of jobs[0]",
        "line 7: jobs[1].priority: -1001 is not in [-1000, 1000]",
        "line 8: jobs[1].retries: unknown field (known: correlation_id, depends_on, "
        "idempotency_key, job_type, key, labels, max_attempts, payload, priority, project, "
        "source_id)",
    ]


def test_a_missing_field_is_reported_at_its_parent(tmp_path) -> None:
    assert _errors(tmp_path, "jobs:\n  - key: a\n") == ["line 2: jobs[0].job_type: required"]
    assert _errors(tmp_path, "name: x\n") == ["line 1: jobs: required"]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"job_type": True}, "job.job_type: expected a string, got true"),
        ({"job_type": "t", "max_attempts": 1.5}, "job.max_attempts: expected an integer, got 1.5"),
        ({"job_type": "t", "labels": {"a": 1}}, "job.labels.a: expected a string, got 1"),
        ({"job_type": "x" * 201}, "job.job_type: longer than 200 characters"),
        ({"job_type": "t", "payload": []}, "job.payload: expected an object, got []"),
    ],
)
def test_types_and_limits(value, error) -> None:
    assert check(value, JOB_SCHEMA, "job") == [error]


def test_cycles_are_named() -> None:
    jobs = [
        {"key": "a", "job_type": "t"},
        {"key": "b", "job_type": "t", "depends_on": ["a", "d"]},
        {"key": "c", "job_type": "t", "depends_on": ["b"]},
        {"key": "d", "job_type": "t", "depends_on": ["c"]},
    ]
    assert check_cycle(jobs) == [
        "jobs[2].depends_on: a cycle: b -> d -> c -> b"
    ]  # each waits on the next
    jobs[1]["depends_on"] = ["a"]
    assert check_cycle(jobs) == []


def test_json_files_are_strict_json(tmp_path) -> None:
    path = tmp_path / "dag.json"
    path.write_text('{"jobs": [{"job_type": "t",}]}')
    with pytest.raises(CliError) as exc:
        load(str(path), RUN_SCHEMA)
    assert "not JSON" in str(exc.value)
    assert "line 1, column" in str(exc.value)
    assert _errors(tmp_path, '{"jobs": []}', "empty.json") == [
        "jobs: has 0 items, expected 1 to 10000"
    ]
