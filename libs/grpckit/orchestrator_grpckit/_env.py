"""Reading one setting from the environment: the parsers every service's ``_settings.py``
uses, so a malformed value always fails at start-up with :class:`ConfigError` naming the
variable, instead of a bare ``ValueError`` deep inside a service.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator_grpckit._exceptions import ConfigError


def env_number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """``name`` as a number in ``[low, high]``; unset or blank: ``default``.

    Raises:
        ConfigError: not a number, or out of range (NaN included).
    """
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:  # also rejects NaN
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """``name`` as a whole number in ``[low, high]``; unset or blank: ``default``.

    Raises:
        ConfigError: not a whole number, or out of range.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


def env_choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """``name`` as one of ``allowed`` (case-insensitive); unset or blank: ``default``.

    Raises:
        ConfigError: any other value.
    """
    raw = env.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} is invalid: must be {' or '.join(allowed)}")
    return raw
