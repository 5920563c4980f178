"""Catalogue codes that program logic relies on, so code never spells a slug by hand.

The rows themselves live in `data/catalog_v1.json` (a test checks that every code here exists there). Only codes
with behaviour attached belong here; everything else is just data an administrator may add or retire.
"""

from __future__ import annotations

from typing import Final

# Result values.
RESULT_POSITIVE: Final = "positive"
RESULT_NEGATIVE: Final = "negative"
RESULT_INDETERMINATE: Final = "indeterminate"
RESULT_UNSATISFACTORY: Final = "unsatisfactory"
RESULT_INCONCLUSIVE: Final = "inconclusive"
# What each member of a positive pool receives: never "positive", always an individual re-test.
RESULT_RETEST_NEEDED: Final = "retest-needed"

# Tests.
TEST_COVID19_PCR: Final = "covid19-pcr"
TEST_COVID19_ANTIGEN: Final = "covid19-antigen"
TEST_MPOX_PCR: Final = "mpox-pcr"

# Diseases.
DISEASE_COVID19: Final = "covid19"
DISEASE_MPOX: Final = "mpox"

# Strategies: the national platform's default when none is given ("Sin Estrategia").
DEFAULT_STRATEGY: Final = "no-strategy"
MASS_SCREENING_STRATEGY: Final = "community-screening"

# Identity documents.
DOCUMENT_RUN: Final = "run"
DOCUMENT_CCCD: Final = "cccd"
DOCUMENT_CMND: Final = "cmnd"
DOCUMENT_PASSPORT: Final = "passport"
DOCUMENT_NONE: Final = "no-document"
DOCUMENT_NEWBORN: Final = "newborn"
