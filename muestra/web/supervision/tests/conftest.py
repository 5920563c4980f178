from muestra.integrations.bulk.tests.conftest import immediate_tasks  # noqa: F401
