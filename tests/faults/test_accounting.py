"""The fault suite's loss accounting (``tests/support/accounting.py``), on made-up arrivals."""

from __future__ import annotations

from tests.support.accounting import IN_FLIGHT_MARGIN, Arrival, account, in_flight_since

RATE = 100.0  # messages per second in these made-up runs


def stream(numbers: range, lag: float, start: float = 0.0) -> list[Arrival]:
    """Messages ``numbers`` of run 1, sent at RATE from ``start``, each arriving ``lag`` seconds later."""
    return [Arrival(1, n, start + n / RATE, start + n / RATE + lag) for n in numbers]


def test_a_chain_that_keeps_up_has_the_fixed_margin_before_a_kill():
    arrivals = stream(range(1, 500), lag=0.01)
    assert in_flight_since(arrivals, 3.0) == 3.0 - IN_FLIGHT_MARGIN


def test_a_lagging_chain_had_everything_after_the_newest_delivered_message_in_flight_at_a_kill():
    # a chain 1.5 s behind (catching up the backlog of a start) when a part is killed at t=3: what was
    # inside it then, sent from t=1.5 on, is delivered after the recovery at t=4, and so are again the
    # last ten delivered before the kill (Redis ran that pipeline but its answer was lost): repeats and
    # messages in flight at a kill, nothing lost or reordered while every part was up
    killed, recovered = 3.0, 4.0
    delivered = [a for a in stream(range(1, 300), lag=1.5) if a.arrived <= killed]  # up to n=150
    again = [Arrival(1, n, n / RATE, recovered - 0.1) for n in range(141, 300)]
    arrivals = delivered + again + stream(range(300, 400), lag=0.05)
    assert in_flight_since(arrivals, killed) == delivered[-1].sent == 1.5
    result = account(arrivals, [(in_flight_since(arrivals, killed), recovered)])
    assert (result.reordered, result.lost_while_up, result.duplicates) == (0, 0, 10), result


def test_with_the_fixed_margin_alone_a_lagging_chain_lost_what_was_in_flight_at_a_kill():
    # a broker killed at t=3 lost the twenty messages its queue held (the receiver reported them lost),
    # sent 1.5 s before, while the publisher's unacknowledged ones came again after the recovery at t=4
    killed, recovered = 3.0, 4.0
    delivered = [a for a in stream(range(1, 400), lag=1.5) if a.arrived <= killed]  # up to n=150
    arrivals = delivered + [Arrival(1, n, n / RATE, recovered - 0.1) for n in range(171, 400)]
    assert account(arrivals, [(killed - IN_FLIGHT_MARGIN, recovered)]).lost_while_up == 20
    result = account(arrivals, [(in_flight_since(arrivals, killed), recovered)])
    assert (result.lost_while_up, result.outage_gap) == (0, 20), result


def test_a_repeat_while_every_part_was_up_counts_as_reordered():
    arrivals = stream(range(1, 200), lag=0.01)
    arrivals.append(Arrival(1, 100, 1.0, 2.5))
    assert account(arrivals, [(4.0 - IN_FLIGHT_MARGIN, 5.0)]).reordered == 1


def test_a_loss_sent_before_the_newest_message_delivered_ahead_of_a_kill_is_still_lost_while_up():
    arrivals = [a for a in stream(range(1, 400), lag=1.5) if not 100 <= a.number < 110]
    killed = 3.0
    result = account(arrivals, [(in_flight_since(arrivals, killed), 4.0)])
    assert result.lost_while_up == 10, result
    assert result.lost_examples == [(1, 100)]
