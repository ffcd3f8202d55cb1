from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Indexes and clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Its Celery tasks (`provisioning.reevaluation.*`): it uses the services, which queue
        # `tasks`, so `tasks` cannot import it.
        from . import reevaluation  # noqa: F401
