from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "muestra.core"
    label = "core"

    def ready(self) -> None:
        from muestra.core import lookups  # noqa: F401 - registers the `in_array` lookup
        from muestra.core.gc_tuning import settle_startup_objects

        # Every process (app and task workers, management commands, tests): the models and apps are loaded now.
        settle_startup_objects()
