"""The policy numbers in settings are checked when settings load, naming the key and the reason."""

from __future__ import annotations

from datetime import time

import pytest

from dunning.errors import SettingsError
from dunning.settings import load_settings


def _load(tmp_path, toml: str):
    path = tmp_path / "settings.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(path)


@pytest.mark.parametrize("toml, message", [
    pytest.param("[past_due]\ndays_after_due = [1, 7, 7]\n", "past_due.days_after_due: Value error, stages must be "
                 "strictly increasing", id="past-due-stages-repeat"),
    pytest.param("[past_due]\ndays_after_due = [7, 1]\n", "strictly increasing", id="past-due-stages-decrease"),
    pytest.param("[past_due]\ndays_after_due = []\n", "must list at least one stage", id="past-due-no-stage"),
    pytest.param("[past_due]\ndays_after_due = [-1, 7]\n", "days must not be negative", id="past-due-negative"),
    pytest.param("[past_due]\ndays_after_due = [1, 70]\n", "the last stage falls after max_days_after_due",
                 id="past-due-stage-after-max"),
    pytest.param("[past_due]\nmax_days_after_due = 0\n", "past_due.max_days_after_due: Input should be greater than 0",
                 id="past-due-max-zero"),
    pytest.param("[past_due]\ndisable_after_days = -3\n", "past_due.disable_after_days: Input should be greater "
                 "than 0", id="disable-negative"),
    pytest.param("[pending_deletion]\ndays_before_deletion = [1, 7, 30]\n", "pending_deletion.days_before_deletion: "
                 "Value error, stages must be strictly decreasing", id="pending-deletion-increasing"),
    pytest.param("[pending_deletion]\ndays_before_deletion = []\n", "must list at least one stage",
                 id="pending-deletion-no-stage"),
    pytest.param("[card_charge_failed]\nmax_age_days = 0\n", "card_charge_failed.max_age_days: Input should be "
                 "greater than 0", id="card-max-age-zero"),
    pytest.param("[service_cancelled]\nmax_age_days = -7\n", "service_cancelled.max_age_days: Input should be "
                 "greater than 0", id="cancelled-max-age-negative"),
    pytest.param("[deletion]\ndays_after_cancel = 0\n", "deletion.days_after_cancel: Input should be greater than 0",
                 id="deletion-zero"),
    pytest.param('[past_due]\ndays_after_due = "1, 7"\n', "past_due.days_after_due: Input should be a valid list",
                 id="stages-not-a-list"),
    pytest.param('[policy]\nsend_window = "08:00"\n', 'policy.send_window: Value error, not a window "HH:MM-HH:MM"',
                 id="window-without-end"),
    pytest.param('[policy]\nsend_window = "08:00-25:00"\n', "not a window", id="window-bad-hour"),
    pytest.param('[policy]\nsend_window = "20:00-08:00"\n', "the window must start before it ends",
                 id="window-backwards"),
    pytest.param('[policy]\nsend_window = "09:00-09:00"\n', "the window must start before it ends",
                 id="window-empty"),
])
def test_bad_policy_numbers_are_refused(tmp_path, toml, message):
    """A policy setting that the policy could not follow fails to load, naming its key and the reason."""
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, toml)
    assert message in str(caught.value)


def test_good_policy_numbers_load(tmp_path):
    """Other stages, days and windows load as given; the window is parsed into start and end times."""
    settings = _load(tmp_path, '[policy]\nsend_window = "07:30-21:15"\n[past_due]\ndays_after_due = [0, 3, 10, 20]\n'
                               "max_days_after_due = 20\n[pending_deletion]\ndays_before_deletion = [14, 0]\n")
    assert settings.policy.window == (time(7, 30), time(21, 15))
    assert settings.past_due.days_after_due == [0, 3, 10, 20]
    assert settings.pending_deletion.days_before_deletion == [14, 0]


def test_policy_numbers_come_from_the_environment_too(monkeypatch, tmp_path):
    """DUNNING_PENDING_DELETION__DAYS_BEFORE_DELETION is validated like the file."""
    monkeypatch.setenv("DUNNING_PENDING_DELETION__DAYS_BEFORE_DELETION", "[7, 7]")
    with pytest.raises(SettingsError, match="pending_deletion.days_before_deletion"):
        _load(tmp_path, "")
