"""The background work of an upload: processed by the task workers (`manage.py db_worker`), in the intake's
language (reasons are written in the language of the person who sent the file). A large results file is cut into
parts, one task each, so that several workers share it (`processing.process_intake`)."""

from __future__ import annotations

from django_tasks import task

from muestra.integrations.bulk.processing import process_intake, process_intake_part


@task()
def process_upload(intake_id: int) -> None:
    process_intake(intake_id)


@task()
def process_upload_part(intake_id: int, part_id: int) -> None:
    process_intake_part(intake_id, part_id)
