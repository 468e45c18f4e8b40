"""Names vulture cannot see used: read by a library or by a reader of the JSON, not by our code.

Read by vulture only (`make test` runs `vulture`, paths in pyproject's [tool.vulture]); never
imported. Each entry says who uses the name. Validators need no entry: pydantic calls the
methods under @field_validator/@model_validator (ignore_decorators in pyproject).
"""

from rightsizer.aws.events import ItemNames, MapItem
from rightsizer.loadgen.locust_driver import LegacyUser, OpenLoopUser
from rightsizer.recommend import Recommendation, TypeOption
from rightsizer.summary import StepResult, TokenStats, TypeSummary

# pydantic reads every model's configuration (extra="forbid", frozen, ...) from this attribute.
_ = TypeSummary.model_config

# Read by the state machine (statemachine/rightsize.asl.json) from the Map item: the endpoint
# config's name for CreateEndpointConfig, and the load generator's RunTask overrides.
_ = ItemNames.endpoint_config
_ = MapItem.loadgen

# Fields of recommendation.json, for its readers (people, scripts); the report does not show them.
_ = TypeOption.instances_needed_at_min
_ = TypeOption.instances_needed_at_max
_ = Recommendation.schema_version
_ = Recommendation.hours_per_month

# Fields of <type>/summary.json, for its readers: set by the engine and the pipeline, not read back.
_ = StepResult.generator_cpu
_ = TokenStats.tokens_per_request_p50
_ = StepResult.duration_seconds
_ = TypeSummary.started_at
_ = TypeSummary.finished_at

# Locust reads these class attributes: `abstract` (not a user class to spawn) and `wait_time`.
_ = OpenLoopUser.abstract
_ = OpenLoopUser.wait_time
_ = LegacyUser.wait_time
