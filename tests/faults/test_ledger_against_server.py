"""The ledger against what a misbehaving SMTP server really received, case by case, on both databases.

Each case runs `dunning run` once against the scripted fault, then again (the fault spent, time moved
on past every backoff) until nothing waits; the ledger must then agree with the server: nothing
recorded sent that the server did not accept for its To address, nothing kept twice for one recipient
(under `hold`), nothing lost (every planned email is sent, failed with a reason, or held unknown
because the server may really have it).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
from sqlalchemy import select

from dunning import store
from dunning.cli import main
from dunning.delivery.mime import make_message_id
from dunning.run import job
from dunning.run.clock import ShiftedClock
from dunning.run.summary import RunSummary
from dunning.settings import load_settings
from tests.delivery.conftest import ManualTimers
from tests.faults.server import Act, FaultServer
from tests.run.conftest import AS_OF, load_sample
from tests.run.conftest import planned as plan_of

ACCOUNTS = 20
IN_STEP_OR_NOT = (0, 1)
GARBAGE = b"hello there, this is not SMTP\r\n"
TIMEOUT = 0.3  # the reply timeouts of these runs


@dataclass(frozen=True)
class Case:
    """One row of the table: a fault, whether the client pipelines, and the first run's exit code; with
    `concurrency` connections."""

    name: str
    acts: tuple[Act, ...]
    exit_code: int
    pipelining: bool = True
    unknown: tuple[int, ...] = (0,)  # how many emails the run may leave unknown (their data reached the server)
    concurrency: int = 2
    extra: dict = field(default_factory=dict)


def at(stage, reply: bytes | None = b"", **options) -> Act:
    """A scripted reply at the third command of a stage (so that pipelined sends are under way)."""
    return Act(stage, reply, after=options.pop("after", 2), **options)


CASES = [
    # Pipelined, the email before on that session (when it handed the session on before its final reply) read
    # that reply just before the session was found out of step: it may have been another command's, so that
    # email is held unknown (the server has it). Whether it was handed on depends on timing: 0 or 1 unknown.
    Case("DATA answered 250, not 354", (at("data", b"250 2.0.0 Ok\r\n"),), 75, unknown=IN_STEP_OR_NOT),
    Case("DATA answered 250, not 354, no pipelining", (at("data", b"250 2.0.0 Ok\r\n"),), 75, pipelining=False),
    Case("extra reply line after RCPT", (at("rcpt", b"250 2.1.5 Ok\r\n250 2.1.5 Stray\r\n"),), 75,
         unknown=IN_STEP_OR_NOT),
    Case("extra reply line after 354", (at("data", b"354 Go\r\n250 2.0.0 Stray\r\n"),), 0, unknown=IN_STEP_OR_NOT),
    Case("extra reply line after the final 250", (at("dot", b"250 2.0.0 Queued\r\n250 2.0.0 Stray\r\n"),), 0,
         unknown=IN_STEP_OR_NOT),
    Case("garbage reply to MAIL", (at("mail", GARBAGE),), 0),
    Case("garbage reply to RCPT", (at("rcpt", GARBAGE),), 75),
    Case("garbage reply to DATA", (at("data", GARBAGE),), 75),
    Case("garbage reply to the final dot", (at("dot", GARBAGE),), 1, unknown=(1,)),
    Case("354 in reply to the final dot", (at("dot", b"354 Again\r\n"),), 1, unknown=(1,)),
    Case("no reply to MAIL", (at("mail", None),), 75, unknown=IN_STEP_OR_NOT),
    Case("no reply to the final dot", (at("dot", None, held=True),), 1, unknown=(1,), concurrency=1),
    # A held reply times out as the test moves the clock on: one connection, so that no other reply is
    # awaited meanwhile, which the move would time out too; not pipelined at RCPT, so that the client waits
    # for that very reply (not still for MAIL's) once the server holds it.
    Case("late 250 to the final dot", (at("dot", b"", held=True),), 1, unknown=(1,), concurrency=1),
    Case("late 250 to RCPT", (at("rcpt", b"", held=True),), 75, pipelining=False, concurrency=1),
    Case("close at the greeting", (Act("greeting", None, close=True),), 0),
    Case("close at MAIL", (at("mail", None, close=True),), 0),
    Case("close at RCPT", (at("rcpt", None, close=True),), 75),
    Case("close at DATA", (at("data", None, close=True),), 75),
    Case("close after the final dot", (at("dot", None, close=True),), 1, unknown=(1,)),
    Case("421 at the final dot", (at("dot", b"421 4.3.0 Closing\r\n", close=True),), 75),
    Case("451 at MAIL", (at("mail", b"451 4.3.0 Later\r\n"),), 75),
    Case("451 at DATA", (at("data", b"451 4.3.0 Later\r\n"),), 75),
    Case("451 at the final dot", (at("dot", b"451 4.3.0 Later\r\n"),), 75),
    Case("554 at the final dot", (at("dot", b"554 5.6.0 Rejected\r\n"),), 1),
    Case("550 at RCPT of the only recipient", (at("rcpt", b"550 5.1.1 No such user\r\n", after=0),), 1),
]


def _cc_cases(to: str, cc: str) -> list[Case]:
    """Cases about one email with a To and a cc address, known once the sample is planned."""
    return [
        Case("To 451 at RCPT, cc accepted", (Act("rcpt", b"451 4.2.1 Mailbox busy\r\n", recipient=to),), 75),
        Case("cc 550 at RCPT, To accepted", (Act("rcpt", b"550 5.1.1 No such user\r\n", recipient=cc),), 0),
        Case("To 550 at RCPT, cc accepted", (Act("rcpt", b"550 5.1.1 No such user\r\n", recipient=to),), 1),
    ]


CC_NAMES = ["To 451 at RCPT, cc accepted", "cc 550 at RCPT, To accepted", "To 550 at RCPT, cc accepted"]


@pytest.fixture
def billing(database_url, monkeypatch):
    """Sample accounts in a fresh database, with the settings of a quick run (one process, short timeouts)."""
    monkeypatch.setenv("DUNNING_DATABASE__URL", database_url)
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "test-signing-key")
    monkeypatch.setenv("DUNNING_DELIVERY__WORKERS", "1")
    monkeypatch.setenv("DUNNING_SMTP__COMMAND_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("DUNNING_SMTP__DATA_TIMEOUT", str(TIMEOUT))
    load_sample(database_url, ACCOUNTS)
    return database_url


def _ledger(url: str) -> list:
    with store.connect(url).connect() as conn:
        return conn.execute(select(store.emails.c.id, store.emails.c.message_id, store.emails.c.status,
                                   store.emails.c.code, store.emails.c.refused, store.email_payloads.c.payload)
                            .join(store.email_payloads, store.email_payloads.c.email_id == store.emails.c.id)).all()


def _exercise(case: Case, monkeypatch) -> tuple[RunSummary, list[int], FaultServer]:
    """The first run with the fault, then runs (time moved on a day each) until no email waits."""
    monkeypatch.setenv("DUNNING_SMTP__PIPELINING", "true" if case.pipelining else "false")
    monkeypatch.setenv("DUNNING_SMTP__CONCURRENCY", str(case.concurrency))
    clock, timers = ShiftedClock(), ManualTimers()
    with FaultServer([replace(act, seen=0) for act in case.acts]) as server:  # the table's acts stay unspent
        monkeypatch.setenv("DUNNING_SMTP__PORT", str(server.port))
        settings = load_settings()
        # The client arms the timeout of a reply as it writes the command: before the server holds the reply.
        mover = timers.advance_once(server.holding, TIMEOUT + 0.01) if any(a.held for a in case.acts) else None
        summary = first = job.run(settings, as_of=AS_OF, clock=clock, timers=timers if mover else None)
        if mover is not None:
            mover.join(30)
        codes = [int(first.exit_code())]
        for _ in range(4):
            if not summary.waiting:
                break
            clock.advance(86_400)
            summary = job.run(settings, as_of=AS_OF, clock=clock)
            codes.append(int(summary.exit_code()))
    return first, codes, server


def _check(case: Case, url: str, planned: int, codes: list[int], server: FaultServer, record_property) -> None:
    rows = _ledger(url)
    copies = server.copies()
    statuses = Counter(row.status for row in rows)
    sent_not_received = lost = 0
    for row in rows:
        to = json.loads(row.payload)["to"]
        accepted = all(server.delivered_to(row.message_id, r) for r in to)
        in_doubt = any(k.message_id == row.message_id and k.in_doubt for k in server.kept)
        if row.status == "sent" and not accepted:
            sent_not_received += 1
        elif row.status == "unknown" and not (in_doubt or accepted):
            lost += 1  # held though the server never had it
        elif row.status not in ("sent", "unknown", "failed") or (
                row.status == "failed" and not (row.code and 500 <= row.code < 600 or row.refused)):
            lost += 1  # waiting still, or failed with no reason a server gave
    duplicates = sum(1 for count in copies.values() if count > 1)
    received = len({k.message_id for k in server.kept if k.accepted})
    record_property("row", {"scenario": case.name, "planned": planned, "received": received,
                            "recorded sent": statuses["sent"], "duplicates": duplicates, "lost": lost,
                            "exit code": codes[0], "later runs": codes[1:], "unknown": statuses["unknown"],
                            "failed": statuses["failed"]})
    assert len(rows) == planned and planned >= 10
    assert sent_not_received == 0, statuses
    assert duplicates == 0 and lost == 0, (statuses, copies)
    assert statuses["unknown"] in case.unknown, statuses
    assert codes[0] == (1 if statuses["unknown"] else case.exit_code), codes
    assert codes[-1] == (1 if statuses["unknown"] or statuses["failed"] else 0), codes  # nothing waits any more


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_ledger_agrees_with_what_the_server_received(case, billing, monkeypatch, record_property):
    """Whatever the server does at any stage, the ledger records sent only what it accepted, and loses nothing."""
    first, codes, server = _exercise(case, monkeypatch)
    _check(case, billing, first.planned, codes, server, record_property)


@pytest.mark.parametrize("name", CC_NAMES)
def test_each_recipient_has_its_own_outcome(name, billing, monkeypatch, record_property, capsys):
    """To refused for now is tried again alone; a cc refused for good is recorded; To refused for good fails."""
    email = next(e for e in plan_of(capsys) if e["status"] == "send" and e["cc"])
    to, cc = email["to"][0], email["cc"][0]
    message_id = make_message_id(email["keys"][0], "example.com")
    case = next(c for c in _cc_cases(to, cc) if c.name == name)
    first, codes, server = _exercise(case, monkeypatch)
    _check(case, billing, first.planned, codes, server, record_property)
    capsys.readouterr()
    assert main(["reconcile", "--refused", "--json"]) == 0
    listed = {(item["recipient"], item["code"]) for item in json.loads(capsys.readouterr().out)}
    (row,) = [r for r in _ledger(billing) if r.message_id == message_id]
    got = {r: sum(1 for k in server.kept if k.message_id == message_id and r in k.recipients and k.accepted)
           for r in (to, cc)}
    if name.startswith("To 451"):
        assert row.status == "sent" and got == {to: 1, cc: 1} and listed == set()
    elif name.startswith("cc 550"):
        assert row.status == "sent" and got == {to: 1, cc: 0} and listed == {(cc, 550)}
        assert first.recipients_refused == 1
    else:
        assert row.status == "failed" and got == {to: 0, cc: 1} and listed == {(to, 550)}
