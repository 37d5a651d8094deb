"""Getting an email to a server: MIME, the SMTP transport, replies, the pool, the capture server."""
