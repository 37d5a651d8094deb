"""The one web server (`dunning serve`): the links' landing and Stripe's webhooks, in one Starlette app."""
