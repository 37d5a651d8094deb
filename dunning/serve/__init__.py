"""The one web server: settlement and update links, Stripe webhooks, /metrics."""
