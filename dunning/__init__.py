"""Localized dunning emails for SaaS billing."""

__version__ = "0.1.0"
