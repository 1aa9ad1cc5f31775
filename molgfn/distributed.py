"""Ray: a pool of long-lived actors that score pieces of work on every core of a machine or a cluster.

Ray (https://docs.ray.io) is an extra (``pip install 'molgfn[ray]'``); nothing here imports it until a
pool is built. :class:`ActorPool` starts one actor per CPU (or as many as asked); each actor builds its
scoring function once (the proxy, the plugins, the receptor maps stay loaded) and then scores one piece
at a time. Pieces are handed out as actors finish, so a fast node takes more of them (load balancing),
and results come back in the order the pieces were given, so where a piece ran never changes a result.

Faults: a piece whose actor dies (its process killed, its node gone) is given to another actor and a
replacement actor is started; each piece's result is taken exactly once. When no actor can be reached
any more (the whole cluster gone), :class:`BackendLost` is raised; the trainer checkpoints and stops on
it. An expensive oracle's cache (:mod:`molgfn.reward.cache`) keeps what a dead actor paid for.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from molgfn.errors import MolgfnError

BACKENDS = ("local", "ray")
INSTALL_HINT = "pip install 'molgfn[ray]'"
# seconds without a single live actor before the cluster counts as gone
LOST_AFTER = 60.0
# seconds the head (its GCS port) may refuse connections before the cluster counts as gone; Ray itself
# ends a driver whose GCS stays away for RAY_gcs_rpc_server_reconnect_timeout_s (60 s by default), which
# connect() raises so that the trainer gets to checkpoint first
HEAD_LOST_AFTER = 15.0
DRIVER_GCS_TIMEOUT_S = "600"


class BackendLost(MolgfnError):
    """The Ray cluster went away while work was in flight (no actor reachable)."""


def require_ray(field: str = "run.backend") -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MolgfnError(f"{field}: 'ray' needs Ray, which is not installed ({INSTALL_HINT})") from exc
    return ray


def check_address(address: str, field: str = "run.ray_address", timeout: float = 3.0) -> None:
    """Fail early, in one line, when a ``HOST:PORT`` address does not answer ('' and 'auto' pass)."""
    if address in ("", "auto"):
        return
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        raise MolgfnError(
            f"{field}: Ray Client addresses (ray://) are not supported; use HOST:PORT of the head"
        )
    if not sep or not host or not port.isdigit():
        raise MolgfnError(f"{field}: expected '', 'auto' or HOST:PORT of a Ray head (got {address!r})")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise MolgfnError(
            f"{field}: cannot reach the Ray head at {address} ({exc.strerror or exc}); "
            "is `ray start --head` running there?"
        ) from exc


def connect(address: str = "", field: str = "run.ray_address") -> Any:
    """Join the Ray cluster at ``address`` (``'auto'``: the one started on this machine) or, with ``''``,
    start an embedded Ray sized to this machine. Returns the ``ray`` module; idempotent."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    check_address(address, field)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", DRIVER_GCS_TIMEOUT_S)
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True
    )
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "an embedded Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MolgfnError(f"{field}: cannot start or join {where}: {first}") from exc
    return ray


def own_token() -> str:
    """This actor's name as a claim owner (the oracle cache): 'ray:<actor id>'."""
    import ray

    return "ray:" + ray.get_runtime_context().get_actor_id()


def _token(handle: Any) -> str:
    return "ray:" + handle._actor_id.hex()


def cluster_cpus() -> int:
    """CPUs of the connected cluster (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _Worker:
    """One actor: builds its function once, then runs it on pieces (returned with where they ran)."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]], cwd: str) -> None:
        import ray

        if os.path.isdir(cwd):  # relative paths of the config mean the same as in the driver
            os.chdir(cwd)
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        self.fn = make()
        self.node = ray.util.get_node_ip_address()

    def where(self) -> tuple[str, int]:
        return self.node, os.getpid()

    def run(self, piece: Any) -> tuple[str, int, Any]:
        return self.node, os.getpid(), self.fn(piece)


class ActorPool:
    """``actors`` Ray actors (default: one per CPU of the cluster) running ``make()``'s function on pieces.

    :meth:`submit` queues pieces and returns their tickets; :meth:`results` waits for tickets, in
    order. ``nodes`` counts the items each node computed (``weights`` of the pieces, 1 each by default);
    ``on_progress(done, in_flight)`` is called as pieces finish; ``on_lost(token)`` when an actor died."""

    def __init__(
        self,
        make: Callable[[], Callable[[Any], Any]],
        actors: int = 0,
        address: str = "",
        depth: int = 2,
        on_progress: Callable[[int, int], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        ray = connect(address)
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Worker)
        self._make, self._cwd = make, os.getcwd()
        self.size = actors if actors > 0 else cluster_cpus()
        self.depth = depth  # pieces queued on an actor at once: one running, the next ready
        self.on_progress = on_progress
        self.on_lost = on_lost  # called with a dead actor's token (:func:`own_token`) before its pieces go on
        self.nodes: collections.Counter[str] = collections.Counter()
        self.retried = 0  # pieces given to another actor after theirs died
        self.done = 0
        self._actors: dict[int, Any] = {}
        self._load: dict[int, int] = {}
        self._next_actor = 0
        for _ in range(self.size):
            self._start_actor()
        self._queue: collections.deque[int] = collections.deque()
        self._pieces: dict[int, tuple[Any, int]] = {}
        self._results: dict[int, Any] = {}
        self._inflight: dict[Any, tuple[int, int]] = {}  # ref -> (ticket, actor id)
        self._ticket = 0
        self._last_alive = time.monotonic()
        self._gcs = ray.get_runtime_context().gcs_address
        self._head_down_since: float | None = None

    # ------------------------------------------------------------------------------------------ actors
    def _start_actor(self) -> None:
        self._actors[self._next_actor] = self._remote.remote(self._make, self._cwd)
        self._load[self._next_actor] = 0
        self._next_actor += 1

    def _replace(self, actor: int) -> None:
        handle = self._actors.pop(actor, None)
        self._load.pop(actor, None)
        if handle is not None:
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:  # already gone
                pass
            if self.on_lost is not None:
                self.on_lost(_token(handle))
            self._start_actor()

    def where(self, timeout: float = 120.0) -> list[tuple[str, int]]:
        """(node address, pid) of every actor, once they are up."""
        refs = [a.where.remote() for a in self._actors.values()]
        return self._ray.get(refs, timeout=timeout)

    # ------------------------------------------------------------------------------------------- work
    def submit(self, pieces: Sequence[Any], weights: Sequence[int] | None = None) -> list[int]:
        tickets = []
        for k, piece in enumerate(pieces):
            self._ticket += 1
            self._pieces[self._ticket] = (piece, int(weights[k]) if weights is not None else 1)
            self._queue.append(self._ticket)
            tickets.append(self._ticket)
        self._dispatch()
        return tickets

    def map(self, pieces: Sequence[Any], weights: Sequence[int] | None = None) -> list[Any]:
        return self.results(self.submit(pieces, weights))

    def _dispatch(self) -> None:
        while self._queue:
            free = [a for a, n in self._load.items() if n < self.depth]
            if not free:
                return
            actor = min(free, key=lambda a: (self._load[a], a))
            ticket = self._queue.popleft()
            ref = self._actors[actor].run.remote(self._pieces[ticket][0])
            self._inflight[ref] = (ticket, actor)
            self._load[actor] += 1

    @property
    def in_flight(self) -> int:
        return len(self._inflight) + len(self._queue)

    def results(self, tickets: Sequence[int]) -> list[Any]:
        """The results of ``tickets``, in order, each taken exactly once."""
        from ray.exceptions import GetTimeoutError, RayActorError, RaySystemError, RayTaskError

        wanted = set(tickets)
        try:
            while not wanted.issubset(self._results):
                if not self._inflight:
                    self._dispatch()
                ready, _ = self._ray.wait(list(self._inflight), num_returns=1, timeout=5.0)
                if not ready:
                    self._check_alive()
                    continue
                for ref in ready:
                    ticket, actor = self._inflight.pop(ref)
                    try:
                        node, _, value = self._ray.get(ref)
                    except RayActorError:  # its process or node died: the piece goes to another actor
                        self._queue.appendleft(ticket)
                        self.retried += 1
                        self._replace(actor)
                        continue
                    except RayTaskError as exc:  # the scoring function raised: the caller's error
                        raise exc.as_instanceof_cause() from None
                    self._load[actor] -= 1
                    self._last_alive = time.monotonic()
                    weight = self._pieces.pop(ticket)[1]
                    self._results[ticket] = value
                    self.nodes[node] += weight
                    self.done += weight
                self._dispatch()
                if self.on_progress is not None:
                    self.on_progress(self.done, self.in_flight)
        except (RaySystemError, GetTimeoutError, ConnectionError) as exc:
            raise BackendLost(f"the Ray cluster is gone ({type(exc).__name__}: {exc})") from exc
        return [self._results.pop(t) for t in tickets]

    def _check_alive(self) -> None:
        """Raise :class:`BackendLost` when the head has refused connections for ``HEAD_LOST_AFTER`` s, or
        after ``LOST_AFTER`` s with no live node (work waits forever else)."""
        host, _, port = (self._gcs or "").rpartition(":")
        if host and port.isdigit():
            try:
                with socket.create_connection((host, int(port)), timeout=2.0):
                    self._head_down_since = None
            except OSError:
                now = time.monotonic()
                self._head_down_since = self._head_down_since or now
                if now - self._head_down_since > HEAD_LOST_AFTER:
                    raise BackendLost(
                        f"the Ray head at {self._gcs} has not answered for {HEAD_LOST_AFTER:.0f} s"
                    ) from None
                return
        try:
            alive = [n for n in self._ray.nodes() if n.get("Alive")]
        except Exception as exc:  # the head (GCS) does not answer
            raise BackendLost(f"the Ray cluster is gone ({type(exc).__name__}: {exc})") from exc
        if alive:
            self._last_alive = time.monotonic()
        elif time.monotonic() - self._last_alive > LOST_AFTER:
            raise BackendLost(f"no Ray node has been alive for {LOST_AFTER:.0f} s")

    def summary(self) -> str:
        """'ADDRESS ×N, ...': the items each node computed so far."""
        return ", ".join(f"{node} ×{n}" for node, n in sorted(self.nodes.items())) or "nothing yet"

    def close(self) -> None:
        for handle in self._actors.values():
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:
                pass
        self._actors.clear()
        self._load.clear()
        self._inflight.clear()
