"""The account service a route works with: the one `Accounts` the app opened at start-up, as a FastAPI dependency."""

from typing import Annotated

from fastapi import Depends, Request

from api.accounts import Accounts


async def accounts(request: Request) -> Accounts:
    service: Accounts = request.app.state.accounts
    return service


Service = Annotated[Accounts, Depends(accounts)]
