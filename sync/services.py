"""Writes of the sync app."""
