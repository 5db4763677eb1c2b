"""Runs: create-or-update, status, listing, deletion."""
