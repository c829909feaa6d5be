"""Robustness: requests generated from the OpenAPI document (valid and invalid bodies, paths, parameters)
never make the service fail with a server error, and its answers match the documented responses."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from adapters.http import Settings, create_app
from tests.builders import inclusion_path, register
from tests.http.support import auth, write_tokens


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemathesis")
    app = create_app(Settings(db=str(tmp / "db"), tokens_file=write_tokens(tmp / "tokens.json")))
    services = app.state.services
    for c in [register("H1"), *inclusion_path("H1")]:
        assert services.app.handle(c).ok
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    services.close()


CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_no_generated_request_makes_a_server_error(api):
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/commands", "/households/{household_id}", "/events", "/roster"}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, "tok-department-qdn" if operation.path == "/events" else "tok-county-1")


def fuzz(operation, mode: GenerationMode, token: str) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case):
        case.call_and_validate(headers=auth(token), checks=CHECKS)

    call()
