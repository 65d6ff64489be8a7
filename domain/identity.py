"""Who an account belongs to: tenant, environment and customer."""

import msgspec


class AccountRef(msgspec.Struct, frozen=True, array_like=True, order=True):
    tenant_id: str
    environment_id: str
    customer_id: str
