"""The pipeline's processes: gateway, aggregator, storage, and what they share.

Gateway and aggregator never import each other; they meet at `contract.messages`.
"""
