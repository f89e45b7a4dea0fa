"""Redis connections from a URL: `redis://`, `rediss://`, `unix://` and `redis+embedded://PATH`
(an embedded server, see `releasectl.clients.redis_embedded`), for a single server or a
Redis Cluster.

`Endpoint` hands out clients and `Shards` (the primaries a keyspace lives on). Clients can
carry a `Deadline`: every command sent through them first checks it and bounds the socket
timeout by the time left, so neither a slow server nor a migration.py loop outlives it.
Connection errors name the endpoint with its password redacted.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from releasectl.errors import TargetError
from releasectl.secrets import redact, register_url

if TYPE_CHECKING:
    import redis
    from redis.connection import AbstractConnection

    from releasectl.clients.redis_embedded import EmbeddedServer
    from releasectl.util.deadline import Deadline

EMBEDDED_SCHEME = "redis+embedded://"
SCHEMES = ("redis://", "rediss://", "unix://", EMBEDDED_SCHEME)
CONNECT_TIMEOUT = 10.0


def check_url(url: str) -> None:
    if not url.startswith(SCHEMES):
        raise TargetError(
            f"unsupported Redis URL {redact(url)!r}: use redis://, rediss://, unix:// or "
            "redis+embedded://PATH"
        )


def embedded_path(url: str, root: Path) -> Path:
    raw = url[len(EMBEDDED_SCHEME) :].split("?", 1)[0]
    if not raw:
        raise TargetError("redis+embedded:// needs a path to the data file")
    path = Path(raw)
    return path if path.is_absolute() else root / path


class Endpoint:
    """Where a Redis lives, and the clients that talk to it. `close()` releases everything."""

    def __init__(self, url: str, root: Path, *, name: str, cluster: bool = False) -> None:
        register_url(url)
        check_url(url)
        if cluster and url.startswith((EMBEDDED_SCHEME, "unix://")):
            raise TargetError(f"{name}: a Redis Cluster needs a redis:// or rediss:// URL")
        self.url = url
        self.root = root
        self.name = name  # for messages: "redis target 'redis' (redis://:***@host)"
        self.display = redact(url)
        self.cluster = cluster
        self._embedded: EmbeddedServer | None = None
        self._clients: dict[bool, redis.Redis] = {}
        self._shards: dict[bool, Shards] = {}

    def describe(self) -> str:
        return f"{self.name} ({self.display})"

    def error(self, what: str, exc: BaseException) -> TargetError:
        detail = str(exc).replace(self.url, self.display) or type(exc).__name__
        return TargetError(f"{self.describe()}: {what}: {detail}")

    def _pool(self, decode: bool) -> redis.ConnectionPool:
        import redis
        from redis.connection import UnixDomainSocketConnection

        if not self.url.startswith(EMBEDDED_SCHEME):
            try:
                return redis.ConnectionPool.from_url(
                    self.url, decode_responses=decode, socket_connect_timeout=CONNECT_TIMEOUT
                )
            except ValueError as exc:
                raise self.error("invalid URL", exc) from None
        if self._embedded is None:
            from releasectl.clients.redis_embedded import EmbeddedServer

            try:
                self._embedded = EmbeddedServer.acquire(embedded_path(self.url, self.root))
            except TargetError:
                raise
            except Exception as exc:
                raise self.error("cannot start the embedded server", exc) from None
        return redis.ConnectionPool(
            connection_class=UnixDomainSocketConnection,
            path=str(self._embedded.socket),
            decode_responses=decode,
            socket_connect_timeout=CONNECT_TIMEOUT,
        )

    def client(self, *, decode: bool = False, deadline: Deadline | None = None) -> redis.Redis:
        """A client; cached unless it carries a deadline (then the caller closes it)."""
        import redis

        if deadline is None and decode in self._clients:
            return self._clients[decode]
        pool = self._pool(decode)
        if deadline is not None:
            # no connection exists yet, so every one the pool makes checks the deadline
            pool.connection_class = deadline_connection(pool.connection_class, deadline)
        client = redis.Redis(connection_pool=pool)
        if deadline is None:
            self._clients[decode] = client
        return client

    def shards(self, *, decode: bool = False, deadline: Deadline | None = None) -> Shards:
        """The keyspace's primaries: the server itself, or every primary of a cluster. Cached
        unless it carries a deadline (then the caller closes it)."""
        if deadline is None and decode in self._shards:
            return self._shards[decode]
        if not self.cluster:
            client = self.client(decode=decode, deadline=deadline)
            shards = Shards(client, [client], None, owned=deadline is not None)
        else:
            shards = self._cluster_shards(decode, deadline)
        if deadline is None:
            self._shards[decode] = shards
        return shards

    def _cluster_shards(self, decode: bool, deadline: Deadline | None) -> Shards:
        import redis
        from redis.cluster import RedisCluster
        from redis.connection import Connection, SSLConnection
        from redis.exceptions import RedisClusterException

        base: type[AbstractConnection] = (
            SSLConnection if self.url.startswith("rediss://") else Connection
        )
        try:
            cluster = RedisCluster.from_url(
                self.url,
                decode_responses=decode,
                socket_connect_timeout=CONNECT_TIMEOUT,
                connection_class=base if deadline is None else deadline_connection(base, deadline),
            )
            primaries: list[Any] = cast(Any, cluster).get_primaries()
            clients = [cluster.get_redis_connection(node) for node in primaries]
        except (redis.RedisError, RedisClusterException) as exc:
            if deadline is not None:
                deadline.check("connecting to the cluster")  # a timeout, not a failure
            raise self.error("cannot connect to the cluster", exc) from None
        # RedisCluster offers the command methods of redis.Redis, routing each by its key
        router = cast("redis.Redis", cluster)
        return Shards(router, clients, cluster, owned=True)

    def ping(self) -> None:
        import redis
        from redis.exceptions import RedisClusterException

        try:
            for client in self.shards().clients:
                client.ping()
        except (redis.RedisError, RedisClusterException) as exc:
            raise self.error("cannot connect", exc) from None

    def close(self) -> None:
        shards, self._shards = self._shards, {}
        for item in shards.values():
            item.close()
        clients, self._clients = self._clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        if self._embedded is not None:
            embedded, self._embedded = self._embedded, None
            embedded.release()


class Shards:
    """Where a keyspace lives: `router` sends each command to its key's node, `clients` holds
    one client per primary (one in all for a single server). Scans and backups walk every
    primary; a key's own commands go to `clients[shard_of(key)]`."""

    def __init__(
        self, router: redis.Redis, clients: list[redis.Redis], cluster: Any, *, owned: bool
    ) -> None:
        self.router = router
        self.clients = clients
        self._cluster = cluster
        self._owned = owned
        self._index: dict[str, int] = {}
        if cluster is not None:
            for index, node in enumerate(cluster.get_primaries()):
                self._index[node.name] = index

    @property
    def single(self) -> bool:
        return self._cluster is None

    def shard_of(self, key: bytes | str) -> int:
        if self._cluster is None:
            return 0
        return self._index[self._cluster.get_node_from_key(key).name]

    def same_slot(self, a: bytes, b: bytes) -> bool:
        if self._cluster is None:
            return True
        return bool(self._cluster.keyslot(a) == self._cluster.keyslot(b))

    def close(self) -> None:
        if self._owned:
            with contextlib.suppress(Exception):
                self.router.close()


# --- deadlines ----------------------------------------------------------------------------


def deadline_connection(
    base: type[AbstractConnection], deadline: Deadline
) -> type[AbstractConnection]:
    """A subclass of `base` whose every command checks `deadline` first."""
    from redis.connection import AbstractConnection

    class _DeadlineMixin(AbstractConnection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            this: Any = self  # redis-py leaves these methods unannotated
            remaining = deadline.remaining()
            if remaining is not None:
                deadline.check("Redis command")
                if this._sock is None:
                    this.connect()
                if this._sock is not None:
                    # bounds the reply too: reads use the socket's timeout
                    this._sock.settimeout(max(remaining, 0.001))
            parent: Any = super()
            parent.send_packed_command(command, check_health)

    return cast(
        "type[AbstractConnection]", type(f"Deadline{base.__name__}", (_DeadlineMixin, base), {})
    )
