"""The embedded stack: nats-server and PostgreSQL from their wheels, gateway and aggregator.

Nothing here needs Docker, Kubernetes or a system service; nothing imports this package.
"""
