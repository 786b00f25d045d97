"""The graphs of the user and job pages (see graphs.common)."""
