"""Gameplay analytics: SDK, gateway, aggregator, operator."""
