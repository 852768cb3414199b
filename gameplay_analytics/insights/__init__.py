"""Insights over the hot and warm stores: onboarding funnel, sample rates, combat, XP velocity.

Queries are plain SQL written once for Postgres and DuckDB; only JSON prop access differs.
"""
