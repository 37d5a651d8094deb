"""The base of every settings section: frozen, and no key it does not know."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A section of settings.toml (a table), or a part of one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
