"""`make mailcheck`: every preview email through SpamAssassin and rspamd, and through Chromium at phone width."""
