"""Billing state: the input contract, its import, the stored accounts, sample data."""
