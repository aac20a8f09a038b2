"""The bucket store: thin Python around the Lua scripts of lua/buckets.lua.

Python validates, names keys and batches calls; every read-modify-write of a bucket happens
inside one script, so concurrent callers (many ratelimit replicas) stay consistent without
locks. All calls of one method go out as one pipeline: one network round trip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from orchestrator_redis._errors import (
    InvalidBucketArgument,
    OrchestratorRedisError,
    RedisUnavailable,
)
from orchestrator_redis._lua import LuaScript, script, scripts
from orchestrator_redis._model import (
    AdaptivePolicy,
    BucketConfig,
    BucketKey,
    BucketState,
    CircuitPolicy,
    CircuitState,
    DenyReason,
    Grant,
    redis_keys,
    tenant_keys,
    validate_prefix,
)

__all__ = ["DEFAULT_PREFIX", "IDLE_TTL_S", "STOPPED_RETRY_AFTER_S", "BucketStore"]

DEFAULT_PREFIX = "orch:rl:"
# A bucket hash (and a tenant's index set) untouched this long expires; configs and
# overrides live in the tenant's config hash and never expire.
IDLE_TTL_S = 86_400
# retry_after_s answered while an operator override with rate 0 and no end is in force.
STOPPED_RETRY_AFTER_S = 60.0
# Frozen values, so sharing them as argument defaults is safe.
DEFAULT_CONFIG = BucketConfig(10, 5)
DEFAULT_CIRCUIT = CircuitPolicy()
DEFAULT_ADAPTIVE = AdaptivePolicy()

_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

_Call = tuple[LuaScript, list[str], list[str]]


def _num(value: float) -> str:
    # repr of a float round-trips exactly; Lua's tonumber reads it back bit for bit.
    return repr(float(value))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _check_now(now: float) -> None:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise InvalidBucketArgument("now", f"must be finite epoch seconds, got {now!r}")


def _check_count(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidBucketArgument(field, f"must be an integer >= 0, got {value!r}")


def _check_seconds(field: str, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidBucketArgument(field, f"must be finite seconds >= 0, got {value!r}")


def _check_key(key: BucketKey) -> None:
    if not isinstance(key, BucketKey):
        raise InvalidBucketArgument("key", f"must be a BucketKey, got {type(key).__name__}")


class BucketStore:
    """Adaptive token buckets and circuit breakers per ``{tenant, source host}`` in Redis.

    Every method takes ``now`` (epoch seconds) from the caller; the scripts never read the
    Redis clock, so tests move time instead of sleeping. Requests for the same bucket are
    applied in the order Redis runs them; a ``now`` older than the bucket's ``updated_at``
    refills nothing (time never runs backwards for a bucket).

    Args:
        redis: A ``redis.asyncio.Redis`` client (bytes or decoded responses both work).
        prefix: Prefix of every key (no ``{``/``}``).
        default: Config of buckets with neither their own config nor a tenant default.
        circuit: Circuit breaker policy.
        adaptive: how the rate in force is learnt from upstream answers.

    Raises:
        InvalidBucketArgument: the prefix contains hash-tag braces.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        default: BucketConfig = DEFAULT_CONFIG,
        circuit: CircuitPolicy = DEFAULT_CIRCUIT,
        adaptive: AdaptivePolicy = DEFAULT_ADAPTIVE,
    ) -> None:
        self._redis = redis
        self._owns_client = False
        self.prefix = validate_prefix(prefix)
        self.default = default
        self.circuit = circuit
        self.adaptive = adaptive
        self._loaded = False
        # ARGV[2..19] of every script (see the calling convention in lua/buckets.lua).
        self._policy_args = [
            _num(default.capacity),
            _num(default.refill_per_s),
            str(IDLE_TTL_S),
            _num(circuit.failure_ratio),
            str(int(circuit.min_volume)),
            _num(circuit.window_s),
            _num(circuit.open_s),
            _num(adaptive.decrease_factor),
            _num(adaptive.min_refill_per_s),
            _num(adaptive.probe_per_s),
            _num(STOPPED_RETRY_AFTER_S),
            _num(adaptive.goodput_margin),
            _num(adaptive.slow_start_per_s),
            _num(adaptive.burst_s),
            _num(adaptive.goodput_window_s),
            _num(adaptive.min_goodput_window_s),
            _num(adaptive.gentle_decrease),
            _num(adaptive.probe_hold_s),
        ]

    # -- public operations -------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, *, timeout_s: float, **options: Any) -> BucketStore:
        """A store on its own client for ``url`` (closed by :meth:`aclose`); ``options`` as
        for the constructor. One attempt per command, bounded by ``timeout_s``: the caller's
        failure policy, not a retry loop, decides what a dead Redis means."""
        client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        store = cls(client, **options)
        store._owns_client = True
        return store

    async def aclose(self) -> None:
        """Closes the client if :meth:`connect` made it (a client passed in is the caller's)."""
        if self._owns_client:
            await self._redis.aclose()

    async def configure(self, key: BucketKey, config: BucketConfig, *, now: float) -> BucketState:
        """Sets a bucket's own config; on the tenant default key ``(tenant, "")`` it is also
        the config of every host bucket of the tenant that has none of its own.

        Tokens accrued so far are kept (capped at the new capacity); a new bucket starts full.

        Returns:
            The bucket's state after the change.

        Raises:
            InvalidBucketArgument: bad key, config or ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_key(key)
        if not isinstance(config, BucketConfig):
            raise InvalidBucketArgument("config", "must be a BucketConfig")
        extra = [_num(config.capacity), _num(config.refill_per_s)]
        return await self._single("bucket_configure", key, now, extra)

    async def acquire(
        self,
        requests: Sequence[tuple[BucketKey, int]],
        *,
        now: float,
        whole: Sequence[bool] | None = None,
    ) -> list[Grant]:
        """Takes tokens from many buckets in one round trip (one script call per tenant, all
        in one pipeline). Requests apply in order, so a key may appear more than once.

        Each request gets up to ``n`` whole tokens; partial grants happen unless
        ``whole[i]`` asks for all or nothing (then a short bucket keeps its tokens and the
        grant is 0, with the wait for all ``n``). Nothing is granted while the bucket is
        paused or its circuit is open; a half-open circuit lets one probe token out.

        Returns:
            One :class:`Grant` per request, in request order.

        Raises:
            InvalidBucketArgument: bad key, count or ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_now(now)
        if whole is not None and len(whole) != len(requests):
            raise InvalidBucketArgument("whole", "must have one flag per request")
        by_tenant: dict[str, list[int]] = {}
        for index, (key, n) in enumerate(requests):
            _check_key(key)
            _check_count("requested", n)
            by_tenant.setdefault(key.tenant, []).append(index)
        calls: list[_Call] = []
        for tenant, indexes in by_tenant.items():
            config, idx = tenant_keys(self.prefix, tenant)
            keys = [config, idx]
            args = self._args(now)
            for index in indexes:
                key, n = requests[index]
                keys.append(redis_keys(self.prefix, key).bucket)
                args += [key.host, str(n), "1" if whole is not None and whole[index] else "0"]
            calls.append((script("bucket_acquire"), keys, args))
        replies = await self._run(calls)
        grants: list[Grant | None] = [None] * len(requests)
        for indexes, reply in zip(by_tenant.values(), replies, strict=True):
            for index, row in zip(indexes, reply, strict=True):
                key, n = requests[index]
                # "granted retry_after remaining rate deny_reason" (deny_reason may be empty).
                granted, retry_after, remaining, rate, deny = _text(row).split(" ", 4)
                grants[index] = Grant(
                    key=key,
                    requested=n,
                    granted=int(granted),
                    retry_after_s=max(0.0, float(retry_after)),
                    remaining=float(remaining),
                    deny_reason=cast(DenyReason, deny),
                    refill_per_s=float(rate),
                )
        return [grant for grant in grants if grant is not None]

    async def throttle(
        self,
        key: BucketKey,
        *,
        retry_after_s: float,
        now: float,
        reason: str,
        jitter_s: float = 0.0,
    ) -> BucketState:
        """Reports an upstream 429 (or a 5xx with Retry-After), once per episode: unless the
        bucket is already paused (then the report came from a request sent before the pause
        and changes nothing), learns the rate from the goodput that preceded it, pauses the
        bucket until ``now + retry_after_s + jitter_s`` and empties it (see
        :class:`AdaptivePolicy`).

        Returns:
            The bucket's state after the change.

        Raises:
            InvalidBucketArgument: bad key, negative seconds or bad ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_key(key)
        _check_seconds("retry_after_s", retry_after_s)
        _check_seconds("jitter_s", jitter_s)
        extra = [_num(retry_after_s), _num(jitter_s), str(reason)]
        return await self._single("bucket_throttle", key, now, extra)

    async def record_results(
        self, key: BucketKey, *, successes: int, failures: int, now: float
    ) -> BucketState:
        """Reports call outcomes: successes count toward the goodput and probe the rate
        upward while the bucket binds (see :class:`AdaptivePolicy`), and both feed the
        circuit breaker (see
        :class:`CircuitPolicy`).

        Returns:
            The bucket's state after the change.

        Raises:
            InvalidBucketArgument: bad key, negative counts or bad ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_key(key)
        _check_count("successes", successes)
        _check_count("failures", failures)
        return await self._single("bucket_record", key, now, [str(successes), str(failures)])

    async def override(
        self,
        key: BucketKey,
        *,
        refill_per_s: float | None,
        until: float | None,
        reason: str,
        now: float,
    ) -> BucketState:
        """Sets (or, with ``refill_per_s=None``, clears) an operator override of the bucket's
        refill rate. While it lasts the rate is exactly ``refill_per_s`` (adaptive changes
        continue underneath); rate 0 stops the bucket (deny reason ``"paused"``).
        ``until=None`` lasts until cleared. Overrides are kept with the configs and never
        expire with an idle bucket.

        Returns:
            The bucket's state after the change.

        Raises:
            InvalidBucketArgument: bad key, negative rate, ``until <= now`` or bad ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_key(key)
        _check_now(now)
        if refill_per_s is None:
            extra = ["", "", ""]
        else:
            _check_seconds("refill_per_s", refill_per_s)
            if until is not None:
                _check_now(until)
                if until <= now:
                    raise InvalidBucketArgument("until", "must be later than now")
            extra = [_num(refill_per_s), "" if until is None else _num(until), str(reason)]
        return await self._single("bucket_override", key, now, extra)

    async def state(self, key: BucketKey, *, now: float) -> BucketState:
        """The bucket as of ``now`` (read only; an unknown bucket reads as new and full).

        Raises:
            InvalidBucketArgument: bad key or ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_key(key)
        return await self._single("bucket_state", key, now, [])

    async def list_states(self, tenant: str, *, now: float) -> list[BucketState]:
        """Every bucket of a tenant that is live (not expired) or has a config or override,
        sorted by host (the default bucket ``""`` first). Prunes index entries of expired
        buckets.

        Raises:
            InvalidBucketArgument: bad tenant or ``now``.
            RedisUnavailable: Redis cannot be reached.
        """
        _check_now(now)
        probe = BucketKey(tenant)
        config, index = tenant_keys(self.prefix, probe.tenant)
        members, fields = await self._plain(("SMEMBERS", index), ("HKEYS", config))
        configured = {
            name.split(":", 1)[1] for name in map(_text, fields) if name.startswith(("cap:", "or:"))
        }
        hosts = sorted({_text(m) for m in members} | configured)
        keys = [BucketKey(tenant, host) for host in hosts]
        replies = await self._run([self._call("bucket_state", key, now, []) for key in keys])
        states: list[BucketState] = []
        stale: list[str] = []
        for key, reply in zip(keys, replies, strict=True):
            if _text(reply[8]) == "1" or key.host in configured:
                states.append(self._state(key, reply))
            else:
                stale.append(key.host)
        if stale:
            prune_keys = [config, index] + [
                redis_keys(self.prefix, BucketKey(tenant, host)).bucket for host in stale
            ]
            await self._run([(script("bucket_index_prune"), prune_keys, self._args(now) + stale)])
        return states

    async def purge_tenant(self, tenant: str) -> int:
        """Deletes every key of a tenant: buckets, configs, overrides and index.

        Returns:
            How many Redis keys were deleted.

        Raises:
            InvalidBucketArgument: bad tenant.
            RedisUnavailable: Redis cannot be reached.
        """
        probe = BucketKey(tenant)
        config, index = tenant_keys(self.prefix, probe.tenant)
        members, fields = await self._plain(("SMEMBERS", index), ("HKEYS", config))
        hosts = {_text(m) for m in members} | {
            _text(f).split(":", 1)[1] for f in fields if ":" in _text(f)
        }
        names = [config, index] + [
            redis_keys(self.prefix, BucketKey(tenant, host)).bucket for host in hosts
        ]
        (deleted,) = await self._plain(("DEL", *names))
        return int(deleted)

    async def ping(self) -> bool:
        """Whether Redis answers a PING (never raises)."""
        try:
            return bool(await self._redis.ping())
        except (*_UNAVAILABLE, redis.exceptions.RedisError):
            return False

    # -- plumbing ------------------------------------------------------------------------

    def _args(self, now: float) -> list[str]:
        return [_num(now), *self._policy_args]

    def _call(self, name: str, key: BucketKey, now: float, extra: list[str]) -> _Call:
        keys = redis_keys(self.prefix, key)
        args = [*self._args(now), key.host, *extra]
        return script(name), [keys.config, keys.index, keys.bucket], args

    async def _single(self, name: str, key: BucketKey, now: float, extra: list[str]) -> BucketState:
        _check_now(now)
        (reply,) = await self._run([self._call(name, key, now, extra)])
        return self._state(key, reply)

    @staticmethod
    def _state(key: BucketKey, reply: Sequence[Any]) -> BucketState:
        paused_until = _text(reply[4])
        return BucketState(
            key=key,
            capacity=float(_text(reply[0])),
            refill_per_s=float(_text(reply[1])),
            effective_refill_per_s=float(_text(reply[2])),
            tokens=float(_text(reply[3])),
            paused_until=float(paused_until) if paused_until else None,
            reason=_text(reply[5]),
            circuit=cast(CircuitState, _text(reply[6])),
            updated_at=float(_text(reply[7])),
            changed=len(reply) < 10 or _text(reply[9]) == "1",
        )

    async def _plain(self, *commands: tuple[Any, ...]) -> list[Any]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())
        except _UNAVAILABLE as exc:
            raise RedisUnavailable(f"Redis is unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise OrchestratorRedisError(f"Redis command failed: {exc}") from exc

    async def _run(self, calls: list[_Call]) -> list[Any]:
        """Runs script calls as one pipeline (one round trip) and returns their replies.

        The first run also sends SCRIPT LOAD of every script in the same pipeline; after a
        NOSCRIPT (Redis restarted or flushed its script cache) the missing scripts are
        loaded and the failed calls retried once.
        """
        if not calls:
            return []
        try:
            replies = await self._pipeline(calls, load=not self._loaded)
            self._loaded = True
            missing = [
                i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)
            ]
            if missing:
                retried = await self._pipeline([calls[i] for i in missing], load=True)
                for i, reply in zip(missing, retried, strict=True):
                    replies[i] = reply
        except _UNAVAILABLE as exc:
            raise RedisUnavailable(f"Redis is unreachable: {exc}") from exc
        except redis.exceptions.RedisError as exc:
            raise OrchestratorRedisError(f"loading bucket scripts failed: {exc}") from exc
        for reply in replies:
            if isinstance(reply, _UNAVAILABLE):
                raise RedisUnavailable(f"Redis is unreachable: {reply}") from reply
            if isinstance(reply, Exception):
                raise OrchestratorRedisError(f"bucket script failed: {reply}") from reply
        return replies

    async def _pipeline(self, calls: list[_Call], *, load: bool) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            preloaded = 0
            if load:
                for lua in scripts().values():
                    pipe.execute_command("SCRIPT", "LOAD", lua.source)
                    preloaded += 1
            for lua, keys, args in calls:
                pipe.evalsha(lua.sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies[:preloaded]:
            if isinstance(reply, Exception):
                raise reply
        return list(replies[preloaded:])
