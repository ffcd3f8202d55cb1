"""A local, single-node Qdrant: Qdrant's own engine (Qdrant Edge, in-process) behind a subset of
Qdrant's REST API, so that the gateway talks to it with `qdrant_client.AsyncQdrantClient(url=...,
api_key=...)` exactly as it would talk to a real Qdrant server. See docs/qdrant-local.md.

    python -m vectorplane.qdrant_host --data DIR --host 127.0.0.1 --port P --api-key-file FILE

Modules: `convert` (REST JSON <-> Edge objects), `store` (shards, writer threads, optimisation),
`app` (the ASGI application), `__main__` (the command line, granian's embedded server).
No Django here.
"""

# Reported by GET / when qdrant-client is not installed to derive a compatible version from.
FALLBACK_VERSION = "1.16.0"
