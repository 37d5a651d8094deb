"""Localized dunning emails for SaaS billing. The public API for embedding it is dunning.api."""

from dunning.version import __version__

__all__ = ["__version__"]
