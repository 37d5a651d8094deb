"""Forked delivery processes: what stops one is raised in the run, and the process's state is put back."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import create_engine

from dunning import store
from dunning.errors import DatabaseNotCreated, SettingsError
from dunning.run.context import RunContext
from dunning.run.job import make_renderer
from dunning.run.workers import DeliveryWorkers
from dunning.settings import DatabaseSettings, Settings


def test_what_stops_a_delivery_process_is_raised_by_its_results(tmp_path):
    """A worker that cannot open the store reports why; results() raises it, and nothing is left frozen."""
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'no' / 'such' / 'dunning.sqlite3'}"))
    run = RunContext(settings, create_engine("sqlite://"), make_renderer(settings))
    with DeliveryWorkers(run, 1) as workers:
        workers.planning_done()
        with pytest.raises(DatabaseNotCreated, match="does not exist"):
            workers.results()
    assert gc.get_freeze_count() == 0


def test_an_unsupported_database_is_named():
    """A URL for a database without a backend is refused before anything connects."""
    with pytest.raises(SettingsError, match="unsupported database 'mysql'"):
        store.connect("mysql://user@localhost/dunning")
