"""What every step of a run is handed: one object instead of the same six passed hop by hop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from dunning.delivery.reconnect import Outage
from dunning.links import LinkSigner
from dunning.run.clock import SYSTEM_CLOCK, Clock
from dunning.run.stages import OFF, Stages
from dunning.run.summary import Progress
from dunning.settings import DkimSettings, Settings

if TYPE_CHECKING:
    from dunning.delivery.dkim import DkimSigner
    from dunning.delivery.timer import Timers
    from dunning.delivery.transport import SmtpTransport
    from dunning.emails.render import Renderer

__all__ = ["RunContext", "smtp_transport", "dkim_signer", "quiet"]


def quiet(what: str, count: int) -> None:
    """A progress callback that reports nothing."""


def smtp_transport(settings: Settings, outage: Outage | None = None, *, timers: Timers | None = None) -> SmtpTransport:
    """The SMTP transport of these settings (not yet connected), riding out a relay's outage as told; timers:
    the clock of its reply timeouts (the event loop's unless given)."""
    from dunning.delivery.transport import SmtpTransport  # loaded by the runs that deliver, not by every run
    password = settings.smtp.password.get_secret_value() if settings.smtp.password else None
    return SmtpTransport(settings.smtp, password=password, outage=outage, timers=timers)


def dkim_signer(dkim: DkimSettings) -> DkimSigner | None:
    """The DKIM signer of these settings (it reads and checks the key); None when DKIM is off."""
    if not dkim.enabled:
        return None
    # dkimpy and the DNS library under it load only when DKIM is on: a run without it starts sooner.
    from dunning.delivery.dkim import signer_from_settings
    return signer_from_settings(dkim)


@dataclass(frozen=True, slots=True)
class RunContext:
    """The settings, the store, the renderer, the clock, where progress goes and how a transport is made;
    links: the run's link signer (None when it signs nothing: a dry run, or delivery alone); dkim: the
    DKIM signer when DKIM is on; stages: the CPU counters per stage (OFF unless the run is profiled)."""

    settings: Settings
    engine: Engine
    renderer: Renderer
    clock: Clock = SYSTEM_CLOCK
    progress: Progress = quiet
    transport: Callable[[Settings, Outage], SmtpTransport] = smtp_transport
    links: LinkSigner | None = None
    dkim: DkimSigner | None = None
    stages: Stages = OFF

    def open_transport(self) -> SmtpTransport:
        """A transport for this run's SMTP settings, waiting out a relay's outage on the run's clock."""
        smtp = self.settings.smtp
        outage = Outage(smtp.reconnect_seconds, where=f"{smtp.host}:{smtp.port}",
                        now=lambda: self.clock.now().timestamp(), sleep=self.clock.sleep,
                        on_wait=lambda _seconds: self.progress("waits for the SMTP server", 1))
        return self.transport(self.settings, outage)
