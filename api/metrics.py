"""The API's Prometheus metrics, and the /metrics route (which also shows the projector's in `tally dev`); it needs
the operator credential, like every operator route."""

from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from api.auth import Operator

router = APIRouter(tags=["Health"])

EVENTS_ACCEPTED = Counter("tally_events_accepted_total", "Usage events accepted", ["outcome"])
EVENTS_REFUSED = Counter("tally_events_refused_total", "Usage events or bulks refused", ["reason"])
APPEND_SECONDS = Histogram(
    "tally_append_seconds", "Time to append to Redis (one script call or one bulk pipeline)", ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)


@cache
def accepted(outcome: str) -> Any:
    """EVENTS_ACCEPTED's series for `outcome`, looked up once (`labels` costs a lock and a tuple per call)."""
    return EVENTS_ACCEPTED.labels(outcome)


@cache
def append_seconds(kind: str) -> Any:
    """APPEND_SECONDS's series for `kind`, looked up once."""
    return APPEND_SECONDS.labels(kind)


@router.get("/metrics", include_in_schema=False)
async def metrics(_: Operator) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
