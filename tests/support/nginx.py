"""Debian's nginx as a TLS reverse proxy for the tests: one process in the foreground, its configuration,
pid file, logs and temporary folders in a folder of its own, listening on a free loopback port."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.support.servers import ServerProcess, free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # /usr/sbin is not on every user's PATH


class NginxProcess(ServerProcess):
    """nginx serving ``server_block`` (a ``server { … }`` as in a site file), which must listen on
    ``self.port``; ``master_process off`` keeps it one process that never switches user (a test's
    files are its own)."""

    program = "nginx"

    def __init__(self, server_block: str, port: int | None = None) -> None:
        # not ServerProcess.__init__, which looks the program up on $PATH
        if not Path(NGINX).exists():
            raise RuntimeError("nginx is not installed (run `make test`, which installs it)")
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="indiredis-nginx-"))
        self.proc = None
        self.server_block = server_block

    def command(self) -> Sequence[str]:
        folder = self.workdir
        temps = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = folder / "nginx.conf"
        conf.write_text(
            "daemon off;\nmaster_process off;\n"
            f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {folder / 'access.log'};\n{temps}\n"
            f"{self.server_block}\n}}\n"
        )
        return [NGINX, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)]

    def error_log(self) -> str:
        path = Path(self.workdir / "error.log")
        return path.read_text(errors="replace") if path.exists() else ""
