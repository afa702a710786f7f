"""``python3 -m indiredis path/to/blobfolder``: inditoredis plus the web client on http://localhost:8000/.

Runs the inditoredis bridge (indiserver -> Redis, received BLOBs written to the
blob folder, which is created if missing) in a background thread and serves
the web client with waitress in the foreground.  The original package's option
names (-p, --ihost, --iport, --rhost, --rport, --prefix, --toindipub,
--fromindipub) are accepted too.  There is no login here: for anything beyond
a single trusted machine run the indiredis-web service (see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
from pathlib import Path

from . import __version__, bridges
from .hosts import indi_server, redis_server
from .indiwsgi import make_server, make_wsgi_app, warn_if_exposed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m indiredis",
        usage="python3 -m indiredis [options] blobfolder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("blobfolder", help="folder for received BLOBs (created if missing)")
    parser.add_argument("-p", "--port", type=int, default=8000, help="web port (default 8000)")
    parser.add_argument(
        "--host", default="localhost", help="web address to listen on (default localhost only)"
    )
    parser.add_argument("--url", default="/", help="path the web client answers under (default /)")
    parser.add_argument(
        "--indi-host", "--ihost", default="localhost", help="indiserver host (default localhost)"
    )
    parser.add_argument(
        "--indi-port", "--iport", type=int, default=7624, help="indiserver port (default 7624)"
    )
    parser.add_argument("--redis-host", "--rhost", default="localhost", help="Redis host (default localhost)")
    parser.add_argument("--redis-port", "--rport", type=int, default=6379, help="Redis port (default 6379)")
    parser.add_argument("--redis-db", type=int, default=0, help="Redis database number (default 0)")
    parser.add_argument("--keyprefix", "--prefix", default="indi_", help="Redis key prefix (default indi_)")
    parser.add_argument(
        "--to-indi-channel",
        "--toindipub",
        default="to_indi",
        help="Redis channel clients publish INDI requests on (default to_indi)",
    )
    parser.add_argument(
        "--from-indi-channel",
        "--fromindipub",
        default="from_indi",
        help="Redis channel INDI traffic is published on (default from_indi)",
    )
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``-h`` lists it), with ``indi`` and ``redis`` hosts made from it."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.indi = indi_server(args.indi_host, args.indi_port)
        args.redis = redis_server(
            args.redis_host,
            args.redis_port,
            args.redis_db,
            keyprefix=args.keyprefix,
            to_indi_channel=args.to_indi_channel,
            from_indi_channel=args.from_indi_channel,
        )
        Path(args.blobfolder).mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> None:
    """Run inditoredis in a thread and serve the web client until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import waitress  # noqa: F401 - checked here, used by make_server
    except ImportError:
        sys.exit("the web client needs waitress: pip install 'indiredis[web]' (Debian: python3-waitress)")
    bridge = bridges.make_inditoredis(args.indi, args.redis, blob_folder=args.blobfolder)
    threading.Thread(target=lambda: asyncio.run(bridge.run()), name="inditoredis", daemon=True).start()
    app = make_wsgi_app(args.redis, args.blobfolder, url=args.url)
    warn_if_exposed(args.host, logins=False)
    server = make_server(app, host=args.host, port=args.port)
    print(f"web client on http://{args.host}:{args.port}{app.root({})}/", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
