"""Schemathesis over the live app's own /openapi.json: every operation, every check, seeded and bounded.

`tally dev` runs as a subprocess on the test Redis (real HTTP, the fast path included, the embedded projector
folding), with a real tenant key. Wallets, customers, a pending top-up and a webhook endpoint are seeded first, and
path parameters name them some of the time, so the checks also see real resources and not only 404s. Afterwards
every partition must still fold: nothing schemathesis sent may stall a neighbour's cached balance.

Bounds: SEED fixes every operation's examples (derandomized); each operation runs its explicit examples, the
coverage phase (one case per boundary the schema names) and at most MAX_EXAMPLES fuzzed cases.

Deliberate exclusions (EXCLUDED, and nothing else): a `positive_data_acceptance` failure whose answer is a 400
that no static schema can foretell, because it depends on the resource's state or on the clock, or on the digits
of a JSON float. Each such answer still goes through every other check (documented status, ErrorResponse body,
content type); every other refusal of a schema-valid request fails the test.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.engine import Status, events
from schemathesis.openapi.checks import RejectedPositiveData

from domain.identity import AccountRef
from store.keys import Keys
from tests.support.dev_server import ENVIRONMENT, KEY, PARTITIONS, TENANT, DevServer, dev_server
from tests.support.redis_cluster import flush_store
from tests.support.schemathesis_seeds import Seeds, neighbours_fold, seed_resources

SEED = 20261127
MAX_EXAMPLES = 25
HEADERS = {"x-api-key": KEY}
# (ErrorResponse code, message pattern) of a 400 refusing a schema-valid request → why no schema can say it.
EXCLUDED = {
    ("invalid_operation", ""): "the resource's state: a frozen or terminated wallet, a debit beyond the available "
                               "credits, paying a top-up that is not pending, an invoice paid already",
    ("validation_error", "^expiry must be in the future"): "the clock: an expiry before now",
    ("validation_error", "^timestamp is more than \\d+ s in the future"): "the clock: usage from the future",
    ("validation_error", "^(at|position) is after now"): "the clock: a balance as of a moment still to come",
    ("validation_error", "^name the customer by exactly one of id and external_customer_id$"):
        "a rule between two query parameters: no OpenAPI keyword says that exactly one of them is required",
    ("validation_error", "^name the customer by exactly one of id and lookup_key$"):
        "a rule between two query parameters: no OpenAPI keyword says that exactly one of them is required",
    ("validation_error", "^x-max-live and its query form `-` disagree$"):
        "a rule between a header and a query parameter: no OpenAPI keyword compares two parameters",
    ("validation_error", "^a status or alert_enabled filter examines at most \\d+ wallets"):
        "the tenant's state: how many wallets it has",
    ("validation_error", "^give exactly one of at and position$"):
        "a rule between two query parameters: no OpenAPI keyword says that exactly one of them is required",
    ("validation_error", "^effective_from cannot be in the past"): "the clock: a price version before now would "
                                                                    "re-price history",
    ("validation_error", "^a wallet holds at most"): "the wallet's state: the credits it holds already",
    ("validation_error", "^at most \\d+ endpoints per environment"): "the tenant's state: its endpoints so far",
    ("validation_error", "^credits to add must be positive"): "the wallet's topup_conversion_rate: an amount worth "
                                                              "less than the smallest credit",
    ("validation_error", "^thresholds must be strictly ordered"):
        "an order between alert thresholds: no JSON Schema keyword compares two fields",
    ("validation_error", "^((the last tier, and only the last, must have no up_to|tier up_to values must be positive "
                         "and strictly increasing)(; |$))+$"):
        "an order across a price's tiers: no JSON Schema keyword compares two items",
    ("validation_error", "^initial_credits_to_load_expiry_date: not a YYYYMMDD date"):
        "an integer that is no calendar date (20260231): no JSON Schema keyword says which integers are dates",
    ("validation_error", "is not an in-bounds decimal: more than 12 digits after the point$"):
        "a JSON float whose shortest form has more than 12 digits after the point (5e-324, 0.1 + 0.2): no JSON "
        "Schema keyword bounds a float's digits (decimal strings are documented exactly)",
}
_EXCLUDED = [(code, re.compile(pattern)) for code, pattern in EXCLUDED]
# Every check is enabled; these must have run. Three have nothing to act on here: use_after_free and
# ensure_resource_availability need links between operations (the document has none), object_level_authorization
# needs several identities in a WFC auth file (tenant isolation has its own tests, with a second tenant's key).
CHECKS = {"not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
          "response_headers_conformance", "positive_data_acceptance", "negative_data_rejection",
          "missing_required_header", "ignored_auth", "unsupported_method", "allow_header_conformance"}
# A request with a header the document does not name is never refused: clients, proxies and load balancers add
# headers (tally refuses unknown query parameters and body fields). Schemathesis sends one only to operations that
# document a header besides the API key (GET /customers/wallets, x-max-live), and the negative check it runs then
# is this one alone.
UNKNOWN_HEADER = "in header - object with unexpected properties"
BULK_REFUSAL = re.compile(r"^\d+ of \d+ events are invalid; none was accepted$")


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, Seeds]]:
    flush_store(redis_url)
    workdir = Path(tmp_path_factory.mktemp("schemathesis"))
    with dev_server(redis_url, workdir, request_log="false") as server, httpx.Client(
        base_url=server.url, headers=HEADERS, timeout=10.0
    ) as client:
        yield server, seed_resources(client, _partition_of, PARTITIONS)


def _partition_of(customer: str) -> int:
    return Keys(PARTITIONS).partition_of(AccountRef(TENANT, ENVIRONMENT, customer))


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": HEADERS,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {"enabled": True},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
    })


def live_schema(server: DevServer, seeds: Seeds) -> Any:
    loaded = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=_config())
    loaded.config.base_url = server.url

    @loaded.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Half the time, each seeded path parameter names a real resource of the caller's tenant."""
        real = {name: seeds.path[name] for name in path_parameters or () if name in seeds.path}
        return st.sampled_from([path_parameters, {**path_parameters, **real}]) if real else st.just(path_parameters)

    @loaded.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        """Keep every failure but the deliberate exclusions (EXCLUDED, UNKNOWN_HEADER)."""
        if isinstance(failure, AcceptedNegativeData) and UNKNOWN_HEADER in failure.message:
            return False
        return not (isinstance(failure, RejectedPositiveData) and response.status_code == 400
                    and _excluded(response))

    return loaded


def _excluded(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    code, messages = body.get("code"), [str(body.get("message", ""))]
    if BULK_REFUSAL.search(messages[0]):  # a bulk names each invalid event: all of them must be excluded
        messages = [str(m) for m in body.get("details", {}).get("context", {}).get("events", {}).values()]
    return bool(messages) and all(any(code == known and pattern.search(message) for known, pattern in _EXCLUDED)
                                  for message in messages)


def _answer(recorder: Any, case_id: str) -> str:
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction is not None else None
    if response is None:
        return "no response"
    return f"{response.status_code} {response.content[:300]!r}"


def _findings(event: Any) -> list[str]:
    """What one engine event reports as wrong: failed checks (with the answer and a curl to reproduce), errors."""
    if isinstance(event, events.ScenarioFinished):
        label = event.label or event.recorder.label
        return [f"{label}: {node.failure_info.failure.title}\n{node.failure_info.failure.message}\n"
                f"answer: {_answer(event.recorder, case_id)}\n{node.failure_info.code_sample}"
                for case_id, nodes in event.recorder.checks.items() for node in nodes
                if node.status == Status.FAILURE and node.failure_info is not None]
    if isinstance(event, events.NonFatalError):
        return [f"{event.label}: error {event.value!r}"]
    if isinstance(event, events.FatalError):
        return [f"fatal: {event.exception!r}"]
    return []


def test_every_operation_conforms_to_the_document(live: tuple[DevServer, Seeds]) -> None:
    loaded = live_schema(*live)
    findings: dict[str, None] = {}
    ran: set[str] = set()
    for event in schemathesis.engine.from_schema(loaded).execute():
        findings.update(dict.fromkeys(_findings(event)))
        if isinstance(event, events.ScenarioFinished):
            ran |= {node.name for nodes in event.recorder.checks.values() for node in nodes}
    assert not findings, f"{len(findings)} schemathesis findings:\n\n" + "\n\n".join(findings)
    assert ran >= CHECKS, f"checks that never ran: {sorted(CHECKS - ran)}"


def test_every_partition_still_folds_afterwards(live: tuple[DevServer, Seeds]) -> None:
    server, seeds = live
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10.0) as client:
        stalled = neighbours_fold(client, seeds, _partition_of)
    assert not stalled, f"cached balances that did not catch up (partition stalled?): {stalled}\n{server.log_tail()}"
