"""The Kubernetes operator: AnalyticsPipeline, SamplingPolicy and SchemaVersion reconciled by kopf.

Handlers are thin (`handlers`); the thinking is in pure modules (`manifests`, `policy`,
`schemagate`, `conditions`) that most tests call directly.
"""
