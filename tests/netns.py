"""Network namespaces for every Ray test and benchmark (root and iproute2 needed).

Ray registers its nodes on the machine's own network interface even when told 127.0.0.1, so nothing
Ray-related runs in the machine's namespace: :func:`loopback` gives a namespace with only ``lo`` up (an
embedded Ray starts on 127.0.0.1 there), :func:`ray_cluster` two namespaces joined by a veth pair, a Ray
head in the first and a second node in the other, and the driver runs in the head's namespace. Every
process started in them is killed and the namespaces deleted on exit.

Token authentication: every Ray process started here reads one token written to a temporary file
(``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``), so nothing is written to the home folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_COUNTER = itertools.count()
RAY = Path(sys.executable).with_name("ray")


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    name = f"mgprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def ray_unavailable() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'molgfn[ray]')"
    return unavailable()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Namespace:
    name: str
    address: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *map(str, argv)]

    def run(self, argv: Sequence[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, **kwargs.pop("env", {})}
        return subprocess.run(
            self.command(argv), env=env, timeout=timeout, capture_output=True, text=True, **kwargs
        )

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        env = {**os.environ, **self.env, **kwargs.pop("env", {})}
        return subprocess.Popen(self.command(argv), env=env, **kwargs)

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def processes(self, pattern: str) -> list[int]:
        """Pids of this namespace's processes whose command line contains ``pattern``."""
        found = []
        for pid in self.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in cmdline:
                found.append(pid)
        return found

    def kill_all(self) -> None:
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)


def _ray_env(folder: Path) -> dict[str, str]:
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_TMPDIR": str(folder),
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    # short: Ray's unix sockets live under it (paths are limited to 107 characters)
    path = Path(tempfile.mkdtemp(prefix="mgray", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def loopback() -> Iterator[Namespace]:
    """A namespace with only ``lo`` up, set up for an embedded Ray (``ray.init()``)."""
    name = f"mglo{os.getpid()}x{next(_COUNTER)}"
    with _folder() as folder:
        _ip("netns", "add", name)
        ns = Namespace(name, env=_ray_env(folder))
        try:
            _ip("-n", name, "link", "set", "lo", "up")
            yield ns
        finally:
            ns.kill_all()
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class Cluster:
    head: Namespace
    workers: list[Namespace]
    port: int

    @property
    def address(self) -> str:
        return f"{self.head.address}:{self.port}"

    @property
    def namespaces(self) -> list[Namespace]:
        return [self.head, *self.workers]


@contextlib.contextmanager
def ray_cluster(
    cpus: int = 1, port: int = 6390, subnet: int = 201, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Two hosts, each a namespace with ``cpus`` Ray CPUs: a head (10.<subnet>.0.1) and a worker node
    (10.<subnet>.0.2) joined by a veth pair. Run the driver in ``cluster.head``. ``env``: extra
    environment of every node's Ray processes (e.g. a PYTHONPATH where a plugin lives)."""
    tag = f"{os.getpid() % 100000}x{next(_COUNTER)}"
    a, b = f"mgA{tag}", f"mgB{tag}"
    va, vb = f"mgva{tag}"[:15], f"mgvb{tag}"[:15]
    ip_a, ip_b = f"10.{subnet}.0.1", f"10.{subnet}.0.2"
    with _folder() as folder:
        env = {**_ray_env(folder), **(env or {})}
        head, worker = Namespace(a, ip_a, env), Namespace(b, ip_b, env)
        made: list[Namespace] = []
        try:
            for ns in (head, worker):
                _ip("netns", "add", ns.name)
                made.append(ns)
                _ip("-n", ns.name, "link", "set", "lo", "up")
            _ip("link", "add", va, "type", "veth", "peer", "name", vb)
            _ip("link", "set", va, "netns", a)
            _ip("link", "set", vb, "netns", b)
            _ip("-n", a, "addr", "add", f"{ip_a}/24", "dev", va)
            _ip("-n", b, "addr", "add", f"{ip_b}/24", "dev", vb)
            _ip("-n", a, "link", "set", va, "up")
            _ip("-n", b, "link", "set", vb, "up")
            common = ["--num-cpus", str(cpus), "--disable-usage-stats"]
            started = head.run(
                [RAY, "start", "--head", "--node-ip-address", ip_a, "--port", port,
                 "--include-dashboard", "false", "--temp-dir", folder, *common],
                timeout=120,
            )  # fmt: skip
            if started.returncode != 0:
                raise RuntimeError(f"ray start --head failed:\n{started.stdout}\n{started.stderr}")
            joined = worker.run(
                [RAY, "start", "--address", f"{ip_a}:{port}", "--node-ip-address", ip_b, *common],
                timeout=120,
            )
            if joined.returncode != 0:
                raise RuntimeError(f"ray start --address failed:\n{joined.stdout}\n{joined.stderr}")
            yield Cluster(head, [worker], port)
        finally:
            for ns in reversed(made):
                ns.kill_all()
            for ns in made:
                subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
