"""The storage layout of indexes, one module per engine, run by the control plane (never by the
gateway): `shared_tier` (pgvector: a table per index under FORCE ROW LEVEL SECURITY, in the
shared tier or a dedicated cluster's data database), `qdrant_tier` (a collection per index on a
dedicated Qdrant cluster). Plain functions over a connection or client: no Django."""
