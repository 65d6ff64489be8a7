"""No query parameter is accepted silently: one a route does not declare is a 400 naming it, on every route (the
fast path applies the same rule to its routes). A caller that sends a filter tally does not honour learns it at
once instead of receiving unfiltered data with a success status."""

import weakref
from collections.abc import Iterable

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from domain.errors import ValidationFailed

# Per route object; the weak reference tells a live route from a new one that reuses a collected one's id().
_declared: dict[int, tuple["weakref.ref[APIRoute]", frozenset[str]]] = {}


SHOWN_NAMES, SHOWN_LENGTH = 10, 64  # what of the unknown names the error repeats back (names are the caller's)


def refuse_unknown(names: Iterable[str], declared: frozenset[str]) -> None:
    unknown = [name[:SHOWN_LENGTH] for name in sorted(set(names) - declared)[:SHOWN_NAMES]]
    if unknown:
        raise ValidationFailed(
            f"unknown or unsupported query parameter(s): {', '.join(unknown)}; this route accepts "
            f"{', '.join(sorted(declared)) or 'none'}", {"parameters": unknown})


async def declared_query_only(request: Request) -> None:
    """App-wide dependency: the request's query parameters are all declared by its route."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    cached = _declared.get(id(route))
    if cached is None or cached[0]() is not route:
        cached = _declared[id(route)] = (weakref.ref(route), frozenset(_query_names(route.dependant)))
    refuse_unknown(request.query_params.keys(), cached[1])


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
