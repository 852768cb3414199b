"""Command groups of `gameplay-analytics`, one module each, registered by `cli._parser()`.

Each module exposes `register(sub)` that adds its subcommands; handlers import lazily.
"""
