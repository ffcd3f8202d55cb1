"""Writes of provisioning, called by the APIs, the admin and commands: `indexes` (create,
configure, delete an index and its storage) and `clusters` (order, resize, delete, retry a
dedicated cluster; the work is queued to `provisioning.tasks`)."""
