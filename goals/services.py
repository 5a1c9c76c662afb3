"""Writes of the goals app."""
