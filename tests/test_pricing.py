"""Price sources: overrides, the bundled table, the Pricing API (botocore Stubber), chaining."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rightsizer.pricing import (
    BundledPrices,
    ChainedPrices,
    OverridePrices,
    PriceNotFoundError,
    PriceSource,
    PricingApiPrices,
    resolve_prices,
)
from rightsizer.schema import BenchmarkInput

REQUIRED_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"]


def make_input(
    types: list[str], prices: dict[str, float] | None = None, region: str = "us-east-1"
) -> BenchmarkInput:
    return BenchmarkInput.model_validate(
        {
            "model": {"kind": "existing", "name": "my-model"},
            "instance_types": types,
            "payloads": [{"body": "{}", "content_type": "application/json"}],
            "traffic": {"min_rps": 1, "max_rps": 10},
            "prices": prices or {},
            "region": region,
        }
    )


# --- bundled table ------------------------------------------------------------------------------


def test_bundled_table_has_provenance() -> None:
    table = BundledPrices()
    assert table.as_of >= "2026-01-01"
    assert "Real-Time Inference" in table.source
    assert table.table["notes"]


@pytest.mark.parametrize("region", REQUIRED_REGIONS)
def test_bundled_table_covers_common_types(region: str) -> None:
    table = BundledPrices()
    for instance_type in ["ml.t2.medium", "ml.m5.large", "ml.c5.xlarge", "ml.g4dn.xlarge",
                          "ml.g5.xlarge", "ml.inf2.xlarge", "ml.r5.large", "ml.c7i.4xlarge"]:
        price = table.price_per_hour(instance_type, region)
        assert price is not None and 0 < price < 100, (instance_type, region)


def test_bundled_lookups() -> None:
    table = BundledPrices()
    assert table.price_per_hour("ml.c5.xlarge", "us-east-1") == pytest.approx(0.204)
    assert table.price_per_hour("ml.m5.xlarge", "eu-west-1") == pytest.approx(0.257)
    assert table.price_per_hour("ml.c5.xlarge", "mars-north-1") is None
    assert table.price_per_hour("ml.nope.xlarge", "us-east-1") is None


def test_bundled_marks_estimates() -> None:
    table = BundledPrices()
    assert not table.is_estimate("ml.c5.xlarge", "us-east-1")
    assert not table.is_estimate("ml.m5.xlarge", "eu-west-1")
    assert table.is_estimate("ml.c5.xlarge", "eu-central-1")
    assert table.is_estimate("ml.m7i.large", "us-east-1")


def test_bundled_prices_grow_with_size() -> None:
    table = BundledPrices()
    for family in ["ml.m5", "ml.c5", "ml.g4dn", "ml.g5"]:
        sizes = [f"{family}.{s}" for s in ("xlarge", "2xlarge", "4xlarge")]
        prices = [table.price_per_hour(t, "us-east-1") for t in sizes]
        assert prices == sorted(prices), family


def test_every_source_is_a_price_source() -> None:
    for source in [OverridePrices({}), BundledPrices(), PricingApiPrices(client=object()),
                   ChainedPrices([])]:
        assert isinstance(source, PriceSource)


# --- resolve_prices -----------------------------------------------------------------------------


def test_override_beats_bundled_table() -> None:
    bi = make_input(["ml.c5.xlarge", "ml.m5.xlarge"], prices={"ml.c5.xlarge": 0.15})
    assert resolve_prices(bi) == {"ml.c5.xlarge": 0.15, "ml.m5.xlarge": pytest.approx(0.23)}


def test_override_beats_any_given_source() -> None:
    bi = make_input(["ml.c5.xlarge"], prices={"ml.c5.xlarge": 0.15})
    assert resolve_prices(bi, OverridePrices({"ml.c5.xlarge": 9.0})) == {"ml.c5.xlarge": 0.15}


def test_missing_price_names_each_type_and_the_fix() -> None:
    bi = make_input(["ml.c5.xlarge", "ml.zz1.xlarge", "ml.zz2.large"])
    with pytest.raises(PriceNotFoundError) as info:
        resolve_prices(bi)
    message = str(info.value)
    assert "ml.zz1.xlarge" in message and "ml.zz2.large" in message
    assert "ml.c5.xlarge" not in message
    assert '"prices"' in message and "us-east-1" in message
    assert info.value.missing == ["ml.zz1.xlarge", "ml.zz2.large"]


def test_unknown_region_needs_overrides() -> None:
    with pytest.raises(PriceNotFoundError, match="sa-east-1"):
        resolve_prices(make_input(["ml.c5.xlarge"], region="sa-east-1"))
    bi = make_input(["ml.c5.xlarge"], prices={"ml.c5.xlarge": 0.3}, region="sa-east-1")
    assert resolve_prices(bi) == {"ml.c5.xlarge": 0.3}


def test_chain_first_answer_wins() -> None:
    chain = ChainedPrices([OverridePrices({"a": 1.0}), OverridePrices({"a": 2.0, "b": 3.0})])
    assert chain.price_per_hour("a", "us-east-1") == 1.0
    assert chain.price_per_hour("b", "us-east-1") == 3.0
    assert chain.price_per_hour("c", "us-east-1") is None


# --- Pricing API --------------------------------------------------------------------------------


def product(instance_type: str, region: str, usage: str, usd: str) -> str:
    return json.dumps(
        {
            "product": {
                "productFamily": "ML Instance",
                "attributes": {
                    "instanceName": instance_type,
                    "regionCode": region,
                    "component": "Hosting",
                    "usagetype": usage,
                },
            },
            "terms": {
                "OnDemand": {
                    "SKU.TERM": {
                        "priceDimensions": {
                            "SKU.TERM.DIM": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}
                        }
                    }
                }
            },
        }
    )


def expected_params(instance_type: str, region: str, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ServiceCode": "AmazonSageMaker",
        "Filters": [
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"},
        ],
    }
    if token:
        params["NextToken"] = token
    return params


@pytest.fixture
def pricing_client():
    client = boto3.client(
        "pricing", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_pricing_api_reads_every_page(pricing_client) -> None:
    client, stubber = pricing_client
    # Page 1 holds only other products (async inference, a zero-priced dimension);
    # the hosting price is on page 2: a reader of the first page alone finds nothing.
    stubber.add_response(
        "get_products",
        {
            "PriceList": [
                product("ml.c5.xlarge", "eu-west-1", "EU-AsyncInf:ml.c5.xlarge", "0.5"),
                product("ml.c5.xlarge", "eu-west-1", "EU-Host:ml.c5.xlarge", "0"),
            ],
            "NextToken": "page-2",
        },
        expected_params("ml.c5.xlarge", "eu-west-1"),
    )
    stubber.add_response(
        "get_products",
        {"PriceList": [product("ml.c5.xlarge", "eu-west-1", "EU-Host:ml.c5.xlarge", "0.2280")]},
        expected_params("ml.c5.xlarge", "eu-west-1", "page-2"),
    )
    api = PricingApiPrices(client)
    assert api.price_per_hour("ml.c5.xlarge", "eu-west-1") == pytest.approx(0.228)
    # Cached: a second ask makes no call (the Stubber would fail on an unexpected one).
    assert api.price_per_hour("ml.c5.xlarge", "eu-west-1") == pytest.approx(0.228)


def test_pricing_api_unknown_type_is_none_and_cached(pricing_client) -> None:
    client, stubber = pricing_client
    stubber.add_response(
        "get_products", {"PriceList": []}, expected_params("ml.nope.xlarge", "us-east-1")
    )
    api = PricingApiPrices(client)
    assert api.price_per_hour("ml.nope.xlarge", "us-east-1") is None
    assert api.price_per_hour("ml.nope.xlarge", "us-east-1") is None


def test_pricing_api_accepts_hst_usage_types(pricing_client) -> None:
    client, stubber = pricing_client
    stubber.add_response(
        "get_products",
        {"PriceList": [product("ml.m5.large", "us-west-2", "USW2-Hst:ml.m5.large", "0.115")]},
        expected_params("ml.m5.large", "us-west-2"),
    )
    assert PricingApiPrices(client).price_per_hour("ml.m5.large", "us-west-2") == 0.115


def test_pricing_api_behind_overrides_in_a_chain(pricing_client) -> None:
    client, stubber = pricing_client
    stubber.add_response(
        "get_products",
        {"PriceList": [product("ml.g5.xlarge", "us-east-1", "USE1-Host:ml.g5.xlarge", "1.408")]},
        expected_params("ml.g5.xlarge", "us-east-1"),
    )
    bi = make_input(["ml.c5.xlarge", "ml.g5.xlarge"], prices={"ml.c5.xlarge": 0.1})
    # ml.c5.xlarge comes from the override: the API is asked for ml.g5.xlarge only.
    assert resolve_prices(bi, PricingApiPrices(client)) == {
        "ml.c5.xlarge": 0.1, "ml.g5.xlarge": 1.408,
    }
