#!/usr/bin/env python3
"""Regenerate the Python protobuf/gRPC code of the Stella Orchestrator contract.

Sources:  protos/stella/orchestrator/v1/*.proto   (package stella.orchestrator.v1)
Output:   gen/python/stella/orchestrator/v1/{name}_pb2.py, {name}_pb2_grpc.py and their typed
          stubs {name}_pb2.pyi, {name}_pb2_grpc.pyi (mypy-protobuf's protoc-gen-mypy and
          protoc-gen-mypy_grpc, pinned in the lock like grpcio-tools)

Usage:
    python scripts/gen_protos.py           # regenerate gen/python in place
    python scripts/gen_protos.py --check   # regenerate into a temp dir; exit 1 if it differs

Generation is deterministic: the .proto list is sorted, paths are relative, and stale
generated files are deleted before writing. No __init__.py files are generated; the
`stella` tree is an implicit namespace package (put gen/python on the import path).
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "gen" / "python"

# Suffixes of files this script owns inside OUT_ROOT. Anything else (e.g. a hand-written
# py.typed or __init__.py) is left alone and ignored by --check.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _is_generated(path: Path) -> bool:
    return path.is_file() and path.name.endswith(GENERATED_SUFFIXES)


def proto_files() -> list[str]:
    """Every .proto under protos/, as sorted paths relative to protos/ (posix separators)."""
    files = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    if not files:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    return files


def generated_files(out_dir: Path) -> dict[str, Path]:
    """Generated files under out_dir keyed by their posix path relative to out_dir."""
    if not out_dir.exists():
        return {}
    return {
        p.relative_to(out_dir).as_posix(): p
        for p in sorted(out_dir.rglob("*"))
        if _is_generated(p) and "__pycache__" not in p.parts
    }


def clean(out_dir: Path) -> None:
    """Delete generated files (and __pycache__ and directories left empty) under out_dir."""
    if not out_dir.exists():
        return
    for path in generated_files(out_dir).values():
        path.unlink()
    for cache in sorted(out_dir.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    # Remove now-empty directories, deepest first; keep out_dir itself.
    for directory in sorted((d for d in out_dir.rglob("*") if d.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


def generate(out_dir: Path) -> None:
    """Run grpc_tools.protoc over every .proto, writing into out_dir."""
    # Imported lazily (and untyped: grpc_tools ships no stubs) so `--help` works without it.
    grpc_tools = importlib.import_module("grpc_tools")
    protoc = importlib.import_module("grpc_tools.protoc")

    well_known = Path(str(grpc_tools.__file__)).resolve().parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        *(f"--plugin=protoc-gen-{name}={_plugin(name)}" for name in ("mypy", "mypy_grpc")),
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *proto_files(),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"grpc_tools.protoc failed with exit code {rc}")


def _plugin(name: str) -> str:
    """The mypy-protobuf plugin ``protoc-gen-<name>`` installed beside this interpreter."""
    path = Path(sys.executable).parent / f"protoc-gen-{name}"
    if not path.exists():
        raise SystemExit(f"{path} is missing: mypy-protobuf is not installed (make venv)")
    return str(path)


def check() -> int:
    """Regenerate into a temp dir and compare with OUT_ROOT. Returns the exit code."""
    with tempfile.TemporaryDirectory(prefix="gen_protos_") as tmp:
        fresh_dir = Path(tmp)
        generate(fresh_dir)
        fresh = generated_files(fresh_dir)
        current = generated_files(OUT_ROOT)

        missing = sorted(set(fresh) - set(current))
        stale = sorted(set(current) - set(fresh))
        changed = sorted(
            name
            for name in set(fresh) & set(current)
            if not filecmp.cmp(fresh[name], current[name], shallow=False)
        )
        if not (missing or stale or changed):
            print(f"gen_protos: {OUT_ROOT.relative_to(ROOT)} is up to date ({len(fresh)} files)")
            return 0

        print(f"gen_protos: {OUT_ROOT.relative_to(ROOT)} is out of date with protos/:")
        for name in missing:
            print(f"  missing: {name}")
        for name in stale:
            print(f"  stale:   {name}")
        for name in changed:
            old = current[name].read_text(encoding="utf-8").splitlines()
            new = fresh[name].read_text(encoding="utf-8").splitlines()
            diff = list(difflib.unified_diff(old, new, lineterm="", n=0))
            added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
            removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
            print(f"  changed: {name} (+{added} -{removed} lines)")
        print("run: python scripts/gen_protos.py")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory and exit 1 if gen/python differs",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check()
    clean(OUT_ROOT)
    generate(OUT_ROOT)
    count = len(generated_files(OUT_ROOT))
    print(f"gen_protos: wrote {count} files to {OUT_ROOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
