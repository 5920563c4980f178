from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "muestra.integrations"
    label = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from muestra.integrations.outbound import receivers  # noqa: F401 - connects the signal handlers
