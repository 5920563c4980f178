"""Sent after a transaction that recorded sample events has committed. Outbound integrations (webhooks,
notifications) listen here, so nothing leaves the platform for a change that was rolled back."""

from django.dispatch import Signal

#: kwargs: event_ids (list[int])
sample_events_committed = Signal()
