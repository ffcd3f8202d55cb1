"""`manage.py clusters reconcile|stop-local`: what `python -m vectorplane run` does at start
(bring every cluster that should run back up) and at exit (stop the local processes)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from provisioning import tasks


class Command(BaseCommand):
    help = "Reconcile dedicated clusters now (in this process), or stop local cluster processes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["reconcile", "stop-local"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "reconcile":
            counts = tasks.clusters_reconcile(inline=True)
            self.stdout.write(
                f"clusters: {counts['applied']} applied, {counts['destroyed']} deleted, "
                f"{counts['drifted']} restarted"
            )
        else:
            stopped = tasks.clusters_stop_local()
            self.stdout.write(f"clusters: stopped {stopped} local clusters")
