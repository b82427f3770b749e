"""Reflex states: thin, one per screen; they call convassist.services."""
