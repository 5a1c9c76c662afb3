"""Writes of the coaching app."""
