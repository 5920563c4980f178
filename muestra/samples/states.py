"""Which step is legal from which state. The services consult this table; nothing else decides it."""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from muestra.core.errors import IllegalTransition
from muestra.samples.models import Sample, SampleState

S = SampleState


class Step(StrEnum):
    EDIT = "edit"
    CANCEL = "cancel"
    DISPATCH = "dispatch"
    RECEIVE = "receive"
    REJECT = "reject"
    RETURN = "return"
    FORWARD = "forward"
    DELIVER_RESULT = "deliver_result"
    CORRECT_RESULT = "correct_result"


ALLOWED_FROM: dict[Step, frozenset[str]] = {
    Step.EDIT: frozenset({S.REGISTERED, S.DISPATCHED}),  # until the lab receives it
    Step.CANCEL: frozenset({S.REGISTERED}),  # only before dispatch
    Step.DISPATCH: frozenset({S.REGISTERED}),
    # A tube may arrive without its manifest having been dispatched on screen: the lab can still receive it.
    Step.RECEIVE: frozenset({S.REGISTERED, S.DISPATCHED}),
    Step.REJECT: frozenset({S.REGISTERED, S.DISPATCHED, S.RECEIVED}),
    Step.RETURN: frozenset({S.DISPATCHED, S.RECEIVED}),
    Step.FORWARD: frozenset({S.DISPATCHED, S.RECEIVED}),
    # From REGISTERED/DISPATCHED the assigned lab's result implies its receipt (see result_deliver).
    Step.DELIVER_RESULT: frozenset({S.REGISTERED, S.DISPATCHED, S.RECEIVED}),
    Step.CORRECT_RESULT: frozenset({S.RESULT}),
}

STEP_LABELS = {
    Step.EDIT: _("edit"),
    Step.CANCEL: _("cancel"),
    Step.DISPATCH: _("dispatch"),
    Step.RECEIVE: _("receive"),
    Step.REJECT: _("reject"),
    Step.RETURN: _("return"),
    Step.FORWARD: _("forward"),
    Step.DELIVER_RESULT: _("deliver a result to"),
    Step.CORRECT_RESULT: _("correct the result of"),
}


def ensure_allowed(sample: Sample, step: Step) -> None:
    if sample.state not in ALLOWED_FROM[step]:
        raise IllegalTransition(
            _("Cannot %(step)s sample %(number)s: it is %(state)s.")
            % {
                "step": STEP_LABELS[step],
                "number": sample.number,
                "state": SampleState(sample.state).label.lower(),
            },
            field="state",
        )
