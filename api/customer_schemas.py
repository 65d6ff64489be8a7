"""Wire shapes of customers (Flexprice's): create, update, search and the customer as answered."""

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from api.bounded import Id, Metadata, Name, OptionalId, Timestamp, UnsupportedList, UnsupportedText
from domain import bounds

Email = Name
Unsupported = UnsupportedList | None


class CustomerDetails(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a customer's creation and update both carry."""

    name: Name | None = None
    email: Email | None = None
    address_line1: Name | None = None
    address_line2: Name | None = None
    address_city: Name | None = None
    address_state: Name | None = None
    address_postal_code: Name | None = None
    address_country: Name | None = None
    metadata: Metadata | None = None
    integration_entity_mapping: Unsupported = None


class CreateCustomerRequest(CustomerDetails, kw_only=True, forbid_unknown_fields=True):
    external_id: Id
    skip_onboarding_workflow: bool | None = None  # tally runs no onboarding workflow: nothing to skip
    tax_rate_overrides: Unsupported = None


class UpdateCustomerRequest(CustomerDetails, kw_only=True, forbid_unknown_fields=True):
    external_id: OptionalId | None = None


class SortCondition(msgspec.Struct, forbid_unknown_fields=True):
    field: Literal["created_at"] = "created_at"
    direction: Literal["asc", "desc"] = "desc"


IdList = Annotated[list[Id], msgspec.Meta(max_length=bounds.SEARCH_IDS_MAX,
                                          description=f"at most {bounds.SEARCH_IDS_MAX} ids")]


class CustomerSearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    customer_ids: IdList | None = None
    external_id: OptionalId | None = None
    external_ids: IdList | None = None
    email: Email | None = None
    metadata: Metadata | None = None
    status: Literal["published", "archived", "deleted"] | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=bounds.CUSTOMERS_PAGE_MAX)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=bounds.PAGE_OFFSET_MAX)] | None = None
    order: Literal["asc", "desc"] | None = None
    sort: list[SortCondition] | None = None
    filters: Unsupported = None
    expand: UnsupportedText | None = None  # nothing to expand on customers


class CustomerResponse(msgspec.Struct):
    id: str
    external_id: str
    name: str
    email: str
    address_line1: str
    address_line2: str
    address_city: str
    address_state: str
    address_postal_code: str
    address_country: str
    metadata: dict[str, str]
    tenant_id: str
    environment_id: str
    status: Literal["published"]
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str


class Pagination(msgspec.Struct):
    total: int
    limit: int
    offset: int


class CustomerList(msgspec.Struct):
    items: list[CustomerResponse]
    pagination: Pagination
