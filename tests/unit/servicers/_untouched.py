"""Storage stand-in for the servicer tests: any store, ledger or client a servicer takes.

It records and refuses every call once armed, so a refused request provably reached no
store, and an armed error lets a test check how a domain error reaches the caller.
"""

from __future__ import annotations

from typing import Any


class Untouched:
    """Any store, ledger or client a servicer takes. While the servicer is built, calls just
    return another stand-in (constructors wrap their ledgers); once :meth:`arm` is called,
    every call is recorded in ``touched`` and raises, so an invalid request must be refused
    before any storage is reached."""

    def __init__(self, name: str = "store", state: dict[str, Any] | None = None) -> None:
        self._name = name
        self._state: dict[str, Any] = (
            state if state is not None else {"armed": False, "touched": []}
        )

    @property
    def touched(self) -> list[str]:
        return list(self._state["touched"])

    def arm(self, raises: BaseException | None = None) -> None:
        """From now on every call is recorded and raises ``raises`` (a domain error the
        servicer must pass on), or an AssertionError when None."""
        self._state["armed"] = True
        self._state["raise"] = raises

    def __getattr__(self, attr: str) -> Untouched:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Untouched(f"{self._name}.{attr}", self._state)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._state["armed"]:
            return Untouched(f"{self._name}()", self._state)
        self._state["touched"].append(self._name)
        if self._state["raise"] is not None:
            raise self._state["raise"]
        raise AssertionError(f"{self._name} was called")
