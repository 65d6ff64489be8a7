"""No query parameter is accepted silently: one a route does not declare is a 400 naming it, on every route (the
fast path applies the same rule to its routes). A caller that sends a filter tally does not honour learns it at
once instead of receiving unfiltered data with a success status."""

from collections.abc import Iterable

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from domain.errors import ValidationFailed

_declared: dict[int, frozenset[str]] = {}


def refuse_unknown(names: Iterable[str], declared: frozenset[str]) -> None:
    unknown = sorted(set(names) - declared)
    if unknown:
        raise ValidationFailed(
            f"unknown or unsupported query parameter(s): {', '.join(unknown)}; this route accepts "
            f"{', '.join(sorted(declared)) or 'none'}", {"parameters": unknown})


async def declared_query_only(request: Request) -> None:
    """App-wide dependency: the request's query parameters are all declared by its route."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = _declared.get(id(route))
    if declared is None:
        declared = _declared[id(route)] = frozenset(_query_names(route.dependant))
    refuse_unknown(request.query_params.keys(), declared)


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
