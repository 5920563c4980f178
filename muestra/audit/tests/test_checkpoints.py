"""Checkpoints: the audit trail's head signed and kept outside the database, so entries cut from the end of the
chain are found even when whoever cut them also rewrote the head row."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from muestra.audit.models import AuditEntry, AuditHead
from muestra.audit.services import audit_checkpoint, audit_verify, checkpoint_read
from muestra.demo.builders import sample_in_state
from muestra.samples.models import SampleState

pytestmark = pytest.mark.django_db


def _write_samples(world, count: int = 2) -> None:
    for _ in range(count):
        sample_in_state(SampleState.RESULT, taker=world.actors["taker_a"], lab=world.actors["lab_x"])


def _checkpoint_file(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoints.txt"
    out = StringIO()
    call_command("audit_checkpoint", "--append", str(path), stdout=out)
    assert out.getvalue().strip() == path.read_text().splitlines()[-1]  # printed alone on its line, and kept
    return path


def _verify(path: Path) -> str:
    out = StringIO()
    call_command("audit_verify", "--checkpoints", str(path), stdout=out)
    return out.getvalue()


def _verify_error(path: Path) -> str:
    with pytest.raises(CommandError) as info:
        call_command("audit_verify", "--checkpoints", str(path), stdout=StringIO())
    return str(info.value)


def _cut_tail_and_rewrite_head(keep: int) -> None:
    """What someone with write access to the database would do to hide the last entries: delete them and point the
    head at the new last entry, so the chain alone still verifies."""
    ids = list(AuditEntry.objects.order_by("pk").values_list("pk", flat=True))
    AuditEntry.objects.filter(pk__in=ids[keep:]).delete()
    last = AuditEntry.objects.get(pk=ids[keep - 1])
    AuditHead.objects.filter(pk=1).update(last_entry_id=last.pk, last_hash=last.hash)


def test_a_checkpoint_holds_the_head_it_was_taken_at(world):
    _write_samples(world)
    head = AuditHead.objects.get(pk=1)
    checkpoint = checkpoint_read(audit_checkpoint().token())
    assert (checkpoint.entry_id, checkpoint.hash) == (head.last_entry_id, head.last_hash)


def test_an_intact_trail_verifies_against_its_checkpoints(world, tmp_path):
    _write_samples(world)
    path = _checkpoint_file(tmp_path)
    _write_samples(world)  # the trail goes on growing after a checkpoint
    _checkpoint_file(tmp_path)
    assert "2 checkpoints held" in _verify(path)


def test_tail_cut_with_the_head_rewritten_passes_the_chain_but_not_the_checkpoints(world, tmp_path):
    _write_samples(world)
    keep = AuditEntry.objects.count()
    _write_samples(world)
    path = _checkpoint_file(tmp_path)
    checkpointed = checkpoint_read(path.read_text().splitlines()[-1]).entry_id
    _cut_tail_and_rewrite_head(keep)
    assert audit_verify()[1] is None  # the chain alone cannot see it: the reason checkpoints exist
    message = _verify_error(path)
    assert f"broken at entry {checkpointed}" in message
    assert "no longer in the chain" in message


def test_an_entry_rewritten_with_a_consistent_chain_is_caught_by_the_checkpoint(world, tmp_path):
    """Entries cut and a forged entry appended in their place under the same id: the hash differs."""
    _write_samples(world)
    path = _checkpoint_file(tmp_path)
    checkpoint = checkpoint_read(path.read_text().strip())
    _checked, broken = audit_verify(checkpoints=[type(checkpoint)(checkpoint.entry_id, "f" * 64, checkpoint.at)])
    assert broken is not None and broken.entry_id == checkpoint.entry_id
    assert "another hash" in broken.problem


def test_an_altered_or_foreign_checkpoint_line_is_refused_by_its_line_number(world, tmp_path, settings):
    _write_samples(world)
    path = _checkpoint_file(tmp_path)
    token = path.read_text().strip()
    entry_id = checkpoint_read(token).entry_id
    # The id is readable in the line; raising it (to hide a cut) breaks the signature.
    forged = re.sub(rf"\b{entry_id}\b", str(entry_id - 1), token, count=1)
    assert forged != token
    path.write_text(f"# checkpoints of the demo\n{token}\n\n{forged}\n")
    assert "Line 4" in _verify_error(path)
    settings.SECRET_KEY = "another installation's key"
    path.write_text(token + "\n")
    assert "Line 1" in _verify_error(path)


def test_a_missing_checkpoints_file_is_a_clear_error(db, tmp_path):
    assert "Cannot read the checkpoints file" in _verify_error(tmp_path / "nowhere.txt")


def test_a_checkpoint_of_an_empty_trail_holds_nothing(db, tmp_path):
    path = _checkpoint_file(tmp_path)
    assert checkpoint_read(path.read_text().strip()).entry_id == 0
    assert "1 checkpoints held" in _verify(path)


def test_checkpoints_signed_before_a_key_rotation_verify_with_the_old_key_as_fallback(world, tmp_path, settings):
    _write_samples(world)
    path = _checkpoint_file(tmp_path)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the new key after rotation", [old]
    assert "1 checkpoints held" in _verify(path)
