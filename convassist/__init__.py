"""ConvAssist: the Reflex app (UI state and pages) and the FastAPI routes the Mac agent calls."""
