"""Admin placeholder (filled below)."""
