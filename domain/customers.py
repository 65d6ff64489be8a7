"""A customer: the internal id tally mints, the caller's external id (which names the customer's account) and the
details a billing platform keeps about it."""

from datetime import UTC, datetime, timedelta

import msgspec

CUSTOMER_ID_PREFIX = "cust_"
ULID_LENGTH = 26


class Customer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    external_id: str
    created_at: datetime
    updated_at: datetime
    name: str = ""
    email: str = ""
    address_line1: str = ""
    address_line2: str = ""
    address_city: str = ""
    address_state: str = ""
    address_postal_code: str = ""
    address_country: str = ""
    metadata: dict[str, str] = {}
    created_by: str = ""
    updated_by: str = ""


def may_be_customer_id(name: str) -> bool:
    """Whether `name` has the shape of an id tally mints for a customer (`cust_` and a ULID): only such names are
    looked up in the directory; any other name is an account name as it stands."""
    return (len(name) == len(CUSTOMER_ID_PREFIX) + ULID_LENGTH and name.startswith(CUSTOMER_ID_PREFIX)
            and name[len(CUSTOMER_ID_PREFIX):].isalnum())


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (the customer index orders by them: creations in one millisecond keep
    their order)."""
    return (moment - EPOCH) // timedelta(microseconds=1)
