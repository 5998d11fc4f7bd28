"""Long-running background jobs: spool relay, webhook delivery, key expiry."""
