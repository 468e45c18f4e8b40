"""Resource names: within SageMaker's rules and IAM's prefix, deterministic, never colliding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsizer.aws.naming import (
    MAX_NAME,
    SAGEMAKER_NAME,
    resource_name,
    resource_tags,
    run_id_for,
    tag_value,
)

TYPES = ["ml.c5.xlarge", "ml.g4dn.12xlarge", "ml.p4de.24xlarge", "ml.inf2.48xlarge",
         "ml.c6in.metal", "ml.m5.large"]
# Step Functions execution names: 1-80 characters, no whitespace, brackets, wildcards or
# " # % \ ^ | ~ ` $ & , ; : / (and no control characters).
EXECUTION_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
                           blacklist_characters='<>{}[]?*"#%\\^|~`$&,;:/'),
    min_size=1, max_size=80,
)


@given(execution=EXECUTION_NAME, prefix=st.from_regex(r"[a-z][a-z0-9-]{0,18}[a-z0-9]",
                                                        fullmatch=True),
       instance_type=st.sampled_from(TYPES))
def test_names_fit_sagemaker_and_the_iam_prefix(execution, prefix, instance_type):
    name = resource_name(prefix, execution, instance_type)
    assert len(name) <= MAX_NAME
    assert SAGEMAKER_NAME.match(name)
    assert name == name.lower()  # SageMaker ARNs are lower case; IAM matching is exact
    assert name.startswith(prefix + "-")
    assert name == resource_name(prefix, execution, instance_type)


def test_types_and_executions_never_collide_even_when_shortened():
    long = "x" * 80
    names = {resource_name("rightsizer", execution, kind)
             for execution in (long, long[:-1] + "y", "a", "A")
             for kind in TYPES}
    assert len(names) == 4 * len(TYPES)


def test_a_readable_name_for_a_normal_execution():
    assert resource_name("rightsizer", "Nightly_2026-11-25", "ml.g4dn.xlarge").startswith(
        "rightsizer-nightly-2026-11-25-g4dn-xlarge-")


def test_bad_prefix_is_refused():
    with pytest.raises(ValueError, match="name prefix"):
        resource_name("Rightsizer", "run", "ml.c5.xlarge")


def test_run_id_is_the_local_shape_and_deterministic():
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:run-1"
    first = run_id_for("resnet50", arn, "2026-11-25T19:44:00.123Z")
    assert first == run_id_for("resnet50", arn, "2026-11-25T19:44:00.123+00:00")
    assert first.startswith("resnet50-20261125T194400Z-") and len(first.split("-")[-1]) == 6
    assert first != run_id_for("resnet50", arn + "x", "2026-11-25T19:44:00.123Z")


def test_tags_carry_the_execution_in_sagemakers_alphabet():
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:run(1)!"
    tags = {t["Key"]: t["Value"] for t in resource_tags("rightsizer", arn, "r-1", "ml.c5.xlarge")}
    assert tags["rightsizer:execution-arn"] == tag_value(arn)
    assert tags["rightsizer:execution-arn"].endswith("run_1__")
