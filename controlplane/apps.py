from django.apps import AppConfig


class ControlplaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Vectorplane control plane"

    def ready(self) -> None:
        # Registers the OpenAPI authentication extensions.
        from .api import schema  # noqa: F401
