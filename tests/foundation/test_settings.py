"""Settings: defaults, the file, environment overrides, secrets, and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dunning.cli import main
from dunning.errors import SettingsError
from dunning.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_settings_file_holds_exactly_the_built_in_defaults():
    """settings.toml at the repository root documents every default, and they equal the built-in ones."""
    from_file = tomllib.loads((REPO / "settings.toml").read_text())
    defaults = Settings.model_construct().model_dump()  # the code's defaults, no file, no environment
    for section, values in from_file.items():
        for key, value in values.items():
            assert defaults[section][key] == value, f"{section}.{key}"
    assert set(from_file) == set(defaults)


def test_defaults_apply_without_a_file(tmp_path, monkeypatch):
    """With no settings file, the built-in defaults are used, their relative paths under the current folder."""
    monkeypatch.delenv("DUNNING_SETTINGS")
    settings = load_settings()
    assert settings.database.url == f"sqlite:///{tmp_path}/var/dunning.sqlite3"
    assert settings.past_due.days_after_due == [1, 7, 14] and settings.policy.send_window == "08:00-20:00"


def test_file_values_override_defaults(tmp_path):
    """A value in the settings file replaces the default; the rest stay."""
    path = tmp_path / "settings.toml"
    path.write_text('[smtp]\nhost = "mail.example.com"\ntls = "starttls"\nport = 587\n')
    settings = load_settings(path)
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.tls) == ("mail.example.com", 587, "starttls")
    assert settings.smtp.concurrency == 4


def test_a_loaded_file_stays_with_its_own_settings(tmp_path, monkeypatch):
    """Loading one settings file leaves nothing behind: settings built afterwards never read it."""
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text('[smtp]\nport = 587\n')
    second.write_text('[smtp]\nhost = "mail.example.com"\n')
    assert load_settings(first).smtp.port == 587
    assert Settings().smtp.port == 8025
    assert load_settings(second).smtp.port == 8025


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    """DUNNING_<SECTION>__<KEY> wins over the file."""
    path = tmp_path / "settings.toml"
    path.write_text('[smtp]\nport = 587\n[database]\nurl = "sqlite:///a.db"\n')
    monkeypatch.setenv("DUNNING_SMTP__PORT", "2525")
    monkeypatch.setenv("DUNNING_DATABASE__URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("DUNNING_PAST_DUE__DAYS_AFTER_DUE", "[2, 9]")
    settings = load_settings(path)
    assert settings.smtp.port == 2525 and settings.database.url == "postgresql+psycopg://u@h/db"
    assert settings.past_due.days_after_due == [2, 9]


def test_a_named_settings_file_must_exist(tmp_path, monkeypatch):
    """A settings file named by DUNNING_SETTINGS or --settings that does not exist is an error."""
    monkeypatch.setenv("DUNNING_SETTINGS", str(tmp_path / "typo.toml"))
    with pytest.raises(SettingsError, match="typo.toml does not exist"):
        load_settings()


def test_dunning_settings_names_the_file(tmp_path, monkeypatch):
    """DUNNING_SETTINGS selects the settings file."""
    path = tmp_path / "other.toml"
    path.write_text('[branding]\ncompany = "Fabrikam"\n')
    monkeypatch.setenv("DUNNING_SETTINGS", str(path))
    assert load_settings().branding.company == "Fabrikam"


@pytest.mark.parametrize("content, env, expected", [
    ("[smtp]\nport = 70000\n", {}, "smtp.port: Input should be less than 65536 (got 70000)"),
    ("", {"DUNNING_SMTP__TLS": "maybe"}, "smtp.tls: Input should be 'none', 'starttls' or 'implicit'"),
    ('[policy]\nsend_window = "20:00-08:00"\n', {}, "policy.send_window: Value error, the window must start"),
    ('[policy]\nsend_window = "8h to 20h"\n', {}, "policy.send_window: Value error, not a window"),
    ("[pending_deletion]\ndays_before_deletion = [1, 7, 30]\n", {}, "strictly decreasing"),
    ("[past_due]\ndays_after_due = [1, 1]\n", {}, "past_due.days_after_due: Value error, stages must be strictly"),
    ("[deletion]\ndays_after_cancel = 0\n", {}, "deletion.days_after_cancel: Input should be greater than 0"),
    ("[smtp]\nhots = \"x\"\n", {}, "smtp.hots: Extra inputs are not permitted"),
    ("[smtp\n", {}, "not valid TOML"),
])
def test_bad_value_names_its_key_path(tmp_path, monkeypatch, content, env, expected):
    """An invalid setting fails with the key's path and the reason."""
    path = tmp_path / "settings.toml"
    path.write_text(content)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert expected in str(caught.value)


def test_secrets_are_refused_in_the_file(tmp_path):
    """A password written in the settings file is refused, naming the environment variable to use."""
    path = tmp_path / "settings.toml"
    path.write_text('[smtp]\npassword = "hunter2"\n')
    with pytest.raises(SettingsError, match="DUNNING_SMTP__PASSWORD"):
        load_settings(path)


def test_secrets_come_from_the_environment_and_are_never_echoed(tmp_path, monkeypatch):
    """Signing keys and the SMTP password are read from the environment and hidden in error messages."""
    monkeypatch.setenv("DUNNING_LINKS__KEYS", "new-key, old-key")
    monkeypatch.setenv("DUNNING_SMTP__PASSWORD", "s3cret")
    settings = load_settings()
    assert settings.links.key_list == ["new-key", "old-key"]
    assert settings.smtp.password.get_secret_value() == "s3cret" and "s3cret" not in repr(settings)


def test_bad_setting_is_an_exit_code_not_a_traceback(monkeypatch, capsys, tmp_path):
    """The CLI reports a bad setting as one clear message and exit code 78."""
    monkeypatch.setenv("DUNNING_DATABASE__BATCH_SIZE", "-1")
    assert main(["import", str(tmp_path / "x.jsonl")]) == 78
    err = capsys.readouterr().err
    assert "database.batch_size: Input should be greater than 0" in err and "Traceback" not in err


@pytest.mark.parametrize("content, expected", [
    ('[segments.gold.past_due]\nmax_days_after_due = 90\n', "segments.gold.past_due.max_days_after_due"),
    ('[segments.gold]\nsmtp.host = "x"\n', "segments.gold.smtp"),
    ('[segments.gold.past_due]\ndays_after_due = [3, 100]\n',
     "segments.gold.past_due: the last stage falls after max_days_after_due"),
    ('[segments.gold.policy]\nsend_window = "17:00-09:00"\n', "segments.gold.policy.send_window"),
    ('[segments."Gold Tier".policy]\nsend_window = "09:00-17:00"\n', "segment name 'Gold Tier'"),
])
def test_a_bad_segment_section_is_refused_at_start_naming_the_key(tmp_path, content, expected):
    """A segment section may override only its documented keys, with values its sections accept."""
    path = tmp_path / "settings.toml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=expected.replace("[", r"\[")):
        load_settings(path)


def test_a_segment_overrides_only_its_accounts_settings(tmp_path):
    """for_segment applies the section's overrides; other names and no segment get the defaults."""
    path = tmp_path / "settings.toml"
    path.write_text('[segments.gold]\npast_due.days_after_due = [3, 10]\ncard_expiring.days_before = [45, 14]\n')
    settings = load_settings(path)
    gold = settings.for_segment("gold")
    assert (gold.past_due.days_after_due, gold.card_expiring.days_before) == ([3, 10], [45, 14])
    assert gold.past_due.max_days_after_due == 60 and gold.policy.send_window == "08:00-20:00"
    assert settings.for_segment("silver") is settings and settings.for_segment(None) is settings
