from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "muestra.core"
    label = "core"
