"""Contract tests for the protobuf API in protos/stella/orchestrator/v1.

Checks that the generated Python code is fresh, that buf lint and buf format are clean,
that every RPC follows the <Rpc>Request/<Rpc>Response naming rule, and that every generated
module imports and registers the five services.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GEN_PYTHON = ROOT / "gen" / "python"
GEN_PACKAGE_DIR = GEN_PYTHON / "stella" / "orchestrator" / "v1"
PACKAGE = "stella.orchestrator.v1"
EXPECTED_SERVICES = {
    f"{PACKAGE}.SchedulerService",
    f"{PACKAGE}.LeaseService",
    f"{PACKAGE}.RateLimitService",
    f"{PACKAGE}.AuditService",
    f"{PACKAGE}.EventStreamService",
    # served by the scheduler beside SchedulerService and EventStreamService (issue 21)
    f"{PACKAGE}.WebhookService",
}

if str(GEN_PYTHON) not in sys.path:
    sys.path.insert(0, str(GEN_PYTHON))


def _buf() -> str:
    venv_buf = Path(sys.executable).parent / "buf"
    if venv_buf.exists():
        return str(venv_buf)
    found = shutil.which("buf")
    if found is None:
        pytest.fail("buf CLI not found (install the buf-bin package into the venv)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def _generated_modules() -> list[str]:
    names = sorted(p.stem for p in GEN_PACKAGE_DIR.glob("*_pb2.py")) + sorted(
        p.stem for p in GEN_PACKAGE_DIR.glob("*_pb2_grpc.py")
    )
    assert names, f"no generated modules in {GEN_PACKAGE_DIR}; run scripts/gen_protos.py"
    return [f"{PACKAGE}.{name}" for name in names]


def test_generated_code_is_fresh() -> None:
    result = _run(sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check")
    assert result.returncode == 0, (
        "gen/python is stale; run `python scripts/gen_protos.py`\n" + result.stdout + result.stderr
    )


def test_buf_lint_is_clean() -> None:
    result = _run(_buf(), "lint")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output == "", output


def test_buf_format_is_clean() -> None:
    result = _run(_buf(), "format", "-d", "--exit-code")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output == "", output


def test_every_generated_module_imports_and_services_are_registered() -> None:
    from google.protobuf import descriptor_pool

    for module in _generated_modules():
        importlib.import_module(module)
    pool = descriptor_pool.Default()
    found = set()
    for name in EXPECTED_SERVICES:
        found.add(pool.FindServiceByName(name).full_name)
    assert found == EXPECTED_SERVICES


def _all_services() -> list[object]:
    services = []
    for module_name in _generated_modules():
        if not module_name.endswith("_pb2"):
            continue
        module = importlib.import_module(module_name)
        services.extend(module.DESCRIPTOR.services_by_name.values())
    return services


def test_package_declares_exactly_the_expected_services() -> None:
    names = {service.full_name for service in _all_services()}  # type: ignore[attr-defined]
    assert names == EXPECTED_SERVICES


def test_every_rpc_has_its_own_request_and_response() -> None:
    problems = []
    seen_types: dict[str, str] = {}
    for service in _all_services():
        for method in service.methods:  # type: ignore[attr-defined]
            rpc = f"{service.full_name}.{method.name}"  # type: ignore[attr-defined]
            want_in = f"{PACKAGE}.{method.name}Request"
            want_out = f"{PACKAGE}.{method.name}Response"
            if method.input_type.full_name != want_in:
                problems.append(f"{rpc}: request is {method.input_type.full_name}, want {want_in}")
            if method.output_type.full_name != want_out:
                problems.append(
                    f"{rpc}: response is {method.output_type.full_name}, want {want_out}"
                )
            for type_name in (method.input_type.full_name, method.output_type.full_name):
                if type_name in seen_types:
                    problems.append(f"{rpc}: {type_name} already used by {seen_types[type_name]}")
                seen_types[type_name] = rpc
    assert not problems, "\n".join(problems)
