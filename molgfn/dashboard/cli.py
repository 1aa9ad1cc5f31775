"""``molgfn app``: serve the Streamlit dashboard (``app/Home.py``) on this machine.

It runs ``python -m streamlit run app/Home.py`` with the server bound to ``--host`` (default 127.0.0.1:
only this machine can connect; ``--host 0.0.0.0`` serves every network interface — there is no login, so
do that only on a trusted network) and passes the dashboard settings as environment variables
(``MOLGFN_RUNS_DIR``, ``MOLGFN_MAX_CONCURRENT``, ``MOLGFN_MAX_UPLOAD_MB``). ``streamlit run app/Home.py``
works too and reads the same variables (defaults: runs/, 2 concurrent runs, 50 MB uploads).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from molgfn.dashboard.settings import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_UPLOAD_MB,
    ENV_MAX_CONCURRENT,
    ENV_MAX_UPLOAD_MB,
    ENV_RUNS_DIR,
)
from molgfn.errors import MolgfnError
from molgfn.resources import APP_DIR  # noqa: E402 - the pages, shipped as package resources

HOME = APP_DIR / "Home.py"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="open the dashboard (Streamlit) in a browser",
        description="Serve the molgfn dashboard: train, monitor, browse and export molecules. Listens on "
        "127.0.0.1 (this machine only) unless --host says otherwise; --host 0.0.0.0 serves other machines "
        "(no login: trusted networks only). Trainings started from it run as separate processes and go on "
        "if the dashboard stops.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name the browser may use (a reverse proxy's, say); repeatable. By default "
        "only the --host address (and localhost) is accepted",
    )
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="folder of the runs (default: runs)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=DEFAULT_MAX_CONCURRENT,
        help=f"runs training at once; more are queued (default {DEFAULT_MAX_CONCURRENT})",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest uploaded assay table in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    p.set_defaults(func=_run)


def allowed_hosts(host: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Host names a browser may use to reach the dashboard (Streamlit's ``server.allowedHosts``: a page
    reached under any other name gets no session, which stops DNS rebinding). Bound to a loopback
    address: localhost and the loopback addresses; bound to another address: that address, and for
    0.0.0.0 / :: this machine's names and addresses; plus ``extra`` (e.g. a reverse proxy's name)."""
    import socket

    names = {"localhost", "127.0.0.1", "::1"}
    if host in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname(), socket.getfqdn()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    else:
        names.add(host)
    names |= {h for h in extra if h}
    return sorted(n.strip("[]") for n in names)


def app_command(
    host: str, port: int, max_upload_mb: float, extra_hosts: list[str] | tuple[str, ...] = ()
) -> list[str]:
    """The argv of the Streamlit server (a list: never passed through a shell)."""
    hosts = [arg for name in allowed_hosts(host, extra_hosts) for arg in ("--server.allowedHosts", name)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(HOME),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(max(1, int(-(-max_upload_mb // 1)))),  # Streamlit takes whole MB; our own check is exact
        *hosts,
    ]


def app_environment(runs_dir: Path, max_concurrent: int, max_upload_mb: float) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_RUNS_DIR] = str(Path(runs_dir).expanduser().resolve())
    env[ENV_MAX_CONCURRENT] = str(max_concurrent)
    env[ENV_MAX_UPLOAD_MB] = repr(float(max_upload_mb))
    return env


def _run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise MolgfnError(f"--port: must be 1..65535 (got {args.port})")
    if args.max_concurrent < 1:
        raise MolgfnError(f"--max-concurrent: must be >= 1 (got {args.max_concurrent})")
    if not args.max_upload_mb > 0:
        raise MolgfnError(f"--max-upload-mb: must be > 0 (got {args.max_upload_mb})")
    argv = app_command(args.host, args.port, args.max_upload_mb, args.allow_host)
    env = app_environment(args.runs_dir, args.max_concurrent, args.max_upload_mb)
    print(
        f"molgfn dashboard: http://{args.host}:{args.port}  (runs: {env[ENV_RUNS_DIR]}; Ctrl-C stops)",
        flush=True,
    )
    try:
        return subprocess.call(argv, env=env, cwd=str(APP_DIR.parent))  # noqa: S603 - argv list
    except KeyboardInterrupt:
        return 130
