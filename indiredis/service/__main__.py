"""``python3 -m indiredis.service <service> [--config PATH]``: the same as ``indiredis-<service>``."""

from .cli import main

main()
