"""Domain logic in plain Python (no Reflex, no FastAPI), called by both API routes and UI states."""
