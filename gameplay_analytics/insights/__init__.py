"""Insights over the hot and warm stores: each metric defined once (`definitions`), computed
by `core.compute` for the CLI, the page and the report, with its estimator stated and tested.
"""
