"""Webhook delivery: signed POSTs of alert events from the PostgreSQL outbox, with retries and an attempt log."""

from __future__ import annotations

from workers.webhooks.delivery import WebhookDeliveryWorker
from workers.webhooks.settings import WebhookSettings

__all__ = ["WebhookDeliveryWorker", "WebhookSettings"]
