"""How the control plane reaches a dedicated cluster's engine: its credentials (decrypted from
the row), the URLs of its PostgreSQL as the owner (DDL) and as the gateway's role, and a Qdrant
client. The bottom of provisioning's import order (connections <- steps <- tasks <- services):
it imports only the models and the kernel.

Every helper reads `cluster.endpoint`, which a task writes once the cluster is ready; none
opens a connection but `cluster_qdrant_client`, and none takes a lock.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vectorplane import config, crypto

from .models import Cluster

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

QDRANT_TIMEOUT = 30  # seconds, per request of the control plane's client


def credentials(cluster: Cluster) -> dict[str, str]:
    """The cluster's generated credentials (pgvector: admin and gateway users and passwords;
    Qdrant: its API key). Never shown in the API or the admin."""
    return {k: str(v) for k, v in crypto.decrypt_json(cluster.credentials_encrypted).items()}


def _postgres_url(cluster: Cluster, user: str, password: str) -> str:
    endpoint = cluster.endpoint
    return config.postgres_url(
        user=user,
        password=password,
        host=endpoint["host"],
        port=endpoint["port"],
        database=endpoint.get("database") or config.EMBEDDED_DATA_DB_NAME,
    )


def cluster_pg_url(cluster: Cluster) -> str:
    """The owner's URL of a pgvector cluster's data database (DDL; control plane only)."""
    creds = credentials(cluster)
    return _postgres_url(cluster, creds["admin_user"], creds["admin_password"])


def cluster_gateway_url(cluster: Cluster) -> str:
    """The gateway role's URL of a pgvector cluster's data database (owns nothing, under RLS)."""
    creds = credentials(cluster)
    return _postgres_url(cluster, creds["gateway_user"], creds["gateway_password"])


@contextlib.contextmanager
def cluster_qdrant_client(cluster: Cluster) -> Iterator[QdrantClient]:
    """A sync Qdrant client for the cluster (REST, `QDRANT_TIMEOUT` per request), closed on
    exit."""
    # Imported here, not at the top: qdrant-client takes ~1 s to import, and most processes
    # that import provisioning (commands, the worker) never talk to a Qdrant cluster.
    from qdrant_client import QdrantClient

    with warnings.catch_warnings():
        # Local clusters answer on loopback over plain HTTP; the client warns about the key.
        warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
        client = QdrantClient(
            url=cluster.endpoint["url"],
            api_key=credentials(cluster)["api_key"],
            prefer_grpc=False,
            timeout=QDRANT_TIMEOUT,
            check_compatibility=False,
        )
    try:
        yield client
    finally:
        client.close()
