from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from muestra.accounts.models import User
from muestra.demo.world import build_demo_world


def _collected_at_shown(html: str) -> datetime:
    match = re.search(r'name="collected_at" value="([0-9T:-]+)"', html) or re.search(
        r'value="([0-9T:-]+)"[^>]*name="collected_at"', html
    )
    assert match, "the form shows no collection time"
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M")


def test_the_form_speaks_the_establishments_local_time(client, world):
    """A Vietnamese site reads and types Vietnamese local time, a Chilean site Chilean time, on the same server."""
    build_demo_world()
    now = timezone.now()
    for username, zone in (("taker_vn", "Asia/Ho_Chi_Minh"), ("taker_a", "America/Santiago")):
        client.force_login(User.objects.get(username=username))
        shown = _collected_at_shown(client.get("/register/").content.decode())
        expected = now.astimezone(ZoneInfo(zone)).replace(tzinfo=None, second=0, microsecond=0)
        assert abs(shown - expected) <= timedelta(minutes=2), (username, shown, expected)
