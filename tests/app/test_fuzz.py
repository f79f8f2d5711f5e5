"""Schemathesis fuzzes the service from its own OpenAPI document (bounded, integration).

Every one of schemathesis' checks, in every phase `schemathesis run` has
(examples, coverage, fuzzing; stateful needs links the document does not
have): no 5xx, responses that match the document, invalid input rejected and
valid input accepted, 405 with `Allow` for undeclared methods. This is the
engine the CLI runs, driven in-process on the WSGI app with a small budget;
`make fuzz` runs the CLI against real gunicorn with a large one. (schemathesis'
pytest plugin cannot load a schema from a fixture under pytest 9.)
"""

import pytest
import schemathesis
from schemathesis.engine import Status, events

from app import create_app
from tests.app.conftest import config

pytestmark = pytest.mark.integration

# per operation in the fuzzing phase (~2 s on 2 cores); the coverage phase is a fixed
# ~15 s of boundary and wrong-type cases. `make fuzz` runs 3000.
MAX_EXAMPLES = 25


def _failures(event: events.EngineEvent) -> list[str]:
    if isinstance(event, events.FatalError):
        return [f"schemathesis crashed: {event.exception!r}"]
    if isinstance(event, events.NonFatalError):
        return [f"{event.label}: {event.info}"]
    if not isinstance(event, events.ScenarioFinished):
        return []
    return [
        f"{event.phase} {event.label} [{check.name}] {check.failure_info.failure.title}:"
        f" {check.failure_info.failure.message}\n{check.failure_info.code_sample}"
        for checks in event.recorder.checks.values()
        for check in checks
        if check.status == Status.FAILURE and check.failure_info is not None
    ]


def test_all_checks_pass_on_every_operation(deployment):
    app = create_app(config(deployment))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.config.checks.update(included_check_names=["all"])
    schema.config.generation.update(max_examples=MAX_EXAMPLES, database="none")
    schema.config.update(workers=1)
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations >= {"POST /predict", "GET /ready", "GET /model"}

    failures, phases = [], {}
    for event in schemathesis.engine.from_schema(schema).execute():
        failures += _failures(event)
        if isinstance(event, events.PhaseFinished):
            phases[str(event.phase.name)] = event.status
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert phases["coverage"] == phases["fuzzing"] == Status.SUCCESS
