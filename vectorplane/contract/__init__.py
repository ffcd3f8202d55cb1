"""What the parts of Vectorplane agree on, in one home (Django-free, imported, never copied).

The control plane (`tenants`, `provisioning`), the data-plane gateway and the Pulumi programs
(`infra`) all import from here, and from nothing of each other:

- `names`: index, cluster and tenant-slug rules;
- `locations`: Pinecone's cloud and region labels;
- `limits`: plan limit fields, engine dimension limits, the data plane's request limits;
- `storage`: where an index lives in its engine (schemas, tables, collections, vector names);
- `hosts`: the data-plane host of an index, built and parsed;
- `clusters`: a dedicated cluster's spec, sizes and observed state (control plane ↔ drivers
  ↔ infra);
- `filters`: Pinecone's metadata filter language as a public tree (parse, validate, evaluate),
  which each engine compiles itself.
"""
