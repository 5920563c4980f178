"""The registration form: register, remember, look patients up, validate live, never register twice, stay in scope."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.audit.models import AuditEntry
from muestra.core.models import IdempotencyRecord
from muestra.demo.builders import fresh_run, patient_input, sample_input
from muestra.patients.documents import run_check_digit
from muestra.patients.models import Patient
from muestra.samples import services
from muestra.samples.models import Channel, Sample, SampleState

pytestmark = pytest.mark.django_db

URL = "/register/"


def form_data(token: str = "form0001", **overrides: Any) -> dict[str, str]:  # noqa: S107 - not a password
    """A complete registration as the browser sends it for taker A (new patient with a fresh RUN)."""
    collected = timezone.localtime() - timedelta(hours=1)
    data = {
        "idempotency_token": token,
        "establishment": "113100",
        "laboratory": "1000000001",
        "test": "covid19-pcr",
        "sample_type": "nasopharyngeal-swab",
        "strategy": "symptomatic",
        "document_type": "run",
        "document_number": fresh_run(),
        "document_issuer": "",
        "given_names": "Rosa",
        "paternal_surname": "Pérez",
        "maternal_surname": "Soto",
        "birth_date": "1980-02-03",
        "sex": "F",
        "residence": "13101",
        "address": "Calle Larga 12",
        "phone": "912345678",
        "email": "",
        "insurance": "fonasa",
        "nationality": "",
        "collected_at": collected.strftime("%Y-%m-%dT%H:%M"),
        "result": "",
        "result_at": "",
        "tube_code": "",
    }
    data.update(overrides)
    return data


def token_of(html: str) -> str:
    match = re.search(r'name="idempotency_token" value="([0-9a-zA-Z]+)"', html)
    assert match, "no idempotency token in the form"
    return match.group(1)


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, name
    option = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(1))
    return option.group(1) if option else ""


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="id_{name}_error"[^>]*>(.*?)</p>', html, re.S)
    assert match, name
    return match.group(1).strip()


@pytest.fixture
def taker(client: Any, world: Any) -> Any:
    client.force_login(world.users["taker_a"])
    return client


# --- the form ----------------------------------------------------------------------------------------------


def test_form_offers_only_the_takers_establishment_and_its_labs(taker: Any, world: Any) -> None:
    response = taker.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    # Establishment A is fixed (the taker has one); lab X is assigned to A, lab Y only to B.
    assert 'type="hidden" name="establishment" value="113100"' in html
    assert "1000000001" in html and "1000000002" not in html
    assert "105100" not in html  # establishment B is never offered
    assert selected(html, "document_type") == "run"
    assert selected(html, "residence") == "13101"  # where the establishment is
    assert selected(html, "sample_type") == ""  # no silent default among several specimens
    assert 'data-scan="1"' in html and "autofocus" in html
    assert "Ctrl" in html  # the shortcut is documented on the page
    assert 'data-nav="registration"' in html


def test_register_then_next_keeps_settings_and_clears_the_person(taker: Any, world: Any) -> None:
    data = form_data(strategy="medical-care", sample_type="throat-swab", tube_code="TUBE-0001")
    response = taker.post(URL, data)
    assert response.status_code == 303
    sample = Sample.objects.get()
    assert response["Location"] == f"{URL}?saved={sample.number}"
    assert sample.channel == Channel.WEB
    assert sample.tube_code == "TUBE-0001"
    assert sample.registered_by == world.users["taker_a"]
    assert sample.patient is not None and sample.patient.given_names == "Rosa"
    world.users["taker_a"].refresh_from_db()
    assert world.users["taker_a"].registration_defaults == {
        "establishment": "113100",
        "laboratory": "1000000001",
        "test": "covid19-pcr",
        "sample_type": "throat-swab",
        "strategy": "medical-care",
    }

    page = taker.get(response["Location"]).content.decode()
    assert str(sample.number) in page and len(str(sample.number)) == 10
    assert selected(page, "strategy") == "medical-care"
    assert selected(page, "sample_type") == "throat-swab"
    assert 'name="given_names"' in page and "Rosa" not in page.split('id="registration-form"')[1]
    assert token_of(page) != data["idempotency_token"]
    try:
        label = reverse("mysamples:label", args=[sample.number])
    except NoReverseMatch:
        label = None
    if label:
        assert label in page


def test_known_patient_is_reused_for_the_next_sample(taker: Any, world: Any) -> None:
    run = fresh_run()
    taker.post(URL, form_data(token="first", document_number=run))
    # The second registration of the same person: typed with dots and a lower-case k where it has one.
    taker.post(URL, form_data(token="second", document_number=run, given_names="Rosa María"))
    assert Sample.objects.count() == 2
    assert Patient.objects.count() == 1
    assert Patient.objects.get().given_names == "Rosa"  # identity stays as first registered


def test_double_submit_registers_once(taker: Any, world: Any) -> None:
    data = form_data(token="abc123")
    first = taker.post(URL, data)
    second = taker.post(URL, data)  # a double click, or a reload of the POST
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Sample.objects.count() == 1
    assert IdempotencyRecord.objects.filter(key="web:abc123").count() == 1


def test_same_token_with_other_content_is_refused_and_nothing_stored(taker: Any, world: Any) -> None:
    taker.post(URL, form_data(token="abc123"))
    response = taker.post(URL, form_data(token="abc123", given_names="Otra"))
    assert response.status_code == 422
    html = response.content.decode()
    assert 'role="alert"' in html
    assert Sample.objects.count() == 1
    assert token_of(html) != "abc123"  # a fresh token: the person may save it as a new sample
    assert 'value="Otra"' in html


def test_refused_registration_keeps_what_was_typed_and_shows_errors_next_to_fields(taker: Any, world: Any) -> None:
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    data = form_data(document_number="12345678-9", birth_date=tomorrow, given_names="", address="Calle 1")
    response = taker.post(URL, data)
    assert response.status_code == 422
    html = response.content.decode()
    assert field_error(html, "document_number")  # wrong RUN check digit
    assert field_error(html, "birth_date")  # in the future
    assert field_error(html, "given_names")  # required
    assert field_error(html, "address") == ""
    assert 'aria-invalid="true"' in html
    assert 'value="12345678-9"' in html and 'value="Calle 1"' in html
    assert token_of(html) == data["idempotency_token"]  # nothing was stored under it: the same form may be sent
    assert not Sample.objects.exists() and not Patient.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_errors_are_translated(client: Any, world: Any) -> None:
    client.force_login(world.users["taker_a"])
    client.cookies["django_language"] = "es"
    html = client.post(URL, form_data(document_number="12345678-9"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert field_error(html, "document_number") == "El dígito verificador del RUN es incorrecto."


# --- live validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "overrides", "expect"),
    [
        ("document_number", {"document_number": "12345678-9"}, "check digit"),
        ("document_number", {"document_number": f"12.345.678-{run_check_digit(12345678)}"}, ""),
        ("birth_date", {"birth_date": "2999-01-01"}, "future"),
        ("birth_date", {"birth_date": "1850-01-01"}, "130 years"),
        ("birth_date", {"birth_date": "31-31-2020"}, "valid date"),
        ("given_names", {"given_names": ""}, "required"),
        ("collected_at", {"collected_at": "2999-01-01T10:00"}, "future"),
        ("phone", {"phone": "12"}, "phone"),
        ("phone", {"phone": "+56 9 8765 4321"}, ""),
        ("email", {"email": "not-an-email"}, "not valid"),
        ("document_issuer", {"document_type": "passport", "document_number": "AB123456"}, "issuing country"),
    ],
)
def test_live_check_of_one_field(taker: Any, field: str, overrides: dict[str, str], expect: str) -> None:
    response = taker.post(
        f"{reverse('registration:check')}?field={field}",
        form_data(**overrides),
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    text = response.content.decode()
    if expect:
        assert expect in text
    else:
        assert text == ""
    assert not Sample.objects.exists()


def test_live_check_speaks_only_of_the_field_asked(taker: Any) -> None:
    data = form_data(given_names="", birth_date="2999-01-01")
    response = taker.post(f"{reverse('registration:check')}?field=address", data, HTTP_HX_REQUEST="true")
    assert response.content == b""


# --- patient look-up ---------------------------------------------------------------------------------------


def _registered_patient(world: Any, run: str) -> Patient:
    patient = patient_input(run=run, given_names="Xiomara", surname="Quintral")
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input(patient=patient))
    assert sample.patient is not None
    return sample.patient


def test_lookup_fills_a_known_patient_and_audits_the_read(taker: Any, world: Any) -> None:
    run = fresh_run()
    patient = _registered_patient(world, run)
    body, dv = run.split("-")
    dotted = f"{int(body):,}".replace(",", ".") + f"-{dv.lower()}"
    before = AuditEntry.objects.count()
    response = taker.post(
        reverse("registration:patient"), form_data(document_number=dotted, given_names=""), HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert 'data-known="1"' in html and 'data-patient-status="known"' in html
    assert 'value="Xiomara"' in html and 'value="Quintral"' in html
    assert 'value="1985-05-17"' in html
    assert AuditEntry.objects.count() == before + 1
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry is not None
    assert (entry.action, entry.object_id) == ("patient.lookup", str(patient.pk))
    assert "Xiomara" not in str(entry.data)


def test_lookup_of_a_chilean_card_qr_code(taker: Any, world: Any) -> None:
    run = fresh_run()
    _registered_patient(world, run)
    qr = f"https://portal.sidiv.registrocivil.cl/docstatus?RUN={run}&type=CEDULA&serial=A1&mrz=X"
    html = taker.post(reverse("registration:patient"), form_data(document_number=qr)).content.decode()
    assert 'data-known="1"' in html


def test_lookup_of_an_unknown_document_leaves_what_was_typed_alone(taker: Any) -> None:
    response = taker.post(reverse("registration:patient"), form_data(given_names="Tipeado"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-patient-status="new"' in html
    assert response["HX-Reswap"] == "none"  # only the status and the message next to the number change
    assert 'id="patient-details"' not in html and "Tipeado" not in html


def test_lookup_with_a_wrong_check_digit_says_so(taker: Any) -> None:
    html = taker.post(reverse("registration:patient"), form_data(document_number="12345678-9")).content.decode()
    assert "check digit" in html or "verificador" in html
    assert "data-patient-status" not in html


def test_patient_of_another_establishment_is_not_revealed(client: Any, world: Any) -> None:
    run = fresh_run()
    _registered_patient(world, run)  # a sample at establishment A
    client.force_login(world.users["taker_b"])
    html = client.post(
        reverse("registration:patient"),
        form_data(establishment="105100", laboratory="1000000002", document_number=run, given_names=""),
    ).content.decode()
    assert "Xiomara" not in html and "Quintral" not in html and 'data-known="1"' not in html
    assert not AuditEntry.objects.filter(action="patient.lookup").exists()


# --- other documents, point-of-care ------------------------------------------------------------------------


def test_passport_with_issuing_country(taker: Any) -> None:
    response = taker.post(
        URL, form_data(document_type="passport", document_number="pe 123456", document_issuer="604", insurance="")
    )
    assert response.status_code == 303, response.content.decode()[:3000]
    patient = Sample.objects.get().patient
    assert patient is not None
    assert (patient.document_number, patient.document_issuer) == ("PE123456", "604")


def test_passport_without_issuing_country_is_refused_next_to_the_field(taker: Any) -> None:
    response = taker.post(URL, form_data(document_type="passport", document_number="AB123456", insurance=""))
    assert response.status_code == 422
    assert "issuing country" in field_error(response.content.decode(), "document_issuer") or field_error(
        response.content.decode(), "document_issuer"
    )


def test_patient_without_document(taker: Any) -> None:
    response = taker.post(URL, form_data(document_type="no-document", document_number="ignored", insurance=""))
    assert response.status_code == 303
    patient = Sample.objects.get().patient
    assert patient is not None and patient.document_number == ""


def test_newborn_through_a_guardian(taker: Any) -> None:
    guardian_run = fresh_run()
    data = form_data(
        document_type="newborn",
        document_number="",
        given_names="Bebé",
        birth_date=timezone.localdate().isoformat(),
        insurance="",
        guardian_document_type="run",
        guardian_document_number=guardian_run,
        guardian_given_names="Madre",
        guardian_paternal_surname="Pérez",
        guardian_birth_date="1990-01-01",
        guardian_sex="F",
    )
    response = taker.post(URL, data)
    assert response.status_code == 303, response.content.decode()[:3000]
    patient = Sample.objects.get().patient
    assert patient is not None
    assert patient.guardian is not None and patient.guardian.document_number == guardian_run


def test_newborn_without_guardian_document_is_refused(taker: Any) -> None:
    data = form_data(
        document_type="newborn",
        document_number="",
        insurance="",
        guardian_document_type="run",
        guardian_given_names="Madre",
    )
    response = taker.post(URL, data)
    assert response.status_code == 422
    assert field_error(response.content.decode(), "guardian_document_number")
    assert not Sample.objects.exists()


def test_antigen_test_is_registered_with_its_result(taker: Any) -> None:
    page = taker.post(reverse("registration:refresh"), form_data(test="covid19-antigen")).content.decode()
    assert (
        'id="result-fields"' in page
        and 'id="result-fields" class="form-grid wide result-fields" hx-swap-oob="true" hidden' not in page
    )
    assert "None (point-of-care test)" in page or 'value=""' in page
    data = form_data(test="covid19-antigen", laboratory="", sample_type="anterior-nares-swab", result="negative")
    response = taker.post(URL, data)
    assert response.status_code == 303, response.content.decode()[:3000]
    sample = Sample.objects.get()
    assert sample.state == SampleState.RESULT
    assert sample.result_value is not None and sample.result_value.code == "negative"
    assert sample.laboratory is None
    assert sample.results.count() == 1


def test_antigen_test_without_result_is_refused(taker: Any) -> None:
    response = taker.post(URL, form_data(test="covid19-antigen", laboratory="", sample_type="anterior-nares-swab"))
    assert response.status_code == 422
    assert field_error(response.content.decode(), "result")


def test_sample_types_follow_the_test(taker: Any) -> None:
    html = taker.post(reverse("registration:refresh"), form_data(test="mpox-pcr")).content.decode()
    assert "lesion-swab" in html and "nasopharyngeal-swab" not in html
    assert 'hx-swap-oob="true"' in html


def test_labs_follow_the_establishment_for_an_administrator(client: Any, world: Any) -> None:
    login_with_second_factor(client, world.users["admin"])
    html_a = client.post(reverse("registration:refresh"), form_data(establishment="113100")).content.decode()
    html_b = client.post(reverse("registration:refresh"), form_data(establishment="105100")).content.decode()
    assert "1000000001" in html_a and "1000000002" not in html_a
    assert "1000000001" in html_b and "1000000002" in html_b
    page = client.get(URL).content.decode()
    assert "<select" in page and 'name="establishment"' in page and "105100" in page


def test_remembered_defaults_that_no_longer_apply_are_ignored(taker: Any, world: Any) -> None:
    user = world.users["taker_a"]
    user.registration_defaults = {"establishment": "105100", "laboratory": "1000000002", "test": "nope"}
    user.save(update_fields=["registration_defaults"])
    html = taker.get(URL).content.decode()
    assert 'name="establishment" value="113100"' in html
    assert selected(html, "laboratory") == "1000000001"


# --- scope and roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["lab_x", "viewer_rm", "citizen"])
@pytest.mark.parametrize("path", ["/register/", "/register/check/", "/register/patient/", "/register/refresh/"])
def test_roles_that_do_not_register_get_404(client: Any, world: Any, persona: str, path: str) -> None:
    login_with_second_factor(client, world.users[persona])
    response = client.post(path, form_data()) if path != URL else client.get(path)
    assert response.status_code == 404
    assert not Sample.objects.exists()


def test_sign_in_required(client: Any, world: Any) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_taker_b_may_not_register_for_establishment_a(client: Any, world: Any) -> None:
    client.force_login(world.users["taker_b"])
    response = client.post(URL, form_data())
    assert response.status_code == 422
    assert not Sample.objects.exists()


def test_confirmation_of_another_establishments_sample_shows_nothing(client: Any, world: Any) -> None:
    sample, _ = services.sample_register(actor=world.actors["taker_a"], data=sample_input())
    client.force_login(world.users["taker_b"])
    html = client.get(f"{URL}?saved={sample.number}").content.decode()
    assert 'id="saved"' not in html and "data-sample-number" not in html


def test_navigation_entry_by_role(client: Any, world: Any) -> None:
    for persona, expected in (("taker_a", True), ("manager_a", True), ("lab_x", False), ("viewer_rm", False)):
        login_with_second_factor(client, world.users[persona])
        html = client.get("/").content.decode()
        assert ('data-nav="registration"' in html) is expected, persona
        client.logout()


# --- queries -----------------------------------------------------------------------------------------------


def test_query_counts_do_not_grow_with_the_samples_stored(
    taker: Any, world: Any, django_assert_max_num_queries: Any
) -> None:
    def registered(count: int) -> None:
        for _ in range(count):
            services.sample_register(actor=world.actors["taker_a"], data=sample_input())

    registered(1)
    # Warm the look-up caches (reference rows), as on any running server.
    taker.get(f"{URL}?saved={Sample.objects.get().number}")
    taker.post(URL, form_data(token="warm"))
    for extra in (1, 25):
        registered(extra)
        last = Sample.objects.order_by("-id").first()
        assert last is not None and last.patient is not None
        with django_assert_max_num_queries(8):
            assert taker.get(f"{URL}?saved={last.number}").status_code == 200
        with django_assert_max_num_queries(20):  # 5 of them savepoints inside the test transaction
            assert taker.post(URL, form_data(token=f"q{extra}")).status_code == 303
        with django_assert_max_num_queries(8):
            taker.post(f"{reverse('registration:check')}?field=given_names", form_data())
        with django_assert_max_num_queries(14):
            taker.post(reverse("registration:patient"), form_data(document_number=last.patient.document_number))


def test_birth_date_is_plausible(taker: Any) -> None:
    old = date(1850, 1, 1).isoformat()
    response = taker.post(URL, form_data(birth_date=old))
    assert response.status_code == 422
    assert field_error(response.content.decode(), "birth_date")
