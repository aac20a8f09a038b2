"""Loads the named Lua scripts of lua/*.lua (STYLE rule 3, applied to Lua).

Each script starts with a ``-- name: noun_verb`` header line; the text up to the next header
is the script. Text above a file's first header is that file's shared prelude (helpers and
argument parsing) and is prepended to every script of the file, so each loaded script is
self-contained for ``SCRIPT LOAD`` / ``EVALSHA``. Python never builds Lua from strings: it
looks a script up by name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

_HEADER_RE = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One loadable script: its name, full source (prelude included) and SHA1 digest."""

    name: str
    source: str
    sha: str


def parse_scripts(text: str, source: str = "<string>") -> dict[str, str]:
    """Splits one .lua file into ``{name: prelude + body}``.

    Raises:
        ValueError: a name appears twice, a header has no script under it, or the file has
            no header at all.
    """
    headers = list(_HEADER_RE.finditer(text))
    if not headers:
        raise ValueError(f"{source}: no '-- name:' header")
    prelude = text[: headers[0].start()].strip()
    found: dict[str, str] = {}
    for index, match in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        if name in found:
            raise ValueError(f"{source}: script {name!r} is defined twice")
        if not body:
            raise ValueError(f"{source}: script {name!r} has no Lua")
        found[name] = f"{prelude}\n\n-- {name}\n{body}\n" if prelude else f"{body}\n"
    return found


@cache
def scripts() -> Mapping[str, LuaScript]:
    """All named scripts of the package, loaded once."""
    merged: dict[str, LuaScript] = {}
    folder = resources.files("orchestrator_redis") / "lua"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".lua"):
            continue
        for name, lua in parse_scripts(entry.read_text("utf-8"), entry.name).items():
            if name in merged:
                raise ValueError(f"{entry.name}: script {name!r} is defined in two files")
            # Redis names a script by the SHA1 of its exact source.
            sha = hashlib.sha1(lua.encode("utf-8"), usedforsecurity=False).hexdigest()
            merged[name] = LuaScript(name, lua, sha)
    return merged


def script(name: str) -> LuaScript:
    """One named script.

    Raises:
        KeyError: no script has that name.
    """
    try:
        return scripts()[name]
    except KeyError:
        raise KeyError(f"no Lua script named {name!r} in orchestrator_redis/lua") from None
