"""The MQTT framing codec and sequence tracking (no broker needed)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

import indiredis
from indiredis.links.mqtt import MAX_GAP_SKIP, MqttIndiSideLink
from indiredis.protocol.document import FEED_SIZE
from indiredis.protocol.messages import Message, StreamedBlob
from indiredis.protocol.mqttframing import (
    RECORD_EXPIRY_SECONDS,
    SEQUENCE_WINDOW,
    SESSION_LIVE_SECONDS,
    TOPICS_KEPT,
    FrameError,
    FrameHeader,
    Framer,
    SequenceTracker,
    Verdict,
    decode_frame,
    encode_header,
)
from indiredis.protocol.parser import IndiStreamParser, parse_message


def msg(xml: str) -> Message:
    message = parse_message(xml.encode())
    assert isinstance(message, Message)
    return message


def number(n: int) -> Message:
    return msg(f'<setNumberVector device="M" name="P"><oneNumber name="N">{n}</oneNumber></setNumberVector>')


BLOB = msg(
    '<setBLOBVector device="C" name="CCD1"><oneBLOB name="CCD1" size="3" format=".fits">AAAA</oneBLOB>'
    "</setBLOBVector>"
)


def body_messages(payload: bytes) -> tuple[FrameHeader | None, list[Message]]:
    header, body = decode_frame(payload)
    events = IndiStreamParser().feed(bytes(body))
    return header, [e for e in events if isinstance(e, Message)]


def test_waiting_messages_share_a_numbered_payload_per_topic():
    framer = Framer(session="abc")
    frames, refused = framer.pack(
        [(number(n), ["F/obs"]) for n in range(1, 4)] + [(number(4), ["F/obs", "SD/x"])]
    )
    assert not refused
    assert [f.topic for f in frames] == ["F/obs", "SD/x"]
    header, messages = body_messages(frames[0].payload)
    assert header == FrameHeader("abc", 1, 4) and [m.members[0].text for m in messages] == [
        "1",
        "2",
        "3",
        "4",
    ]
    assert frames[1].header == FrameHeader("abc", 1, 1)  # each topic is numbered on its own
    # numbering goes on in the next call
    frames, _ = framer.pack([(number(5), ["F/obs"])])
    assert frames[0].header == FrameHeader("abc", 5, 1)


def test_payloads_are_bounded_in_bytes_and_blobs_travel_alone():
    framer = Framer(session="s", max_frame_bytes=3 * len(number(1).raw))
    routed = [(number(n), ["F/o"]) for n in range(7)] + [(BLOB, ["F/o"]), (number(8), ["F/o"])]
    frames, _ = framer.pack(routed)
    counts = [f.header.count for f in frames if f.header]
    assert counts == [3, 3, 1, 1, 1]
    assert body_messages(frames[3].payload)[1] == [BLOB]
    assert [f.header.first for f in frames if f.header] == [1, 4, 7, 8, 9]


def test_without_batching_every_payload_is_one_original_message():
    frames, _ = Framer(batching=False).pack([(number(n), ["F/o"]) for n in range(3)])
    assert [f.payload for f in frames] == [number(n).raw for n in range(3)]
    assert all(f.header is None for f in frames)
    assert all(ET.fromstring(f.payload).tag == "setNumberVector" for f in frames)


def test_a_lone_sequenced_message_is_understood_by_one_etree_fromstring():
    frames, _ = Framer().pack([(number(7), ["F/o"])])
    root = ET.fromstring(frames[0].payload)  # what the original 0.1.4 receivers do
    assert root.tag == "setNumberVector" and root[0].text == "7"


def test_messages_too_large_for_mqtt_are_refused_and_not_numbered():
    framer = Framer(session="s", max_payload=len(number(1).raw) + 300)
    big = msg(f'<message device="M" message="{"x" * 400}"/>')
    frames, refused = framer.pack([(number(1), ["F/o"]), (big, ["F/o"]), (number(2), ["F/o"])])
    assert refused == [big]
    assert frames[0].header == FrameHeader("s", 1, 2)


def test_decode_single_and_bad_headers():
    assert decode_frame(b"<getProperties/>")[0] is None
    with pytest.raises(FrameError):
        decode_frame(b'<?indiredis-frame v="1" session="a" seq="x"?><getProperties/>')
    with pytest.raises(FrameError):
        decode_frame(encode_header(FrameHeader("a", 1, 1)).replace(b'v="1"', b'v="9"'))
    with pytest.raises(FrameError):
        decode_frame(encode_header(FrameHeader("a", 0, 1)))


def test_tracker_detects_gaps_skips_resent_messages_and_knows_a_restarted_publisher():
    tracker = SequenceTracker()
    assert tracker.accept("F/o", FrameHeader("a", 40, 10)) == Verdict()  # first heard: nothing known before
    assert tracker.accept("F/o", FrameHeader("a", 50, 5)) == Verdict()
    assert tracker.accept("F/o", FrameHeader("a", 60, 5)) == Verdict(missing=5)  # 55..59 never came
    assert tracker.accept("F/o", FrameHeader("a", 60, 5)) == Verdict(skip=5)  # resent after a reconnection
    assert tracker.accept("F/o", FrameHeader("a", 63, 4)) == Verdict(skip=2)  # partly delivered before
    assert tracker.accept("F/o", FrameHeader("b", 1, 3)) == Verdict(restarted=True)  # new session: no gap
    # another new session at once, while a and b are live: a restart, but not one to act on again
    assert tracker.accept("F/o", FrameHeader("c", 4, 1)) == Verdict(
        missing=3, restarted=True, reset_held=True
    )
    assert tracker.accept("F/other", FrameHeader("c", 9, 1)) == Verdict()  # topics are tracked apart
    tracker.forget("F/o")
    assert tracker.topics() == ["F/other"]


def test_publishers_taking_turns_on_one_topic_are_no_gap():
    """snoop_data/<asker> carries the traffic of every instrument side whose device it snoops, each
    in its own session: their turns must not look like restarts or gaps (a resync loop)."""
    tracker = SequenceTracker()
    assert tracker.accept("SD/x", FrameHeader("a", 1, 3)) == Verdict()
    assert tracker.accept("SD/x", FrameHeader("b", 1, 2)) == Verdict(restarted=True)
    assert tracker.accept("SD/x", FrameHeader("a", 4, 1)) == Verdict()
    assert tracker.accept("SD/x", FrameHeader("b", 3, 1)) == Verdict()
    assert tracker.accept("SD/x", FrameHeader("a", 7, 1)) == Verdict(missing=2)  # a's 5 and 6 lost
    tracker.rewind("SD/x", "b", 3)  # b's 3 was received but not delivered
    assert tracker.accept("SD/x", FrameHeader("b", 4, 1)) == Verdict(missing=1)


def test_a_new_session_numbers_from_one_again_and_receivers_see_a_restarted_publisher():
    """The instrument side's INDI side reconnected: what follows is a new session (issue 17: mqtttoport
    then drops what vanished)."""
    framer, tracker = Framer(), SequenceTracker()
    first = framer.pack([(number(1), ["F/o"]), (number(2), ["F/o"])])[0][0]
    assert first.header is not None and tracker.accept("F/o", first.header) == Verdict()
    framer.new_session()
    again = framer.pack([(number(3), ["F/o"])])[0][0]
    assert (
        again.header is not None and again.header.first == 1 and again.header.session != first.header.session
    )
    assert tracker.accept("F/o", again.header) == Verdict(restarted=True)


def test_a_session_that_numbered_nothing_is_kept_so_the_first_real_restart_is_acted_on():
    """The instrument side announces its session right after connecting, then its INDI side connects
    (a Reset: a new session).  Were that a new id, receivers would see a restart that was none, and
    hold back the real one that follows within SESSION_LIVE_SECONDS (indiserver restarted soon after
    start: mqtttoport never told its clients what vanished)."""
    framer, tracker = Framer(), SequenceTracker()
    announced = FrameHeader(framer.session, 1, 0)
    assert tracker.accept("F/o", announced, now=0.0) == Verdict()
    framer.new_session()  # the INDI side's first connection: nothing numbered yet
    first = framer.pack([(number(1), ["F/o"])])[0][0]
    assert first.header is not None and first.header.session == announced.session
    assert tracker.accept("F/o", first.header, now=1.0) == Verdict()
    framer.new_session()  # indiserver restarted
    again = framer.pack([(number(2), ["F/o"])])[0][0]
    assert again.header is not None
    assert tracker.accept("F/o", again.header, now=2.0) == Verdict(restarted=True)


class CollectingSinks:
    """Stands in for the store's blob folder: records the pieces each streamed BLOB arrives in."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def open(self, vector: object, element: object) -> CollectingSinks:
        return self

    def write(self, text: bytes) -> None:
        self.pieces.append(bytes(text))

    def close(self) -> StreamedBlob:
        return StreamedBlob(path="/nowhere", size=len(b"".join(self.pieces)))

    def abort(self) -> None:
        self.pieces.clear()


def test_a_received_blob_streams_to_its_sink_in_pieces_not_held_in_the_message():
    """The receiving side holds a BLOB once (the MQTT payload): its data goes to the sink a piece at a
    time, and the message handed on carries only where it went."""
    data = base64.b64encode(bytes(range(256)) * 12_000)  # 3 MiB of base64 text
    blob = msg(
        f'<setBLOBVector device="C" name="CCD1"><oneBLOB name="CCD1" size="{len(data) * 3 // 4}" '
        f'format=".fits">{data.decode()}</oneBLOB></setBLOBVector>'
    )
    frames, _ = Framer(session="s").pack([(number(1), ["F/o"]), (blob, ["F/o"])])
    link = MqttIndiSideLink("gui", indiredis.mqtt_server("127.0.0.1"), blobs=(sinks := CollectingSinks()))
    received = [m for frame in frames for m in link.receiver.unpack("F/o", frame.payload)[0]]
    assert [m.tag for m in received] == ["setNumberVector", "setBLOBVector"]
    member = received[1].members[0]
    assert member.text == "" and member.blob is not None and member.blob.size == len(data)
    assert b"".join(sinks.pieces) == data and max(len(p) for p in sinks.pieces) <= FEED_SIZE


def test_an_idle_publishers_heartbeat_shows_a_loss_at_the_end_of_a_stream():
    framer = Framer(session="s")
    frames, _ = framer.pack([(number(n), ["F/o"]) for n in range(3)] + [(number(9), ["SD/x"])])
    beats = framer.heartbeats()
    assert [(b.topic, b.header) for b in beats] == [
        ("F/o", FrameHeader("s", 4, 0)),
        ("SD/x", FrameHeader("s", 2, 0)),
    ]
    assert decode_frame(beats[0].payload)[0] == FrameHeader("s", 4, 0)
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("s", 1, 1))  # messages 2 and 3 never came, and nothing after them
    assert tracker.accept("F/o", beats[0].header) == Verdict(missing=2)
    assert tracker.accept("F/o", beats[0].header) == Verdict()  # idle and whole
    assert Framer(batching=False).heartbeats() == []


def test_a_sequence_number_beyond_the_window_is_held_back_and_does_not_move_the_record():
    tracker = SequenceTracker()
    assert tracker.accept("F/o", FrameHeader("a", 1, 5), now=0.0) == Verdict()
    forged = tracker.accept("F/o", FrameHeader("a", 10**18, 1), now=1.0)
    assert forged == Verdict(skip=1, implausible=True, expected=6)
    assert tracker.accept("F/o", FrameHeader("a", 6, 2), now=2.0) == Verdict()  # the genuine one goes on
    far_back = FrameHeader("a", 1, 1)
    assert tracker.accept("F/o", FrameHeader("a", 9 + SEQUENCE_WINDOW, 1), now=3.0).implausible
    assert tracker.accept("F/o", far_back, now=4.0) == Verdict(skip=1)  # a repeat within the window
    # a new session does not start beyond the window either: held back, no restart
    assert tracker.accept("F/o", FrameHeader("b", 10**18, 1), now=5.0) == Verdict(
        skip=1, implausible=True, expected=1
    )


def test_a_genuine_long_jump_takes_the_record_over_once_its_own_numbers_fall_silent():
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("a", 1, 1), now=0.0)
    jump = 2 + 2 * SEQUENCE_WINDOW
    assert tracker.accept("F/o", FrameHeader("a", jump, 1), now=1.0).implausible
    # following one another, but the record's own publisher was heard just now: still held
    assert tracker.accept("F/o", FrameHeader("a", jump + 1, 1), now=2.0).implausible
    later = 1.0 + SESSION_LIVE_SECONDS
    assert tracker.accept("F/o", FrameHeader("a", jump + 2, 1), now=later) == Verdict(
        missing=jump
    )  # 2..jump-1 lost, two held
    assert tracker.accept("F/o", FrameHeader("a", jump + 3, 1), now=later) == Verdict()


def test_right_after_a_reconnection_a_forged_jump_does_not_take_a_live_publishers_record():
    """The broker restarted: this side reconnects after a silence, and a forger publishes seq=10**18 on
    the genuine session at once, and goes on; the genuine publisher (heartbeating) is never muted."""
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("a", 1, 5), now=0.0)
    reconnected = 600.0  # this side was away for ten minutes
    forged = 10**18
    assert tracker.accept("F/o", FrameHeader("a", forged, 1), now=reconnected).implausible
    assert tracker.accept("F/o", FrameHeader("a", forged + 1, 1), now=reconnected + 0.1).implausible
    genuine = 6
    for step in range(1, 10):  # 45 s of forged payloads, one a second apart, the genuine every 5 s
        now = reconnected + 5.0 * step
        assert tracker.accept("F/o", FrameHeader("a", genuine, 1), now=now) == Verdict()
        genuine += 1
        for tick in range(5):
            forged_verdict = tracker.accept(
                "F/o", FrameHeader("a", forged + 2 + 5 * step + tick, 1), now=now + tick
            )
            assert forged_verdict.implausible and forged_verdict.expected == genuine


def test_after_a_long_absence_a_jump_beyond_the_window_is_taken_over_once_it_continues():
    """This side was away while over a million messages went by: the genuine numbers continue one
    another for SESSION_LIVE_SECONDS, with nothing of the old record between, and become a gap."""
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("a", 1, 1), now=0.0)
    far = 3 * SEQUENCE_WINDOW
    assert tracker.accept("F/o", FrameHeader("a", far, 1), now=1000.0).implausible
    assert tracker.accept("F/o", FrameHeader("a", far + 1, 0), now=1005.0).implausible  # heartbeat
    taken = tracker.accept("F/o", FrameHeader("a", far + 1, 1), now=1000.0 + SESSION_LIVE_SECONDS)
    assert taken == Verdict(missing=far - 1)  # 2..far-1 lost, far held
    assert tracker.accept("F/o", FrameHeader("a", far + 2, 1), now=1016.0) == Verdict()


def test_messages_dropped_beyond_the_window_still_make_a_plausible_gap() -> None:
    """A publisher that dropped more messages than the window while the broker was away skips at most
    MAX_GAP_SKIP numbers: the receivers see a gap (and resync), never an implausible jump."""
    link = MqttIndiSideLink("gui", indiredis.mqtt_server("127.0.0.1"))
    tracker = SequenceTracker()
    topic = link.sequence_topic()
    [first], _ = link.framer.pack([(number(1), [topic])])
    assert first.header is not None and tracker.accept(topic, first.header, now=0.0) == Verdict()
    link.count_as_gap(5 * SEQUENCE_WINDOW)
    [after], _ = link.framer.pack([(number(2), [topic])])
    assert after.header is not None
    verdict = tracker.accept(topic, after.header, now=1.0)
    assert not verdict.implausible and verdict.missing == MAX_GAP_SKIP < SEQUENCE_WINDOW


def test_forged_sessions_evict_idle_sessions_by_age_never_a_live_one():
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("old", 1, 1), now=0.0)  # a publisher that restarted long ago
    tracker.accept("F/o", FrameHeader("live", 1, 1), now=100.0)
    for number in range(100):
        tracker.accept("F/o", FrameHeader(f"forged{number}", 1, 1), now=101.0)
    sessions = tracker.sessions("F/o")
    assert "live" in sessions and "old" not in sessions and len(sessions) == SequenceTracker.SESSIONS_KEPT
    assert tracker.accept("F/o", FrameHeader("forged-late", 1, 1), now=102.0) == Verdict(untracked=True)
    assert tracker.accept("F/o", FrameHeader("live", 2, 1), now=103.0) == Verdict()  # never restarted
    # once the forged ones are idle, new sessions get room again (the least recently heard first)
    assert tracker.accept("F/o", FrameHeader("new", 1, 1), now=101.0 + SESSION_LIVE_SECONDS).restarted


def test_topics_are_bounded_and_records_expire():
    tracker = SequenceTracker()
    tracker.accept("F/genuine", FrameHeader("a", 1, 1), now=0.0)
    for number in range(TOPICS_KEPT + 50):
        tracker.accept(f"F/x{number}", FrameHeader("s", 1, 1), now=SESSION_LIVE_SECONDS + number / 1000)
    assert len(tracker.topics()) == TOPICS_KEPT and "F/genuine" not in tracker.topics()
    assert tracker.accept("F/x0", FrameHeader("s", 2, 1), now=RECORD_EXPIRY_SECONDS + 100).restarted is False
    assert tracker.topics() == ["F/x0"]  # everything not heard for an hour is forgotten


def test_numbers_skipped_for_dropped_messages_show_as_a_gap_of_that_count() -> None:
    framer = Framer()
    tracker = SequenceTracker()
    message = Message.indi_message("hello")
    [first], _ = framer.pack([(message, ["from_indi/obs"])])
    assert first.header is not None and tracker.accept("from_indi/obs", first.header) == Verdict()
    framer.skip("from_indi/obs", 37)  # 37 messages dropped before they were packed
    [after], _ = framer.pack([(message, ["from_indi/obs"])])
    assert after.header is not None and tracker.accept("from_indi/obs", after.header).missing == 37


def test_forged_sessions_make_at_most_one_reset_per_live_period_while_the_genuine_one_is_live():
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("genuine", 1, 1), now=0.0)
    acted = []
    for step in range(100):  # a forged session every 0.3 s for 30 s; the genuine one heartbeats
        now = 1.0 + step * 0.3
        tracker.accept("F/o", FrameHeader("genuine", 2, 0), now=now)
        verdict = tracker.accept("F/o", FrameHeader(f"forged{step}", 1, 1), now=now)
        assert verdict.restarted or verdict.untracked  # the sessions full (all live): no record, no reset
        if verdict.restarted and not verdict.reset_held:
            acted.append(now)
    assert acted[0] == 1.0 and len(acted) == 2 and acted[1] - acted[0] >= SESSION_LIVE_SECONDS
    assert "genuine" in tracker.sessions("F/o")


def test_a_genuine_restart_still_resets_and_numbers_from_one():
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("first-run", 1, 50), now=0.0)
    tracker.accept("F/o", FrameHeader("first-run", 51, 10), now=100.0)
    # its INDI side reconnected: a new session at once, the old one still live
    assert tracker.accept("F/o", FrameHeader("second-run", 1, 3), now=100.5) == Verdict(restarted=True)
    # and again, long after
    assert tracker.accept("F/o", FrameHeader("third-run", 1, 3), now=200.0) == Verdict(restarted=True)


def test_a_new_session_numbered_beyond_the_window_is_held_back_until_it_goes_on():
    tracker = SequenceTracker()
    tracker.accept("F/o", FrameHeader("a", 1, 1), now=0.0)
    far = 2 * SEQUENCE_WINDOW
    assert tracker.accept("F/o", FrameHeader("b", far, 1), now=1.0) == Verdict(
        skip=1, implausible=True, expected=1
    )
    assert tracker.accept("F/o", FrameHeader("b", far + 1, 0), now=6.0).implausible
    taken = tracker.accept("F/o", FrameHeader("b", far + 1, 1), now=1.0 + SESSION_LIVE_SECONDS)
    assert taken == Verdict(missing=far)  # a gap (resync), not a restart
