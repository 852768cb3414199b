"""Synthetic players and the load harness: real WebSockets, the real SDK, known sequences."""
