"""The background work of an upload: processed by the task worker (`manage.py db_worker`), in the intake's
language (reasons are written in the language of the person who sent the file)."""

from __future__ import annotations

from django_tasks import task

from muestra.integrations.bulk.processing import process_intake


@task()
def process_upload(intake_id: int) -> None:
    process_intake(intake_id)
