"""``python3 -m indiredis path/to/blobfolder``: inditoredis plus the web client on http://localhost:8000/.

Runs the inditoredis bridge and serves the web client with waitress in the
same process; ``-h`` lists the options (hosts, ports, key prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import threading

from . import bridges
from .hosts import indi_server, redis_server
from .indiwsgi import make_wsgi_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python3 -m indiredis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("blobfolder", help="folder for received BLOBs")
    parser.add_argument("--port", type=int, default=8000, help="web port (default 8000)")
    parser.add_argument("--host", default="localhost", help="web address (default localhost only)")
    parser.add_argument("--indi-host", default="localhost", help="indiserver host (default localhost)")
    parser.add_argument("--indi-port", type=int, default=7624, help="indiserver port (default 7624)")
    parser.add_argument("--redis-host", default="localhost", help="Redis host (default localhost)")
    parser.add_argument("--redis-port", type=int, default=6379, help="Redis port (default 6379)")
    parser.add_argument("--redis-db", type=int, default=0, help="Redis database (default 0)")
    parser.add_argument("--keyprefix", default="indi_", help="Redis key prefix (default indi_)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import waitress

    redis_host = redis_server(args.redis_host, args.redis_port, args.redis_db, keyprefix=args.keyprefix)
    bridge = bridges.make_inditoredis(indi_server(args.indi_host, args.indi_port), redis_host,
                                      blob_folder=args.blobfolder)
    threading.Thread(target=lambda: asyncio.run(bridge.run()), name="inditoredis", daemon=True).start()
    print(f"web client on http://{args.host}:{args.port}/")
    waitress.serve(make_wsgi_app(redis_host, args.blobfolder), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
