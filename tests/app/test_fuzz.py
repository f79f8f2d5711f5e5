"""Schemathesis fuzzes the service from its own OpenAPI document (bounded, integration).

Generated requests, valid and not, must never get a 5xx or a response that
breaks the document. (schemathesis' pytest plugin does not yet run under
pytest 9, so the hypothesis strategies are driven directly.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app import create_app
from tests.app.conftest import config

pytestmark = pytest.mark.integration


def test_no_server_errors_and_responses_match_the_spec(deployment):
    app = create_app(config(deployment))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /predict", "GET /ready"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case):
            response = case.call_and_validate()
            assert response.status_code < 500

        fuzz()
