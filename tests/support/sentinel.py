"""A real Redis Sentinel topology for the tests: a master, a replica and sentinels, all Debian's
``redis-server`` (``redis-server sentinel.conf --sentinel``) on free loopback ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import redis

import indiredis
from indiredis.hosts import RedisServer
from tests.support.servers import RedisProcess, ServerProcess, wait_for

SERVICE = "central"
#: how long a master may be silent before a sentinel deems it down.  Redis's default is 30 s; 1 s here
#: is a setting of the test's topology (so that a failover takes seconds), not of the product: the
#: bridges find the new master through the sentinels whatever this delay is
DOWN_AFTER_MS = 1000


class SentinelProcess(ServerProcess):
    """``redis-server <conf> --sentinel`` watching ``master_port`` as :data:`SERVICE`."""

    program = "redis-server"

    def __init__(self, master_port: int, quorum: int) -> None:
        super().__init__()
        self.conf = self.workdir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )

    def command(self) -> Sequence[str]:
        return ["redis-server", str(self.conf), "--sentinel"]

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True)


def _replication(proc: RedisProcess) -> dict[str, object]:
    with redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=5) as conn:
        return dict(conn.info("replication"))


# a replica's first sync from a master without persistence, at once (no 5 s wait for more replicas)
_SYNC = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]


@dataclass
class Topology:
    """The running master, replica and sentinels, and the ``redis_server`` that names them."""

    master: RedisProcess
    replica: RedisProcess
    sentinels: list[SentinelProcess]

    @property
    def server(self) -> RedisServer:
        return indiredis.redis_server(
            sentinels=tuple(("127.0.0.1", s.port) for s in self.sentinels), service_name=SERVICE
        )

    def master_port(self) -> int:
        """The master's port as the first sentinel alive tells it."""
        for sentinel in self.sentinels:
            if sentinel.proc is not None and sentinel.proc.poll() is None:
                with sentinel.client() as conn:
                    return int(conn.sentinel_get_master_addr_by_name(SERVICE)[1])
        raise RuntimeError("no sentinel is running")


@contextlib.contextmanager
def sentinel_topology(count: int = 3, quorum: int = 2) -> Iterator[Topology]:
    """A master, one replica in sync with it, and ``count`` sentinels that know both and each other."""
    with contextlib.ExitStack() as stack:
        master = stack.enter_context(RedisProcess(extra=_SYNC))
        replica = stack.enter_context(
            RedisProcess(extra=[*_SYNC, "--replicaof", "127.0.0.1", str(master.port)])
        )
        wait_for(lambda: _replication(replica).get("master_link_status") == "up", what="the replica in sync")
        sentinels = [stack.enter_context(SentinelProcess(master.port, quorum)) for _ in range(count)]

        def all_known() -> bool:
            for sentinel in sentinels:
                with sentinel.client() as conn:
                    if (
                        len(conn.sentinel_slaves(SERVICE)) < 1
                        or len(conn.sentinel_sentinels(SERVICE)) < count - 1
                    ):
                        return False
            return True

        wait_for(all_known, timeout=20, what="the sentinels to know the replica and each other")
        yield Topology(master, replica, sentinels)
