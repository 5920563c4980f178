from __future__ import annotations

import csv
import io

import pytest
from django.utils import translation
from openpyxl import load_workbook

from muestra.catalog.models import ResultValue
from muestra.core.errors import ValidationFailed
from muestra.integrations.bulk import report, services
from muestra.integrations.bulk.parsing import fold_header
from muestra.integrations.bulk.templates import (
    KINDS,
    RESULTS,
    RESULTS_NATIONAL,
    SAMPLES,
    SAMPLES_NATIONAL,
    template_csv,
    template_xlsx,
)
from muestra.integrations.bulk.tests.helpers import (
    national_results_file,
    national_sample_row,
    received_sample,
    rows_csv,
    rows_xlsx,
)
from muestra.integrations.models import Intake, IntakeItem
from muestra.samples import lookups
from muestra.samples.models import Sample, SampleState

pytestmark = pytest.mark.usefixtures("immediate_tasks")


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _outcomes(intake):
    return {i.position: (i.outcome, [e["field"] for e in i.errors], i.reference) for i in intake.items.all()}


def test_headers_are_folded_without_case_accents_or_spacing():
    assert fold_header(" ID  Muestra ") == "id_muestra"
    assert fold_header("Fecha Recepción-Muestra") == "fecha_recepcion_muestra"


def test_national_results_csv_with_bad_rows_mixed_in(world):
    content, samples = national_results_file(world)
    intake, created = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="resultados.csv", content=content
    )
    assert created
    intake.refresh_from_db()
    assert intake.state == Intake.State.DONE and intake.total == 10
    got = _outcomes(intake)
    assert got[1][0] == IntakeItem.Outcome.ACCEPTED
    # Negativo needs its signed report: refused for that row with a clear reason, nothing stored.
    assert got[2][:2] == (IntakeItem.Outcome.REJECTED, ["result"])
    negative = intake.items.get(position=2)
    assert "signed report" in negative.errors[0]["message"] and negative.data["result"] == "Negativo"
    assert got[3][:2] == (IntakeItem.Outcome.REJECTED, ["patient"])  # bad RUN check digit
    assert "Invalid RUN" in intake.items.get(position=3).errors[0]["message"]
    assert got[4][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])  # unknown sample
    assert got[5][:2] == (IntakeItem.Outcome.REJECTED, ["result"])  # unknown result
    assert "Señal dudosa" in intake.items.get(position=5).errors[0]["message"]
    assert got[6][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])  # lab Y's sample: same answer as unknown
    assert got[7][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])  # duplicated row
    assert "row 1" in intake.items.get(position=7).errors[0]["message"]
    assert got[8][:2] == (IntakeItem.Outcome.REJECTED, ["patient"])  # another patient
    assert got[9][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])  # no sample
    assert (intake.accepted, intake.rejected) == (1, 9)
    assert Sample.objects.get(pk=samples["ok"].pk).state == SampleState.RESULT
    for name in ("negative", "bad_run", "unknown_result", "mismatch"):
        assert Sample.objects.get(pk=samples[name].pk).state == SampleState.RECEIVED
    assert Sample.objects.get(pk=samples["other_lab"].pk).state == SampleState.RECEIVED


def test_reuploading_the_same_file_changes_nothing_twice(world):
    content, _samples = national_results_file(world)
    first, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="a.csv", content=content
    )
    again, created = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="a (1).csv", content=content
    )
    assert not created and again.pk == first.pk
    assert IntakeItem.objects.filter(intake=first).count() == 10
    assert Intake.objects.count() == 1


def test_our_results_xlsx_where_the_catalogue_allows_results_without_report(world):
    ResultValue.objects.filter(code="negative").update(report_required=False)
    lookups.clear()
    one, two = received_sample(world), received_sample(world)
    content = rows_xlsx(
        [
            ["Sample", "Patient document", "Result", "Reported at"],
            [one.number, one.patient.document_number, "negative", "2099-01-01 10:00"],
            [one.number, None, "negative", None],
            [two.number, None, "Negativo", None],
        ]
    )
    intake, _ = services.upload_submit(actor=world.actors["lab_x"], kind=RESULTS, filename="r.xlsx", content=content)
    intake.refresh_from_db()
    got = _outcomes(intake)
    assert got[1][:2] == (IntakeItem.Outcome.REJECTED, ["reported_at"])  # in the future
    assert got[2][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])  # the same sample twice in the file
    assert got[3][0] == IntakeItem.Outcome.ACCEPTED
    # A second file with an already delivered result: "already recorded", nothing changes.
    content2 = rows_xlsx([["id muestra", "resultado"], [two.number, "NEGATIVO"]])
    second, _ = services.upload_submit(actor=world.actors["lab_x"], kind=RESULTS, filename="r2.xlsx", content=content2)
    assert _outcomes(second)[1][0] == IntakeItem.Outcome.UNCHANGED
    assert Sample.objects.get(pk=two.pk).results.count() == 1


def test_national_samples_and_results_xlsx(world):
    good = national_sample_row()
    with_result = national_sample_row(resultado="Muestra no apta")
    bad_run = national_sample_row(paciente_dv="0" if national_sample_row()["paciente_dv"] != "0" else "1")
    bad_run["paciente_dv"] = "K" if good["paciente_dv"] != "K" else "0"
    bad_run["paciente_run"] = good["paciente_run"]
    unknown_comuna = national_sample_row(paciente_comuna="99999")
    duplicate = dict(good)
    rows = [good, with_result, bad_run, unknown_comuna, duplicate]
    header = list(good)
    content = rows_xlsx([header, *[[r[h] for h in header] for r in rows]])
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=SAMPLES_NATIONAL, filename="muestras.xlsx", content=content
    )
    intake.refresh_from_db()
    got = _outcomes(intake)
    assert got[1][0] == IntakeItem.Outcome.ACCEPTED, intake.items.get(position=1).errors
    assert got[2][0] == IntakeItem.Outcome.ACCEPTED, intake.items.get(position=2).errors
    assert got[3][:2] == (IntakeItem.Outcome.REJECTED, ["paciente_run"])
    assert got[4][:2] == (IntakeItem.Outcome.REJECTED, ["paciente_comuna"])
    assert got[5][:2] == (IntakeItem.Outcome.REJECTED, ["codigo_muestra_cliente"])
    sample = Sample.objects.get(client_code=with_result["codigo_muestra_cliente"])
    assert sample.state == SampleState.RESULT and sample.laboratory_id == world.lab_x.pk


def test_an_establishment_registers_samples_but_may_not_deliver_results(world):
    with pytest.raises(ValidationFailed):
        services.upload_submit(actor=world.actors["taker_a"], kind=RESULTS, filename="r.csv", content=b"a;b\n1;2\n")
    row = national_sample_row()
    content = rows_csv([row], delimiter="\t", bom=False)
    intake, _ = services.upload_submit(actor=world.actors["taker_a"], kind=SAMPLES, filename="s.tsv", content=content)
    intake.refresh_from_db()
    assert intake.establishment_id == world.est_a.pk and intake.laboratory_id is None
    assert _outcomes(intake)[1][0] == IntakeItem.Outcome.ACCEPTED, intake.items.get(position=1).errors


def test_a_file_without_the_needed_columns_is_failed_as_a_whole(world):
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="x.csv", content=b"foo,bar\n1,2\n"
    )
    intake.refresh_from_db()
    assert intake.state == Intake.State.FAILED and "sample" in intake.error
    garbage, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="x.xlsx", content=b"PK\x03\x04garbage"
    )
    garbage.refresh_from_db()
    assert garbage.state == Intake.State.FAILED


def test_outcome_report_csv_and_xlsx_neutralise_formulas(world):
    content, _samples = national_results_file(world)
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="a.csv", content=content
    )
    with translation.override("en"):
        text = "".join(report.csv_stream(intake.items.order_by("position")))
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines[0] == ["Row", "Reference", "Outcome", "Field", "Reason", "Sample"]
    assert lines[1][2] == "Accepted" and lines[1][5]
    assert lines[2][2] == "Rejected" and lines[2][3] == "result" and "signed report" in lines[2][4]
    assert lines[10][1].startswith("'=HYPERLINK")
    book = load_workbook(report.xlsx_file(intake.items.order_by("position")), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 11 and rows[10][1].startswith("'=")


@pytest.mark.parametrize("kind", list(KINDS))
def test_templates_have_a_header_and_an_example_row_that_read_back(kind):
    from muestra.integrations.bulk.parsing import open_table

    for content in (template_csv(KINDS[kind]), template_xlsx(KINDS[kind])):
        table = open_table(io.BytesIO(content))
        fields = KINDS[kind].canonical(table.header)
        assert all(field for field in fields) and table.total == 1
        assert all(name in fields for name in KINDS[kind].required)


def test_reasons_are_written_in_the_uploaders_language_whatever_the_workers(world, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    sample = received_sample(world)
    content = f"ID Muestra;Resultado\n{sample.number};Dudoso\n".encode()
    with translation.override("es"):
        intake, _ = services.upload_submit(
            actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="r.csv", content=content
        )
    assert intake.state == Intake.State.RECEIVED and intake.language == "es"
    from muestra.integrations.bulk.processing import process_intake

    with translation.override("en"):
        process_intake(intake.pk)
    (item,) = intake.items.all()
    assert item.errors[0]["message"] == "Resultado desconocido: 'Dudoso'."
    intake.refresh_from_db()
    assert intake.state == Intake.State.DONE
    assert process_intake(intake.pk).pk == intake.pk and intake.items.count() == 1  # done: running again is a no-op


def test_an_interrupted_upload_resumes_after_its_last_recorded_row(world, settings):
    from muestra.integrations import services as intake_services
    from muestra.integrations.bulk.processing import process_intake

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    first, second = received_sample(world), received_sample(world)
    content = f"ID Muestra;Resultado\n{first.number};Muestra no apta\n{second.number};Muestra no apta\n".encode()
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="r.csv", content=content
    )
    intake_services.intake_start(intake=intake, total=2)  # a worker recorded row 1, then died
    intake_services.intake_items_record(
        intake=intake, items=[intake_services.ItemOutcomeRecord(1, IntakeItem.Outcome.REJECTED, str(first.number))]
    )
    process_intake(intake.pk, chunk_size=1)
    intake.refresh_from_db()
    assert list(intake.items.values_list("position", "outcome")) == [(1, "rejected"), (2, "accepted")]
    assert (intake.state, intake.total, intake.processed) == (Intake.State.DONE, 2, 2)
    assert Sample.objects.get(pk=first.pk).state == SampleState.RECEIVED


def _in_parts(settings, parts: int) -> None:
    settings.MUESTRA = {**settings.MUESTRA, "UPLOAD_PARTS": parts, "UPLOAD_PART_MIN_ROWS": 2}


def test_a_file_cut_into_parts_has_the_outcomes_of_one_read_in_order(world, settings):
    from muestra.audit.models import AuditEntry

    _in_parts(settings, 3)
    content, samples = national_results_file(world)
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="resultados.csv", content=content
    )
    intake.refresh_from_db()
    assert [(p.first_row, p.last_row) for p in intake.parts.all()] == [(1, 4), (5, 8), (9, 10)]
    assert all(p.finished_at is not None for p in intake.parts.all())
    got = _outcomes(intake)
    # Row 7 repeats row 1, which another part processed: still reported as the repeat of row 1.
    assert got[7][:2] == (IntakeItem.Outcome.REJECTED, ["sample"])
    assert "row 1" in intake.items.get(position=7).errors[0]["message"]
    assert got[1][0] == IntakeItem.Outcome.ACCEPTED and got[8][:2] == (IntakeItem.Outcome.REJECTED, ["patient"])
    assert (intake.state, intake.total, intake.accepted, intake.rejected) == (Intake.State.DONE, 10, 1, 9)
    assert sorted(got) == list(range(1, 11))  # one outcome per row
    assert AuditEntry.objects.filter(action="intake.finished", object_id=str(intake.pk)).count() == 1
    assert Sample.objects.get(pk=samples["ok"].pk).results.count() == 1


def test_a_part_run_twice_applies_nothing_twice_and_the_last_part_closes_the_unit(world, settings):
    from muestra.integrations.bulk.processing import process_intake_part

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}  # queued parts wait
    _in_parts(settings, 2)
    batch = [received_sample(world) for _ in range(4)]
    content = ("ID Muestra;Resultado\n" + "".join(f"{s.number};Muestra no apta\n" for s in batch)).encode()
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="r.csv", content=content
    )
    from muestra.integrations.bulk.processing import process_intake

    process_intake(intake.pk)  # the first part here; the second is queued for another worker
    intake.refresh_from_db()
    first, second = intake.parts.all()
    assert (intake.state, intake.processed, intake.total) == (Intake.State.PROCESSING, 2, 4)
    assert second.finished_at is None and first.done_through == 2
    process_intake(intake.pk)  # run again (a retried task): the first part's rows are not applied twice
    assert intake.items.count() == 2
    closed = process_intake_part(intake.pk, second.pk)
    assert (closed.state, closed.accepted) == (Intake.State.DONE, 4)
    assert process_intake_part(intake.pk, second.pk).state == Intake.State.DONE
    assert intake.items.count() == 4 and all(
        s.results.count() == 1 for s in Sample.objects.filter(pk__in=[s.pk for s in batch])
    )


def test_samples_files_and_small_files_are_one_part(world, settings):
    settings.MUESTRA = {**settings.MUESTRA, "UPLOAD_PARTS": 4, "UPLOAD_PART_MIN_ROWS": 3}
    rows = [national_sample_row() for _ in range(8)]
    intake, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=SAMPLES_NATIONAL, filename="m.csv", content=rows_csv(rows, delimiter=";")
    )
    assert [(p.first_row, p.last_row) for p in intake.parts.all()] == [(1, 8)]
    batch = [received_sample(world) for _ in range(5)]
    content = ("ID Muestra;Resultado\n" + "".join(f"{s.number};Muestra no apta\n" for s in batch)).encode()
    small, _ = services.upload_submit(
        actor=world.actors["lab_x"], kind=RESULTS_NATIONAL, filename="r.csv", content=content
    )
    assert small.parts.count() == 1  # 5 rows: not two parts of at least 3
