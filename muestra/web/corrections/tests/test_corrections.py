# mypy: disable-error-code="union-attr"
"""The national administrator's correction-request screen: the pending list, authorise or decline with a note,
404 for everyone else, the navigation entry with its count, bounded queries whatever the row count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conftest import login_with_second_factor
from muestra.demo.builders import sample_in_state
from muestra.samples import services
from muestra.samples.models import CorrectionAuthorization, CorrectionRequest, Result, Sample, SampleState
from muestra.samples.tests.support import assert_unchanged, db_state

LIST = reverse("corrections:list")


def client_for(world: Any, name: str) -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    if name in {"taker_a", "taker_b", "citizen"}:
        c.force_login(world.users[name])
    else:
        login_with_second_factor(c, world.users[name])
    return c


def late_request(world: Any, reason: str = "Transcription error") -> CorrectionRequest:
    sample = sample_in_state(SampleState.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])
    Result.objects.filter(sample=sample).update(entered_at=timezone.now() - timedelta(days=10))
    request, _ = services.correction_request_create(
        actor=world.actors["lab_x"], sample_id=sample.pk, proposed_value="positive", reason=reason
    )
    return request


@pytest.fixture
def admin(world):
    return client_for(world, "admin")


def test_pending_list_and_navigation_count(world, admin):
    cr = late_request(world)
    home = admin.get("/").content.decode()
    assert 'data-nav="corrections"' in home and "Correction requests (1)" in home
    page = admin.get(LIST).content.decode()
    assert str(cr.sample.number) in page and "Laboratorio X" in page
    assert "Negative" in page and "Positive" in page and "Transcription error" in page
    assert reverse("corrections:decide", args=[cr.pk]) in page
    assert 'data-nav="corrections"' not in client_for(world, "lab_x").get("/").content.decode()


def test_admin_authorises_then_the_lab_corrects_once(world, admin):
    cr = late_request(world)
    url = reverse("corrections:decide", args=[cr.pk])
    assert "Authorise one correction" in admin.get(url).content.decode()
    response = admin.post(url, {"decision": "authorise", "note": "Confirmed by phone"})
    assert response.status_code == 302
    cr.refresh_from_db()
    assert cr.state == CorrectionRequest.State.AUTHORISED and cr.decision_note == "Confirmed by phone"
    assert CorrectionAuthorization.objects.filter(sample=cr.sample, used_at__isnull=True).count() == 1

    lab = client_for(world, "lab_x")
    sample_url = reverse("lab:sample", args=[cr.sample.number])
    assert 'id="action-correct"' in lab.get(sample_url).content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    lab.post(
        sample_url,
        {
            "action": "correct",
            "correct-value": "positive",
            "correct-reason": "Authorised",
            "correct-report": SimpleUploadedFile("r.pdf", b"%PDF-1.4 fixed\n%%EOF", "application/pdf"),
        },
    )
    assert Sample.objects.get(pk=cr.sample_id).result_value.code == "positive"
    assert 'id="action-request"' in lab.get(sample_url).content.decode()  # the authorisation was used
    assert "Decided" in admin.get(LIST + "?tab=decided").content.decode()


def test_decline_needs_a_note_shown_next_to_the_field(world, admin):
    cr = late_request(world)
    url = reverse("corrections:decide", args=[cr.pk])
    before = db_state(cr.sample_id)
    response = admin.post(url, {"decision": "decline", "note": ""})
    page = response.content.decode()
    assert response.status_code == 422 and 'id="id_note_error"' in page and "declined" in page
    assert_unchanged(before, cr.sample_id)
    assert CorrectionRequest.objects.get(pk=cr.pk).state == CorrectionRequest.State.PENDING
    assert admin.post(url, {"decision": "maybe"}).status_code == 422
    admin.post(url, {"decision": "decline", "note": "The report is right"})
    assert CorrectionRequest.objects.get(pk=cr.pk).state == CorrectionRequest.State.DECLINED
    assert "Authorise one correction" not in admin.get(url).content.decode()


@pytest.mark.parametrize("who", ["lab_x", "lab_y", "taker_a", "viewer_rm", "citizen"])
def test_only_national_admins_open_the_screen(world, who):
    cr = late_request(world)
    c = client_for(world, who)
    assert c.get(LIST).status_code == 404
    assert c.get(reverse("corrections:decide", args=[cr.pk])).status_code == 404
    assert c.post(reverse("corrections:decide", args=[cr.pk]), {"decision": "authorise"}).status_code == 404
    assert CorrectionRequest.objects.get(pk=cr.pk).state == CorrectionRequest.State.PENDING


def test_a_missing_request_is_404(admin, world):
    assert admin.get(reverse("corrections:decide", args=[10**6])).status_code == 404


def test_list_queries_do_not_grow_with_rows(world, admin):
    late_request(world)
    admin.get(LIST)
    with CaptureQueriesContext(connection) as few:
        admin.get(LIST)
    for i in range(6):
        late_request(world, reason=f"reason {i}")
    with CaptureQueriesContext(connection) as many:
        page = admin.get(LIST).content.decode()
    assert page.count("reason ") >= 6
    assert len(many.captured_queries) == len(few.captured_queries)
