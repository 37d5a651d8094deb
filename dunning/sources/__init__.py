"""Billing systems mapped into the billing-state contract: fetch, convert, store through the import's validation."""
