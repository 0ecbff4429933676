"""Collection: backfills, snapshots and gap reports (retries and rate limits live here only)."""
