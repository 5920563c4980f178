"""`load_establishments`: loads a CSV of establishments, idempotently, skipping rows it cannot place."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from muestra.facilities.loaders import DEFAULT_FILE, load_establishments
from muestra.facilities.models import Establishment

FIXTURE = """code,old_code,name,type,dependency,service,comuna_code,comuna_name_esmeralda
901001,13-901,CESFAM  Prueba Uno,Centro de Salud Familiar (CESFAM),Municipal,SS Metropolitano Central,13101,Santiago
901002,05-902,Clínica Prueba Dos,Clínica,Privado,SEREMI De Valparaíso,5101,Valparaíso
901003,05-903,Posta sin comuna,Posta de Salud Rural (PSR),Municipal,Servicio de Salud Valparaíso,99999,Nada
901001,13-901,CESFAM Prueba Uno repetido,CESFAM,Municipal,x,13101,Santiago
"""


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "establishments.csv"
    path.write_text(FIXTURE, encoding="utf-8")
    return path


def test_loads_places_and_is_idempotent(db, csv_file):
    report = load_establishments(csv_file)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert len(report.skipped) == 2  # unknown comuna, repeated code
    one = Establishment.objects.get(code="901001")
    assert one.name == "CESFAM Prueba Uno" and one.is_public and one.territory.code == "13101"
    two = Establishment.objects.get(code="901002")
    assert not two.is_public and two.territory.code == "05101"  # DEIS comuna code without the leading zero
    assert not Establishment.objects.filter(code="901003").exists()

    again = load_establishments(csv_file)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert Establishment.objects.filter(code__startswith="9010").count() == 2


def test_existing_rows_are_kept_unless_update_is_asked(db, csv_file):
    load_establishments(csv_file)
    Establishment.objects.filter(code="901001").update(name="Corrected by an administrator")
    load_establishments(csv_file)
    assert Establishment.objects.get(code="901001").name == "Corrected by an administrator"
    report = load_establishments(csv_file, update=True)
    assert report.updated == 1
    assert Establishment.objects.get(code="901001").name == "CESFAM Prueba Uno"


def test_command_reports_and_refuses_a_wrong_file(db, csv_file, tmp_path):
    out, err = StringIO(), StringIO()
    call_command("load_establishments", "--file", str(csv_file), stdout=out, stderr=err)
    assert "2 created" in out.getvalue() and "unknown comuna" in err.getvalue()
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CommandError, match="missing column"):
        call_command("load_establishments", "--file", str(wrong), stdout=out, stderr=err)
    with pytest.raises(CommandError, match="No such file"):
        call_command("load_establishments", "--file", str(tmp_path / "none.csv"), stdout=out, stderr=err)


def test_the_shipped_file_has_the_expected_columns():
    header = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("code,old_code,name,type,dependency,service,comuna_code")
