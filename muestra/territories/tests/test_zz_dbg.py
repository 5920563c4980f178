import pytest
from django.db import connection
from muestra.territories.models import Territory
@pytest.mark.django_db
def test_x():
    print("NAME", connection.settings_dict["NAME"], Territory.objects.count())
