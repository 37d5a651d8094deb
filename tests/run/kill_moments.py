"""Moments at which a delivery process is killed, brought about by the capture server's faults, and what the
server had received by then, session by session."""

from __future__ import annotations

import signal
import subprocess
from collections import defaultdict
from dataclasses import dataclass

from dunning.delivery.capture import CaptureServer, Fault

# held-final-reply: the server has a message on one session and holds its final reply while the other
# sessions go on (the next envelope on the held one may be out behind it); after-250: the server answered
# 250 to a message and holds the reply to the next MAIL on that session, so the sender has its 250 and cannot
# know yet whether the session stayed in step, while the other sessions go on. In both, the others then
# have a final reply held too, so that each session has one message in flight at the kill. mid-stream:
# every final reply a little late, the process killed while its sends are at every stage, DATA open on some.
MOMENTS = ("held-final-reply", "after-250", "mid-stream")
MORE = 3  # messages the other sessions send once one is held


@dataclass
class Received:
    """What the server had received when the killed process was gone."""

    message_ids: list[str]
    followed: set[str]  # answered 250, then the next message on the same session arrived


@dataclass
class Moment:
    """The faults that bring the sends to a moment, and how to tell it has come."""

    name: str
    faults: list[Fault]  # each to be reached
    messages: int  # messages received by then


def arm(smtp: CaptureServer, name: str, after: int, connections: int) -> Moment:
    """Faults that bring the sends over `connections` sessions to the moment once `after` messages went through."""
    rest = Fault("data", 250, held=True, times=None)
    if name == "held-final-reply":
        first = Fault("data", 250, held=True)
        faults = [Fault("data", 250, text="2.0.0 OK", times=after), first,
                  Fault("data", 250, text="2.0.0 OK", times=MORE), rest]
        moment = Moment(name, [first, rest], after + 1 + MORE + connections - 1)
    elif name == "after-250":
        first = Fault("mail", 250, text="2.1.0 OK", held=True)
        faults = [Fault("mail", 250, text="2.1.0 OK", times=after), first,
                  Fault("data", 250, text="2.0.0 OK", times=after + MORE), rest]
        moment = Moment(name, [first, rest], after + MORE + connections - 1)
    elif name == "mid-stream":
        faults = [Fault("data", 250, text="2.0.0 OK", delay=0.02, times=None)]
        moment = Moment(name, [], after)
    else:
        raise ValueError(name)
    for fault in faults:
        smtp.add_fault(fault)
    return moment


def kill_at(smtp: CaptureServer, moment: Moment, victim: subprocess.Popen) -> Received:
    """SIGKILL the victim at the moment, then stop the server, so that nothing it sent arrives later: what the
    server received until then."""
    smtp.wait_for(moment.messages, timeout=60)
    for fault in moment.faults:
        assert fault.reached.wait(timeout=60), f"the sends never reached the moment {moment.name}"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    for fault in moment.faults:
        fault.release()
    smtp.stop()  # its sessions end here: a message the victim wrote and the server had not read is not received
    return received(smtp)


def received(smtp: CaptureServer) -> Received:
    """Message-IDs in the order received, and those followed by another on their session."""
    sessions = [session for session, command, _ in smtp.commands if command == "DATA"]
    message_ids = [message.parsed()["Message-ID"] for message in smtp.messages]
    by_session: dict[int, list[str]] = defaultdict(list)
    for session, message_id in zip(sessions, message_ids, strict=True):
        by_session[session].append(message_id)
    return Received(message_ids, {message_id for ids in by_session.values() for message_id in ids[:-1]})
