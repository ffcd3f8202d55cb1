"""Pulumi component resources for tenant clusters on Kubernetes.

- `infra.components`: `TenantNamespace` (namespace, quota, limit range, network policies),
  `PgvectorCluster` (a PostgreSQL + pgvector StatefulSet, or a CloudNativePG `Cluster`) and
  `QdrantCluster` (a Qdrant StatefulSet, distributed when it has several replicas).
- `infra.program`: `cluster_program(spec, ...)`, the one Pulumi program per dedicated cluster,
  run by the `kubernetes` driver through the Automation API (one stack per cluster).

Nothing here imports Django: the program runs inside a Celery worker, and its unit tests run
under `pulumi.runtime.set_mocks` with no Kubernetes and no Pulumi CLI.
"""
