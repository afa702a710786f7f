#!/usr/bin/env python3
"""Benchmark: the time of a failed web login, for a known user with a wrong password and for an unknown
user name (which costs the same scrypt, against a dummy hash).

    .venv/bin/python bench/web_login.py [--logins 40]

Runs the web client's WSGI app against a real redis-server on a free loopback port and times POST /login
answers (p50 and p90, milliseconds).  The reference, measured in the same run: an unknown name answered
without the scrypt, as the web client did before (its answer came sooner, telling which names exist).
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchbridge import percentile  # noqa: E402

import indiredis  # noqa: E402
from indiredis.indiwsgi import access as access_module  # noqa: E402
from indiredis.indiwsgi import make_wsgi_app  # noqa: E402
from indiredis.indiwsgi.auth import LoginLimiter, User, hash_password  # noqa: E402
from tests.support.servers import RedisProcess  # noqa: E402


def login_ms(app: Callable[..., object], name: str, password: str, address: str) -> float:
    """The time of one POST /login, in milliseconds."""
    body = urlencode({"user": name, "password": password}).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/login",
        "REQUEST_URI": "/login",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": address,
        "wsgi.input": io.BytesIO(body),
    }
    start = time.perf_counter()
    b"".join(app(environ, lambda status, headers: None))  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=40, help="logins timed per case")
    args = parser.parse_args()
    logging.getLogger("indiredis").setLevel(logging.ERROR)  # one warning per failed login otherwise
    with RedisProcess() as redis_proc:
        users = {"olga": User("olga", "operator", hash_password("a long enough password"))}
        app = make_wsgi_app(indiredis.redis_server(host="127.0.0.1", port=redis_proc.port), users=users)
        app.access.limiter = LoginLimiter(limit=10**9)  # the bench counts times, not refusals
        try:
            cases: dict[str, list[float]] = {"wrong password": [], "unknown name": [], "unknown, before": []}
            real_check = access_module.check_login
            for number in range(args.logins):  # interleaved, so that a busy machine slows every case alike
                address = f"192.0.2.{number % 250}"
                cases["wrong password"].append(login_ms(app, "olga", f"wrong{number}", address))
                cases["unknown name"].append(login_ms(app, f"nobody{number}", "wrong", address))
                access_module.check_login = lambda users, name, password: None  # the old path: no scrypt
                try:
                    cases["unknown, before"].append(login_ms(app, f"nobody{number}", "wrong", address))
                finally:
                    access_module.check_login = real_check
        finally:
            app.close()
    print(f"failed web logins, {args.logins} each, ms (p50 / p90):")
    for case, times in cases.items():
        print(f"  {case:<16} {percentile(times, 0.5):7.1f} / {percentile(times, 0.9):7.1f}")
    print("(reference: 'unknown, before' is an unknown name answered without scrypt, as before this change)")


if __name__ == "__main__":
    main()
