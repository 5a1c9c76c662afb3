"""Writes of the activities app."""
