"""Fault cycles against real servers: recovery times and messages lost while every part was up.

    .venv/bin/python bench/chaos.py --cycles 100 [--chains inditoredis,driverstoredis] [--rate 2000]

For each chain (see ``tests/support/chains.py``: each bridge its own process, a
stand-in driver streaming numbered setNumberVector messages at ``--rate`` per
second) it kills a part with SIGKILL and restarts it, ``--cycles`` times round
robin over the chain's parts (redis-server, mosquitto, indiserver, one driver),
and prints per chain and part the recovery time (from the part accepting
connections again to fresh messages arriving end to end) as p50 / p99 / max,
and the message account: lost while every part was up (must be 0), and the
messages missing across outages, detected and repaired: what the bridges
reported (dropped while a part was down, lost on MQTT as their sequence numbers
showed) and after how many faults the Redis store was whole again.  Messages a
killed part held (indiserver's or a driver's buffers) die with it, before any
bridge saw them: they are the "not reported" rest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchbridge import percentile  # noqa: E402

from indiredis import bridges  # noqa: E402
from tests.support.accounting import account  # noqa: E402
from tests.support.chains import CHAINS, NEEDS, build_chain, cycle_parts  # noqa: E402
from tests.support.servers import wait_for  # noqa: E402


def run_chain(name: str, cycles: int, rate: float, settle: float) -> bool:
    """Run the cycles on one chain and print its figures; True when nothing was lost while up."""
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as workdir:
        chain = build_chain(name, Path(workdir), rate)
        problems: list[str] = []
        repaired = 0
        try:
            for index, part in enumerate(cycle_parts(chain, cycles), 1):
                time.sleep(settle)  # let the stream run steadily between faults
                chain.fault(part)
                if not chain.bridges_alive():
                    problems.append(f"cycle {index}: a bridge exited after {part} was killed")
                    break
                try:
                    wait_for(lambda: not chain.store_problem(), timeout=15, what="store whole")
                    repaired += 1
                except TimeoutError:
                    problems.append(f"cycle {index} ({part}): store not whole: {chain.store_problem()}")
            time.sleep(settle)
            result = account(chain.watcher.snapshot(), chain.outage_windows())  # type: ignore[union-attr]
            dropped = sum(bridge.dropped() for bridge in chain.bridges)
            lost = sum(bridge.lost() for bridge in chain.bridges)
        finally:
            chain.stop()
    print(f"\n== {name}: {len(chain.faults)} fault cycles at {rate:.0f} msg/s")
    by_part: dict[str, list[float]] = {}
    for fault in chain.faults:
        by_part.setdefault(fault.part, []).append(fault.recovery_seconds)
    every = [seconds for values in by_part.values() for seconds in values]
    for part, values in sorted(by_part.items()) + [("all", every)]:
        if values:
            print(
                f"  recovery {part:<10} n={len(values):<4} p50={statistics.median(values):.3f} s  "
                f"p99={percentile(values, 0.99):.3f} s  max={max(values):.3f} s"
            )
    print(f"  messages received {result.received}, runs of the driver {result.runs}")
    print(
        f"  lost while every part was up: {result.lost_while_up}   reordered: {result.reordered}   "
        f"duplicates: {result.duplicates}"
    )
    reported = dropped + lost
    print(
        f"  detected and repaired: {result.outage_gap} messages missing across outages; the bridges "
        f"reported {reported} (dropped while a part was down {dropped}, lost on MQTT {lost}), not "
        f"reported {max(0, result.outage_gap - reported)}; store whole again after {repaired} of "
        f"{len(chain.faults)} faults"
    )
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    return result.lost_while_up == 0 and result.reordered == 0 and not problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=100, help="fault cycles per chain (default 100)")
    parser.add_argument("--chains", default=",".join(CHAINS), help="comma-separated chain names")
    parser.add_argument("--rate", type=float, default=2000, help="stand-in driver messages per second")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of steady flow between faults")
    args = parser.parse_args()
    ok = True
    for name in args.chains.split(","):
        missing = [factory for factory in NEEDS[name] if not hasattr(bridges, factory)]
        if missing:
            print(f"\n== {name}: skipped, not built: {missing}")
            continue
        ok &= run_chain(name, args.cycles, args.rate, args.settle)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
