"""The Python worker: pops report tasks from Redis and streams their CSV (docs/protocol.md)."""
