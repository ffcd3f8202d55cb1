"""`POST /api/v1/billing/stripe/webhook`: Stripe's events (no session, no key: the
`Stripe-Signature` header is the credential, verified by the real `stripe` library)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import parsers, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.schema import errors
from controlplane.api.views import BaseAPIView

from .. import webhooks


class StripeEventBody(parsers.BaseParser):
    """The body exactly as Stripe sent it: the signature covers its bytes, not a re-encoding."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read() if stream is not None else b""


# What the endpoint reads of Stripe's event (the v1 snapshot payload); the rest is stored as sent.
STRIPE_EVENT_SCHEMA = {
    "type": "object",
    "description": "A Stripe event, exactly as Stripe signed it.",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string", "maxLength": 255, "description": "`evt_...`"},
        "object": {"type": "string", "maxLength": 20, "enum": ["event"]},
        "type": {"type": "string", "maxLength": 100, "description": "e.g. `invoice.paid`."},
        "created": {"type": "integer", "description": "When Stripe made it (Unix seconds)."},
        "livemode": {"type": "boolean"},
        "data": {
            "type": "object",
            "required": ["object"],
            "properties": {
                "object": {
                    "type": "object",
                    "description": "The Stripe object the event is about.",
                    "properties": {"id": {"type": "string", "maxLength": 255}},
                },
            },
        },
    },
}


class WebhookOutput(serializers.Serializer[Any]):
    received = serializers.BooleanField()
    id = serializers.CharField(help_text="The event's id.")
    type = serializers.CharField()
    duplicate = serializers.BooleanField(
        help_text="True: this event was processed before (a redelivery); nothing changed."
    )
    outcome = serializers.CharField(help_text="What the event changed, or why nothing.")


class StripeWebhookApi(BaseAPIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    parser_classes = [StripeEventBody]

    @extend_schema(
        operation_id="billing_stripe_webhook",
        tags=["billing"],
        description="Stripe's webhook endpoint (configure it in Stripe's dashboard, or forward "
        "with `stripe listen --forward-to .../api/v1/billing/stripe/webhook`). The "
        "`Stripe-Signature` header (Stripe's; the only credential) is verified against "
        "`STRIPE_WEBHOOK_SECRET` within "
        "`STRIPE_WEBHOOK_TOLERANCE_SECONDS`; an unsigned, wrongly signed or stale event is "
        "`400 invalid_signature` and changes nothing. Each event is stored by its id and "
        "processed exactly once (a redelivery answers 200 with `duplicate: true`), in the "
        "object's own order (an older state arriving later changes nothing).",
        request={"application/json": STRIPE_EVENT_SCHEMA},
        responses={200: WebhookOutput, **errors(400, 409)},
    )
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, bytes) else b""
        got = webhooks.receive(body, request.headers.get("Stripe-Signature", ""))
        return Response({"received": True, "id": got.id, "type": got.type,
                         "duplicate": got.duplicate, "outcome": got.outcome})  # fmt: skip
