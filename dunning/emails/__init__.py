"""The emails: MJML compile, sandboxed Jinja, template cache, render, scenarios, preview, lint."""
