"""The container image's promises (Containerfile; docs/deploy.md "Image").

Statically, on every run: a multi-stage build whose bases are pinned tags (never ``latest``),
a final stage that runs as a numeric non-root uid/gid, OCI labels with version and revision,
and the runtime lock installed exactly (hashes required, no resolver). Each check is also run
on a deliberately broken copy, which it must reject.

When podman is installed and the image has been built (``make image``; CI does not build it,
it takes minutes), the image itself: it runs with a read-only root filesystem and only /tmp
writable, as uid/gid 10001, holds every service and the Console's assets, ships no pip, and,
when built from the checked-out commit, holds exactly the versions of requirements/runtime.txt.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
SERVICES = (
    "orchestrator_scheduler",
    "orchestrator_leases",
    "orchestrator_ratelimit",
    "orchestrator_audit",
    "orchestrator_gateway",
)
IMAGE_UID = 10001


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    pairs = []
    for line in logical:
        word, _, rest = line.partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def containerfile_problems(text: str) -> list[str]:
    """What the Containerfile breaks of the image's promises; empty when it keeps them all."""
    problems: list[str] = []
    instructions = _instructions(text)
    global_args: dict[str, str] = {}
    for word, rest in instructions:
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            global_args[name.strip()] = value.strip().strip('"')

    stages: list[str] = []
    final: list[tuple[str, str]] = []
    for word, rest in instructions:
        if word != "FROM":
            final.append((word, rest))
            continue
        final = []
        parts = rest.split()
        ref = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m[1] or m[2], ""), parts[0])
        if ref not in stages:
            tag = ref.rsplit("/", 1)[-1].partition(":")[2] if "@" not in ref else "digest"
            if not tag:
                problems.append(f"FROM {parts[0]}: no tag (means latest); pin one")
            elif tag == "latest":
                problems.append(f"FROM {parts[0]}: the floating tag latest")
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.append(parts[2])
    if len(stages) < 1:
        problems.append("not a multi-stage build (no `FROM ... AS name` stage before the last)")

    users = [rest for word, rest in final if word == "USER"]
    if not users:
        problems.append("the final stage sets no USER (it would run as root)")
    else:
        match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
        if not match:
            problems.append(f"USER {users[-1]}: not a numeric uid[:gid] (runAsNonRoot needs one)")
        elif int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
            problems.append(f"USER {users[-1]}: root")

    labels = " ".join(rest for word, rest in final if word == "LABEL")
    for key in ("version", "revision", "created", "title"):
        if not re.search(rf"org\.opencontainers\.image\.{key}=\S", labels):
            problems.append(f"no org.opencontainers.image.{key} label in the final stage")

    runs = [rest for word, rest in instructions if word == "RUN"]
    pip_installs = [
        cmd for run in runs for cmd in re.split(r"&&|;", run) if re.search(r"pip\s+install", cmd)
    ]
    if not any(
        "--require-hashes" in cmd and re.search(r"-r\s+\S*requirements/runtime\.txt", cmd)
        for cmd in pip_installs
    ):
        problems.append("requirements/runtime.txt is not installed with --require-hashes")
    for cmd in pip_installs:
        if "--no-deps" not in cmd:
            problems.append(f"`{cmd.strip()}` resolves dependencies itself (use the lock)")
        if "--require-hashes" not in cmd and not re.search(r"\s/\S+\.whl\b", cmd):
            problems.append(f"`{cmd.strip()}` installs from an index without hashes")
    if not any(
        word == "COPY" and "requirements/runtime.txt" in rest for word, rest in instructions
    ):
        problems.append("the lock requirements/runtime.txt is not copied into the build")
    return problems


def test_the_containerfile_keeps_its_promises():
    assert containerfile_problems(CONTAINERFILE.read_text()) == []


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .containerignore keeps ``path`` out of the build context (the last pattern
    matching the path or one of its parent directories decides; ``!`` re-includes)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            ignored = not negated
    return ignored


def build_context_problems(text: str, ignore_text: str) -> list[str]:
    """COPY sources (from the context, not another stage) that are missing or that
    .containerignore leaves out: the build fails on them only when someone runs it."""
    patterns = [
        line.strip()
        for line in ignore_text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    problems = []
    for word, rest in _instructions(text):
        if word != "COPY" or "--from=" in rest:
            continue
        sources = [a for a in rest.split() if not a.startswith("--")][:-1]
        for source in sources:
            if not (ROOT / source).exists():
                problems.append(f"COPY {source}: not in the repository")
            elif _ignored(source, patterns):
                problems.append(f"COPY {source}: left out of the build context by .containerignore")
    return problems


def test_every_copied_file_reaches_the_build_context():
    ignore = (ROOT / ".containerignore").read_text()
    assert build_context_problems(CONTAINERFILE.read_text(), ignore) == []
    # The check bites: a lock the Containerfile copies but the context leaves out.
    broken = ignore.replace("!requirements/otel-proto.txt\n", "")
    assert build_context_problems(CONTAINERFILE.read_text(), broken) == [
        "COPY requirements/otel-proto.txt: left out of the build context by .containerignore"
    ]


# (text to replace, its replacement, what the problem report must then mention)
BREAKAGES = {
    "user root": ("USER 10001:10001", "USER root", "not a numeric uid"),
    "user by name": ("USER 10001:10001", "USER stella", "not a numeric uid"),
    "uid 0": ("USER 10001:10001", "USER 0:10001", "root"),
    "no user": ("USER 10001:10001", "", "sets no USER"),
    "latest base": (
        "ARG BASE_IMAGE=localhost/stella-orchestrator-base:bookworm-minbase",
        "ARG BASE_IMAGE=docker.io/library/debian:latest",
        "floating tag latest",
    ),
    "untagged base": (
        "ARG BASE_IMAGE=localhost/stella-orchestrator-base:bookworm-minbase",
        "ARG BASE_IMAGE=debian",
        "no tag",
    ),
    "no revision label": ('org.opencontainers.image.revision="${REVISION}"', "", "revision"),
    "no version label": ('org.opencontainers.image.version="${VERSION}"', "", "version"),
    "hashes not required": (
        "/opt/stella/bin/pip install --require-hashes",
        "/opt/stella/bin/pip install",
        "runtime.txt is not installed with --require-hashes",
    ),
    "resolver on": (
        "/opt/stella/bin/pip install --no-deps /wheels/",
        "/opt/stella/bin/pip install /wheels/",
        "resolves dependencies",
    ),
    "single stage": (" AS python", "", "multi-stage"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_check_rejects_a_broken_copy(breakage: str):
    old, new, expected = BREAKAGES[breakage]
    text = CONTAINERFILE.read_text()
    assert old in text, f"the Containerfile changed; update the breakage {breakage!r}"
    broken = text.replace(old, new)
    if breakage == "single stage":
        broken = re.sub(r"(?m)^(FROM \S+) AS \w+$", r"\1", broken)
    problems = containerfile_problems(broken)
    assert any(expected in p for p in problems), f"{breakage}: not detected: {problems}"


# ---- the built image (only where podman is installed and `make image` has run) ----


def _podman_env() -> dict[str, str]:
    return {
        **os.environ,
        "CONTAINERS_CONF": os.environ.get(
            "CONTAINERS_CONF", str(ROOT / "deploy" / "image" / "containers.conf")
        ),
    }


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make image installs it)")
    name = subprocess.run(
        ["bash", str(ROOT / "scripts" / "image.sh"), "name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if subprocess.run(["podman", "image", "exists", name], env=_podman_env()).returncode != 0:
        pytest.skip(f"no image {name} (make image builds it; CI does not)")
    return name


def _run_read_only(image: str, *argv: str) -> subprocess.CompletedProcess[str]:
    # As Kubernetes runs it with the restricted profile: read-only root, an emptyDir-like
    # tmpfs on /tmp as the only writable path, no capabilities, no privilege gain.
    return subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--network=none",
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs=/tmp:rw,size=16m,mode=1777",
            "--cap-drop=all",
            "--security-opt=no-new-privileges",
            image,
            *argv,
        ],
        env=_podman_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


PROBE = """
import errno, importlib, importlib.metadata as md, importlib.util, json, os, pathlib, sys
out = {"uid": os.getuid(), "gid": os.getgid()}
try:
    pathlib.Path("/opt/stella/probe").write_text("x")
    out["root_write"] = "allowed"
except OSError as exc:
    out["root_write"] = errno.errorcode[exc.errno]
pathlib.Path("/tmp/probe").write_text("x")
out["tmp_write"] = "allowed"
out["services"] = [importlib.import_module(m).__name__ for m in sys.argv[1:]]
gateway = pathlib.Path(importlib.util.find_spec("orchestrator_gateway").origin).parent
out["console"] = sorted(p.name for p in (gateway / "console").rglob("*") if p.is_file())
out["pip"] = importlib.util.find_spec("pip") is not None
out["dists"] = {d.metadata["Name"]: d.version for d in md.distributions()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe(image: str) -> dict[str, Any]:
    done = _run_read_only(image, "python", "-c", PROBE, *SERVICES)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_image_runs_read_only_as_its_numeric_user(probe: dict[str, Any]):
    assert (probe["uid"], probe["gid"]) == (IMAGE_UID, IMAGE_UID)
    assert probe["root_write"] == "EROFS"
    assert probe["tmp_write"] == "allowed"


def test_the_image_holds_every_service_the_console_and_no_pip(probe: dict[str, Any]):
    assert probe["services"] == list(SERVICES)
    assert {"index.html", "app.js", "app.css"} <= set(probe["console"])
    assert probe["pip"] is False


def test_the_cli_answers_on_a_read_only_root(image: str):
    done = _run_read_only(image, "stella", "orchestrator", "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "migrate" in done.stdout


def test_the_image_is_labelled_with_version_and_revision(image: str):
    labels = json.loads(
        subprocess.run(
            ["podman", "image", "inspect", "--format", "{{json .Labels}}", image],
            env=_podman_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels["org.opencontainers.image.revision"])


def test_the_image_holds_exactly_the_runtime_lock(image: str, probe: dict[str, Any]):
    revision = subprocess.run(
        [
            "podman",
            "image",
            "inspect",
            "--format",
            '{{index .Labels "org.opencontainers.image.revision"}}',
            image,
        ],
        env=_podman_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if revision != head:
        pytest.skip(f"the image was built from {revision[:12]}, the checkout is {head[:12]}")
    pins = {canonicalize_name(n): v for n, v in PIN.findall(RUNTIME_LOCK.read_text())}
    installed = {canonicalize_name(n): v for n, v in probe["dists"].items()}
    # The project's own two distributions (server and SDK) are built in the image, not locked.
    for project in (ROOT / "pyproject.toml", ROOT / "clients" / "python" / "pyproject.toml"):
        meta = tomllib.loads(project.read_text())["project"]
        assert installed.pop(canonicalize_name(meta["name"])) == meta["version"]
    assert installed == pins
