"""Where instance prices come from: the input's overrides, the bundled table, the Pricing API.

Every source answers one question, ``price_per_hour(instance_type, region)``, in USD per
instance-hour, or ``None`` when it does not know. ``ChainedPrices`` asks its sources in order;
``resolve_prices`` always asks the input's ``prices`` first, so a user's figure beats every table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from rightsizer.schema import BenchmarkInput

log = logging.getLogger(__name__)

PRICES_FILE = "data/prices.json"  # package data of "rightsizer" (see pyproject.toml)
# The Price List API is served from a few regions only; us-east-1 answers for all regions.
PRICING_API_REGION = "us-east-1"
SAGEMAKER_SERVICE_CODE = "AmazonSageMaker"
# Usage types of real-time hosting look like "USE1-Host:ml.m5.large"; "Hst:" is accepted too.
HOSTING_USAGE_MARKERS = ("Host:", "Hst:")


class PriceNotFoundError(ValueError):
    """Some instance types have no price; the message names each and says how to add one."""

    def __init__(self, missing: Sequence[str], region: str) -> None:
        self.missing = list(missing)
        self.region = region
        example = ", ".join(f'"{t}": 1.23' for t in self.missing[:2])
        super().__init__(
            f"no price for {', '.join(self.missing)} in {region}: not in the input's \"prices\", "
            f"nor in the bundled price table, nor from the Pricing API where used. "
            f'Add USD per instance-hour to the input, e.g. "prices": {{{example}}} '
            "(see the SageMaker pricing page, On-Demand, Real-Time Inference)."
        )


@runtime_checkable
class PriceSource(Protocol):
    def price_per_hour(self, instance_type: str, region: str) -> float | None: ...


class OverridePrices:
    """The input's ``prices``: one figure per type, whatever the region."""

    def __init__(self, prices: Mapping[str, float]) -> None:
        self.prices = dict(prices)

    def price_per_hour(self, instance_type: str, region: str) -> float | None:
        return self.prices.get(instance_type)


class BundledPrices:
    """The table shipped in ``rightsizer/data/prices.json`` (see its ``notes`` for its method)."""

    def __init__(self, table: Mapping[str, Any] | None = None) -> None:
        self._given = table

    @cached_property
    def table(self) -> Mapping[str, Any]:
        if self._given is not None:
            return self._given
        text = resources.files("rightsizer").joinpath(PRICES_FILE).read_text("utf-8")
        table: Mapping[str, Any] = json.loads(text)
        return table

    @property
    def as_of(self) -> str:
        return str(self.table.get("as_of", "unknown"))

    @property
    def source(self) -> str:
        return str(self.table.get("source", "unknown"))

    @property
    def regions(self) -> list[str]:
        return sorted(self.table.get("regions", {}))

    def price_per_hour(self, instance_type: str, region: str) -> float | None:
        price = self.table.get("regions", {}).get(region, {}).get(instance_type)
        return float(price) if price is not None else None

    def is_estimate(self, instance_type: str, region: str) -> bool:
        """True when the figure was derived (multiplier, size rule), not quoted."""
        return instance_type not in self.table.get("quoted", {}).get(region, [])


class PricingApiPrices:
    """The AWS Price List API (``pricing:GetProducts``): on-demand real-time hosting, USD.

    Needs network and the ``pricing:GetProducts`` permission; the AWS side uses it. Answers are
    cached per (type, region), misses included, so a run asks at most once per type.
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._cache: dict[tuple[str, str], float | None] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("pricing", region_name=PRICING_API_REGION)
        return self._client

    def price_per_hour(self, instance_type: str, region: str) -> float | None:
        key = (instance_type, region)
        if key not in self._cache:
            self._cache[key] = self._lookup(instance_type, region)
        return self._cache[key]

    def _lookup(self, instance_type: str, region: str) -> float | None:
        filters = [
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"},
        ]
        candidates: dict[str, float] = {}
        # Results are paged; the old tool read the first product of the first page only.
        paginator = self.client.get_paginator("get_products")
        for page in paginator.paginate(ServiceCode=SAGEMAKER_SERVICE_CODE, Filters=filters):
            for raw in page.get("PriceList", []):
                product = json.loads(raw) if isinstance(raw, str) else raw
                usage = _hosting_usage_type(product, instance_type, region)
                price = _on_demand_usd_per_hour(product)
                if usage is not None and price is not None:
                    candidates[usage] = price
        return _pick(candidates, instance_type, region)


class ChainedPrices:
    """Asks each source in turn; the first figure found wins."""

    def __init__(self, sources: Iterable[PriceSource]) -> None:
        self.sources = list(sources)

    def price_per_hour(self, instance_type: str, region: str) -> float | None:
        for source in self.sources:
            price = source.price_per_hour(instance_type, region)
            if price is not None:
                return price
        return None


def resolve_prices(
    benchmark_input: BenchmarkInput, source: PriceSource | None = None
) -> dict[str, float]:
    """USD per instance-hour for every type in the input, or one error naming all missing ones.

    The input's ``prices`` are asked first, then ``source`` (default: the bundled table).
    """
    chain = ChainedPrices([OverridePrices(benchmark_input.prices), source or BundledPrices()])
    found: dict[str, float] = {}
    missing: list[str] = []
    for spec in benchmark_input.specs:
        price = chain.price_per_hour(spec.instance_type, benchmark_input.region)
        if price is None or price <= 0:
            missing.append(spec.instance_type)
        else:
            found[spec.instance_type] = price
    if missing:
        raise PriceNotFoundError(missing, benchmark_input.region)
    return found


# --- Price List document parsing ----------------------------------------------------------------


def _hosting_usage_type(product: Mapping[str, Any], instance_type: str, region: str) -> str | None:
    """The usage type when the product is real-time hosting of this exact type and region."""
    attributes = product.get("product", {}).get("attributes", {})
    if attributes.get("instanceName", instance_type) != instance_type:
        return None
    if attributes.get("regionCode", region) != region:
        return None
    usage = str(attributes.get("usagetype", ""))
    # Async inference, batch transform etc. have other usage types ("AsyncInf:", "Tsform:").
    if not usage.endswith(instance_type) or not any(m in usage for m in HOSTING_USAGE_MARKERS):
        return None
    return usage


def _on_demand_usd_per_hour(product: Mapping[str, Any]) -> float | None:
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            if str(dimension.get("unit", "")).lower() not in ("hrs", "hours", "hour"):
                continue
            usd = dimension.get("pricePerUnit", {}).get("USD")
            # A zero price is a free-tier or placeholder dimension, never the hosting rate.
            if usd is not None and float(usd) > 0:
                return float(usd)
    return None


def _pick(candidates: Mapping[str, float], instance_type: str, region: str) -> float | None:
    if not candidates:
        return None
    prices = set(candidates.values())
    if len(prices) == 1:
        return prices.pop()
    # Several hosting products disagree: the most expensive one never under-states cost.
    log.warning(
        "Pricing API: %d different hosting prices for %s in %s (%s); using the highest",
        len(prices), instance_type, region, candidates,
    )
    return max(prices)
