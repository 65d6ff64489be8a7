"""The documented bound of every value a caller sends: out of bounds is a 400 before anything is appended.

The API checks these at the edge; the domain relies on them (its decimal context is sized so that every
in-bounds computation is exact). The README's "Limits" section lists them; keep the two in step.
"""

from datetime import UTC, datetime

# Decimals (credits, amounts, rates, thresholds, prices): at most this many digits before and after the point.
DECIMAL_INTEGER_DIGITS = 15
DECIMAL_FRACTION_DIGITS = 12
# A decimal written as text (leading and trailing zeros, exponent included) is at most this long.
DECIMAL_TEXT_MAX_LENGTH = 64
# The most credits one wallet may hold (sum of its lots): a top-up beyond it is refused.
MAX_WALLET_CREDITS = 10**15

# Identifiers a caller chooses (customer, event, wallet, price lookup keys, event names) and idempotency keys.
ID_MAX_LENGTH = 255
IDEMPOTENCY_KEY_MAX_LENGTH = 255
NAME_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 1000
# Ids, keys, names and metadata / property keys hold no control character: C0, DEL and C1, as a regular
# expression character range.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
# Currencies: ISO 4217-style codes of this many ASCII letters, either case (stored lower case).
CURRENCY_LETTERS = 3
# RFC 3339 timestamps (the longest valid one, with nanoseconds and an offset, is 35 characters).
TIMESTAMP_MAX_LENGTH = 64
# Log positions (customer-stream ids `ms-seq`, as `read_position` shows them): each part at most this many digits
# (a Redis stream id's parts are unsigned 64-bit integers, 20 digits at most).
POSITION_PART_DIGITS = 20

# Metadata (wallets, transactions): string to string.
METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX_LENGTH = 64
METADATA_VALUE_MAX_LENGTH = 500

# Usage event properties: string keys, string / integer / number values.
PROPERTIES_MAX_ENTRIES = 50
PROPERTY_KEY_MAX_LENGTH = 128
PROPERTY_VALUE_MAX_LENGTH = 1024
PROPERTY_INT_MAX = 2**63 - 1
PROPERTY_INT_MIN = -(2**63)

# Webhook endpoints: the URL's length, and the least random bytes behind a `whsec_` signing secret.
WEBHOOK_URL_MAX_LENGTH = 2048
WEBHOOK_SECRET_MIN_BYTES = 24
WEBHOOK_SECRET_MAX_BYTES = 64
WEBHOOK_MAX_ENDPOINTS = 50  # per tenant and environment
WEBHOOK_MAX_EVENT_TYPES = 32  # per endpoint filter

# Integers.
PRIORITY_MAX = 1_000_000_000
COOLDOWN_MAX_SECONDS = 366 * 24 * 3600
PERIOD_COUNT_MAX = 1000

# Every timestamp (usage, expiries, billing anchors, effective dates, `at` queries) lies in [EARLIEST, LATEST).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# Prices: filters (property key -> accepted values) and tiers.
FILTERS_MAX_ENTRIES = 50
FILTER_VALUES_MAX_ENTRIES = 100
TIERS_MAX_ENTRIES = 100

# Lists: page size and how far a page may start (offset).
TRANSACTIONS_PAGE_MAX = 1000
CUSTOMERS_PAGE_MAX = 1000
SEARCH_IDS_MAX = 100  # ids one search may name (customer_ids, external_ids)
DELIVERIES_PAGE_MAX = 500
WALLETS_PAGE_MAX = 500  # wallets one list or search page may hold (each is read exactly, as GET /wallets/{id})
WALLETS_SCAN_MAX = 2000  # wallets a status or alert_enabled filter may examine; more is a 400
MAX_LIVE_SECONDS_MAX = 31_536_000  # x-max-live: a year
PAGE_OFFSET_MAX = 1_000_000_000
