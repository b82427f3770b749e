"""Developer tooling: install, start the whole stack, private PostgreSQL/Redis for runs and tests."""
