"""Stripe as a billing source: the official `stripe` library fetches, a pure mapping converts, a sync stores."""
