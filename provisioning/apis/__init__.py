"""The HTTP views of provisioning: `indexes` (our `/api/v1/tenants/{slug}/indexes`, usage),
`clusters` (`/api/v1/tenants/{slug}/clusters`, the size catalogue) and `pinecone` (Pinecone's
control-plane API, `/indexes`). Views stay thin: they parse, call a service or selector, and
render."""
