from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "muestra.core"
    label = "core"

    def ready(self) -> None:
        from muestra.core import lookups  # noqa: F401 - registers the `in_array` lookup
