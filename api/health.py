"""Liveness and readiness: /healthz answers while the process runs, /readyz only when Redis answers."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["Health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "Redis does not answer", "content": {"application/json": {}}}})
async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.redis.ping()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})
