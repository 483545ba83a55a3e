"""Placeholder until the ledger benchmark lands in this same issue."""
