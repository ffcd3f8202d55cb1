"""`GET /api/v1/tenants/{t}/billing/usage`: the usage this billing period per meter, with the
plan's rates, its cost so far, a daily series per meter, the base price and the total
(`billing.usage`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.schema import errors
from controlplane.api.views import TenantAPIView
from tenants.models import Role

from .. import usage
from ..models import Meter


class DailyUsageOutput(serializers.Serializer[Any]):
    day = serializers.DateField(help_text="A UTC day.")
    quantity = serializers.CharField(help_text="The meter's quantity that day (a decimal).")


class MeterUsageOutput(serializers.Serializer[Any]):
    meter = serializers.ChoiceField(Meter.choices)
    name = serializers.CharField(help_text="The meter as people read it (`Read units`...).")
    unit = serializers.CharField(help_text="What `quantity` counts (`read units`, `GB-hours`...).")
    quantity = serializers.CharField(
        help_text="This period so far, a decimal: the sum of the hourly values the meter events "
        "carry (6 places each)."
    )
    rate_cents = serializers.CharField(
        help_text="The plan's price per unit in cents, a decimal (Stripe's `unit_amount_decimal`"
        "); 0 on a plan without a monthly price."
    )
    cost_cents = serializers.CharField(
        help_text="quantity x rate, in cents, a decimal to 4 places (the invoice rounds each "
        "line to a whole cent)."
    )
    daily = DailyUsageOutput(many=True, help_text="Every UTC day of the period up to today.")


class BillingUsageOutput(serializers.Serializer[Any]):
    billing_enabled = serializers.BooleanField(
        help_text="False: this platform runs without billing; the usage is shown at the plan's "
        "rates and nothing is charged."
    )
    plan = serializers.CharField()
    plan_name = serializers.CharField()
    currency = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    period_source = serializers.ChoiceField(
        ["subscription", "calendar_month"],
        help_text="`subscription`: the subscription's current period as Stripe last described "
        "it; `calendar_month`: no current subscription period, the UTC month.",
    )
    as_of = serializers.DateTimeField(help_text="The usage counts up to this moment.")
    base_price_cents = serializers.IntegerField(help_text="The plan's monthly price.")
    usage_cents = serializers.CharField(help_text="The meters' costs, a decimal to 4 places.")
    total_cents = serializers.CharField(help_text="Base price + usage so far, a decimal.")
    meters = MeterUsageOutput(many=True)


class BillingUsageApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="billing_usage",
        tags=["billing"],
        description="The tenant's usage this billing period (the subscription's current period, "
        "else the UTC calendar month) per meter — read units, write units, storage GB-hours, "
        "dedicated cluster size-hours — computed as the hourly meter events are, with the "
        "plan's rate, the cost so far and a daily series; the plan's base price and the total "
        "so far. Answers with billing off too (the usage at the plan's rates, "
        "`billing_enabled: false`).",
        responses={200: BillingUsageOutput, **errors(401, 403, 404)},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return Response(BillingUsageOutput(usage.usage_this_period(tenant=self.tenant)).data)
