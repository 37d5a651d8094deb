"""frozen.builder builds what a frozen slotted dataclass's own __init__ builds, and the result stays frozen."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from dunning.frozen import builder
from dunning.ledger import OutboxEntry


def test_a_built_entry_is_the_entry_its_class_makes_with_the_same_defaults() -> None:
    build = builder(OutboxEntry)
    values = dict(account="acct_1", payment_method="pm_1", notice="past_due", stage=2, locale="fr-FR",
                  status="skipped", keys=("past_due:acct_1:pm_1:2026-12-01:2",))
    built, made = build(**values), OutboxEntry(**values)  # type: ignore[arg-type]
    assert type(built) is OutboxEntry and built == made and hash(built) == hash(made)
    assert (built.message_id, built.payload) == (None, None) and repr(built) == repr(made)
    ordered = ("acct_1", "pm_1", "past_due", 2, "fr-FR", "send", ("k",), "<id@example.com>", "{}")
    assert build(*ordered) == OutboxEntry(*ordered)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(built)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = "send"  # type: ignore[misc]


def test_missing_or_unknown_arguments_are_refused_as_the_class_refuses_them() -> None:
    build = builder(OutboxEntry)
    with pytest.raises(TypeError):
        build(account="acct_1")
    with pytest.raises(TypeError):
        build("a", "pm", "past_due", 1, "en", "send", ("k",), None, None, "extra")


def test_a_class_it_cannot_build_the_same_way_is_refused_when_the_builder_is_made() -> None:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        name: str

    @dataclasses.dataclass(frozen=True, slots=True)
    class Listed:
        names: list[str] = dataclasses.field(default_factory=list)

    for cls, reason in ((Unslotted, "not a slotted dataclass"), (Listed, "default factory")):
        with pytest.raises(TypeError, match=reason):
            builder(cls)
