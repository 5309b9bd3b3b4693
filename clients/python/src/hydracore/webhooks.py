"""Checks that a webhook delivery came from HydraCore (Standard Webhooks)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

#: How far a delivery's `webhook-timestamp` may be from now: older ones are
#: refused as replays.
TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The delivery is not signed with the secret, or too old or new."""


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Raises `WebhookVerificationError` unless the delivery is signed with
    `secret` (`whsec_...`, as the webhook's registration answered it).

    `body` is the raw request body, before any JSON parsing; `headers` any
    mapping of the request's headers (names in any case). Any `v1,` signature
    of the space-separated list may match (a rotation sends one)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing}") from None
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not whsec_ and base64") from None
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    for signature in signatures.split():
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value):
            return
    raise WebhookVerificationError("no signature matches")
