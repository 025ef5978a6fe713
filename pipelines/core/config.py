"""partner.yaml and contracts.yaml: pydantic models, defaults, and one-line error messages.

Every mistake becomes a `ConfigError` whose lines read like
`contracts.yaml: customer 'acme': term.end 2026-02-30 is not a date (line 12)`; a number
written the German way (`180,00`) is told how to write it instead of being "not a number".
"""
from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from pipelines.core.catalog import CATEGORIES, CatalogRow, load_catalog
from pipelines.core.errors import ConfigError
from pipelines.core.i18n import LANGUAGES
from pipelines.core.months import Month
from pipelines.core.workspace import Workspace
from pipelines.core.yaml_files import YamlDocument

Category = Literal[CATEGORIES]
# What reports, e-mails and reason files are written in.
Language = Literal[LANGUAGES]

_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# A customer's own Lens credential: part of environment variable names (LENS_<NAME>_CLIENT_ID)
# and an Airflow connection id, so letters, digits and '_' only.
_CREDENTIAL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# One address, nothing an e-mail header would read as a second one or a display name.
_EMAIL = re.compile(r"[^@\s,;<>()\[\]\\\":]+@[^@\s,;<>()\[\]\\\":]+\.[^@\s.,;<>()\[\]\\\":]+")
_CUSTOMER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_SECRET_KEYS = {"client_secret", "client_id", "password", "user", "username", "token", "secret"}
# 180,00 and 1.234,50: a comma before the decimals, and points between thousands, if any.
_DECIMAL_COMMA = re.compile(r"[-+]?(?:[0-9]+|[0-9]{1,3}(?:\.[0-9]{3})+),[0-9]+")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


Email = Annotated[str, AfterValidator(_email)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartnerBrand(_Strict):
    name: str = "Partner"
    logo: str | None = None
    primary_color: str = Field("#1f4e79", pattern=r"^#[0-9a-fA-F]{6}$")
    contact_email: Email | None = None
    language: Language = "en"


# rules.md "Devices not seen": what becomes of a counted device Lens has not seen for
# `not_seen_days` days: counted, nothing shown; counted and flagged; left out of the count.
NotSeenPolicy = Literal["count", "flag", "exclude"]
NOT_SEEN_POLICIES = ("count", "flag", "exclude")


class Policy(_Strict):
    """The named policy values of rules.md; defaults are the contract."""

    baseline_buffer_pct: Decimal = Field(Decimal(5), ge=0, le=100)
    true_up_trigger_pct: Decimal = Field(Decimal(5), gt=0, le=100)
    watch_at_pct_of_trigger: Decimal = Field(Decimal(80), gt=0, le=100)
    rma_threshold_pct: Decimal = Field(Decimal(5), gt=0, le=100)
    proration_start: Literal["report_month", "next_month"] = "report_month"
    eligibility_min_devices: int | None = Field(None, ge=1)
    # Ten years at most: a day count the warehouse's date arithmetic takes as it stands.
    not_seen_days: int = Field(90, ge=1, le=3650)
    # One value for every category, or per category; a category not named is `flag`.
    not_seen: dict[Category, NotSeenPolicy] = Field(
        default_factory=lambda: dict.fromkeys(CATEGORIES, "flag"))

    @field_validator("not_seen", mode="before")
    @classmethod
    def _one_or_per_category(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**dict.fromkeys(CATEGORIES, "flag"), **value}
        if value in NOT_SEEN_POLICIES:
            return dict.fromkeys(CATEGORIES, value)
        shown = "null" if value is None else value  # as YAML writes nothing
        raise ValueError(f"{shown} must be 'count', 'flag' or 'exclude': write one of them, or "
                         f"one per category (e.g. {{headset: count, video: flag}})")

    def not_seen_for(self, category: str) -> str:
        """What becomes of the category's counted devices not seen (rules.md)."""
        return self.not_seen[category]


class LensSettings(_Strict):
    token_url: str = "https://login.lens.poly.com/oauth/token"
    graphql_url: str = "https://api.silica-prod01.io.lens.poly.com/graphql"
    # Devices per request: Lens allows 1..5000; public clients page with 100..700 to stay
    # inside the query-cost budget (lensctl-ops-deck: 700).
    page_size: int = Field(700, ge=1, le=5000)
    pull_window_days: int = Field(10, ge=0, le=31)


class SmtpSettings(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    sender: Email = Field(alias="from")


# The day of the month the monthly run starts (06:00 UTC): any day every month has.
DEFAULT_RUN_DAY, RUN_DAYS = 3, range(1, 29)


class Schedule(_Strict):
    run_day: int = Field(DEFAULT_RUN_DAY, ge=RUN_DAYS.start, le=RUN_DAYS.stop - 1)


class InboxSettings(_Strict):
    # An upload is taken once it has not changed for this long: a file still being copied
    # into the drop folder (a slow share, a large export) is left for the next run.
    settle_seconds: float = Field(3, ge=0, le=600)


class DeliverySettings(_Strict):
    # interfaces.md "Review before sending": `required` holds every message to a CSM or a
    # customer until `approve`; a workspace made before the key existed keeps sending at once.
    review: Literal["required", "off"] = "off"

    @field_validator("review", mode="before")
    @classmethod
    def _yes_or_no(cls, value):
        # YAML 1.1 reads a bare `off` (and `no`, `false`) as false, `on`/`yes`/`true` as true.
        return {False: "off", True: "required"}.get(value, value) if isinstance(value, bool) \
            else value


class DuckLakeSettings(_Strict):
    """docs/deploying.md "Past one machine": the catalog as a libpq connection string without
    password
    (PGPASSWORD), `postgres:` before it or not; the data as a folder or s3:// prefix (keys
    from AWS_* variables)."""

    catalog: str = Field(min_length=1)
    data_path: str = Field(min_length=1)

    @field_validator("catalog")
    @classmethod
    def _libpq_without_password(cls, value: str) -> str:
        """A libpq connection string (`host=… dbname=…`) or URI (`postgresql://…`), read as
        libpq reads it, so a password in any form (`password=`, `sslpassword=`, `user:pw@`)
        is found; the messages never repeat the string, which may hold one."""
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        # interfaces.md writes it as DuckLake's ATTACH does, "postgres:host=…"; kept as the
        # plain libpq string (psycopg takes it too). A URI keeps its scheme.
        text = re.sub(r"^postgres(ql)?:(?!//)", "", value.strip())
        try:
            found = conninfo_to_dict(text)
        except ProgrammingError:
            raise ValueError("is not a libpq connection string (host=… port=… dbname=… "
                             "user=…) nor a postgresql:// URI: correct it") from None
        if {"password", "sslpassword"} & found.keys():
            raise ValueError("holds a password: remove it and set PGPASSWORD in the "
                             "environment instead (partner.yaml is no place for secrets)")
        return text

    @field_validator("data_path")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class WarehouseSettings(_Strict):
    # None: the embedded DuckDB file warehouse.duckdb in the workspace.
    ducklake: DuckLakeSettings | None = None


_S3_PREFIX = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


class DropFolderSettings(_Strict):
    """docs/deploying.md "Past one machine": the inbox, archive and quarantine as s3:// prefixes
    (credentials and endpoint from the AWS_* variables); the workspace keeps local copies."""

    inbox: str = Field(pattern=_S3_PREFIX)
    archive: str = Field(pattern=_S3_PREFIX)
    quarantine: str = Field(pattern=_S3_PREFIX)


class PartnerConfig(_Strict):
    partner: PartnerBrand = PartnerBrand()
    policy: Policy = Policy()
    lens: LensSettings = LensSettings()
    smtp: SmtpSettings | None = None
    delivery: DeliverySettings = DeliverySettings()
    schedule: Schedule = Schedule()
    inbox: InboxSettings = InboxSettings()
    warehouse: WarehouseSettings = WarehouseSettings()
    drop_folder: DropFolderSettings | None = None


class Csm(_Strict):
    name: str = Field(min_length=1)
    email: Email


class Term(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _end_after_start(self) -> Term:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def first_month(self) -> Month:
        return Month.of(self.start)

    @property
    def last_month(self) -> Month:
        return Month.of(self.end)

    def covers(self, month: Month) -> bool:
        return self.first_month <= month <= self.last_month


# What the warehouse holds (counts as INTEGER, amounts as DECIMAL(18, 2)): ten million devices
# and a million per device and year are far above any contract, and every figure the rules
# make from them (a baseline, a true-up prorated over a long term) stays inside those types.
MAX_DEVICES = 10_000_000
MAX_UNIT_PRICE = Decimal(1_000_000)


class CategoryContract(_Strict):
    """Either `ordered_devices`, or `installed_devices` + `growth_rate_pct` (footnote 6)."""

    ordered_devices: int | None = Field(None, ge=1, le=MAX_DEVICES)
    installed_devices: int | None = Field(None, ge=1, le=MAX_DEVICES)
    growth_rate_pct: Decimal | None = Field(None, ge=0, le=1000)
    unit_price_per_year: Decimal = Field(ge=0, le=MAX_UNIT_PRICE, decimal_places=2)

    @model_validator(mode="after")
    def _one_form(self) -> CategoryContract:
        if self.ordered_devices is not None:
            if self.installed_devices is not None or self.growth_rate_pct is not None:
                raise ValueError("give either ordered_devices or installed_devices + "
                                 "growth_rate_pct, not both")
        elif self.installed_devices is None or self.growth_rate_pct is None:
            raise ValueError("needs ordered_devices, or installed_devices and growth_rate_pct")
        return self

    @property
    def ordered(self) -> int:
        if self.ordered_devices is not None:
            return self.ordered_devices
        # Exact: Decimal × int, then ceil (rules.md: ceil(installed × (1 + growth/100))).
        return math.ceil(self.installed_devices * (1 + self.growth_rate_pct / 100))


class ContractTerm(_Strict):
    """One term of a contract with the categories it covers: an item of `terms`, and what a
    renewal proposal (renewal-<customer>.yaml) holds."""

    term: Term
    categories: dict[Category, CategoryContract] = Field(min_length=1)


class Customer(_Strict):
    """A customer's contract: one term (`term` + `categories`) or several (`terms`, oldest
    first). Month by month, the pipeline works with `in_effect(month)`: the customer with the
    term containing that month as its `term` and `categories`."""

    id: str
    name: str = Field(min_length=1)
    master_account_id: str = Field(min_length=1)
    site_ids: list[str] = []
    lens_tenant_id: str | None = None
    # The customer's own Lens credential (None: the partner's): its id and secret come from
    # LENS_<NAME>_CLIENT_ID / LENS_<NAME>_CLIENT_SECRET, or in Airflow the connection NAME.
    lens_credential: str | None = None
    csm: Csm
    partner_contacts: list[Email] = []
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    term: Term | None = None
    categories: dict[Category, CategoryContract] | None = Field(None, min_length=1)
    terms: tuple[ContractTerm, ...] | None = Field(None, min_length=1)
    language: Language | None = None  # None: the partner's (`Config.language_of`)
    # The CSM reads the customer's Poly Lens: the report e-mail leaves out the evidence pack.
    csm_has_lens_access: StrictBool = False
    # The month of the customer's first inventory, where the partner wants to say it: months
    # before it are "before onboarding" and owe no upload (docs/decisions.md#first-month).
    first_month: str | None = None

    @field_validator("first_month", mode="before")
    @classmethod
    def _first_month_shape(cls, value: Any) -> str | None:
        if value is not None and not _MONTH.fullmatch(str(value)):
            raise ValueError(f"{value} is not a month: write it as YYYY-MM, e.g. 2026-10")
        return None if value is None else str(value)

    @field_validator("lens_tenant_id")
    @classmethod
    def _tenant_shape(cls, value: str | None) -> str | None:
        # Lens tenant ids are UUIDs; a slash or a dot-dot would reach into a path.
        if value is not None and not _TENANT_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a Lens tenant id: copy it from Poly Lens "
                             f"(letters, digits, '-' and '_', at most 128 characters)")
        return value

    @field_validator("lens_credential")
    @classmethod
    def _credential_shape(cls, value: str | None) -> str | None:
        if value is not None and not _CREDENTIAL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a credential name: use letters, digits and '_', "
                             f"starting with a letter (it names the variables "
                             f"LENS_<NAME>_CLIENT_ID / _CLIENT_SECRET and an Airflow connection)")
        return value

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _CUSTOMER_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a customer id: use lower-case letters, digits "
                             f"and '-', starting with a letter or digit, at most 64 characters")
        return value

    @model_validator(mode="after")
    def _one_contract_form(self) -> Customer:
        if self.terms is not None:
            if self.term is not None or self.categories is not None:
                raise ValueError("give either `terms` or `term` + `categories`, not both")
        elif self.term is None:
            raise ValueError("term is missing (or list the contract's `terms`)")
        elif self.categories is None:
            raise ValueError("categories is missing")
        if self.onboarded and not any(t.term.covers(self.onboarded) for t in self.all_terms):
            raise ValueError(f"first_month {self.first_month} lies in none of the customer's "
                             f"terms: give the month of its first inventory within a term")
        return self

    @property
    def onboarded(self) -> Month | None:
        """The month of the first inventory, as the partner says it (`first_month`)."""
        return Month.parse(self.first_month) if self.first_month else None

    def before_onboarding(self, month: Month) -> bool:
        """`month` lies before the first inventory the partner named: no upload is owed."""
        return self.onboarded is not None and month < self.onboarded

    @property
    def all_terms(self) -> tuple[ContractTerm, ...]:
        if self.terms is not None:
            return self.terms
        return (ContractTerm(term=self.term, categories=self.categories),)

    def term_for(self, month: Month) -> ContractTerm | None:
        return next((t for t in self.all_terms if t.term.covers(month)), None)

    def in_effect(self, month: Month) -> Customer | None:
        """The customer as `month` is reconciled: its term then, or None between terms."""
        found = self.term_for(month)
        return self._with(found) if found else None

    @property
    def latest(self) -> Customer:
        """The customer with its last term."""
        return self._with(self.all_terms[-1])

    @property
    def term_position(self) -> tuple[int, int]:
        """Which of its terms the customer's `term` is, and how many it has: (2, 2)."""
        terms = [t.term for t in self.all_terms]
        return terms.index(self.term) + 1, len(terms)

    def has_term_after(self, month: Month) -> bool:
        return any(t.term.first_month > month for t in self.all_terms)

    def _with(self, term: ContractTerm) -> Customer:
        return self.model_copy(update={"term": term.term, "categories": term.categories})

    def ordered_for(self, category: str) -> int:
        return self.categories[category].ordered


class Contracts(_Strict):
    customers: list[Customer] = []

    @field_validator("customers")
    @classmethod
    def _unique_ids(cls, customers: list[Customer]) -> list[Customer]:
        seen: set[str] = set()
        for customer in customers:
            if customer.id in seen:
                raise ValueError(f"customer id {customer.id!r} is used twice")
            seen.add(customer.id)
        return customers

    def get(self, customer_id: str) -> Customer | None:
        return next((c for c in self.customers if c.id == customer_id), None)

    def in_effect(self, month: Month) -> list[Customer]:
        """The customers whose contract covers `month`, each with the term in effect then."""
        return [c for c in (customer.in_effect(month) for customer in self.customers) if c]


class Config:
    """Everything the pipeline reads from `config/`, validated together."""

    def __init__(self, workspace: Workspace, partner: PartnerConfig, contracts: Contracts,
                 catalog: list[CatalogRow]):
        self.workspace, self.partner, self.contracts = workspace, partner, contracts
        self.catalog = catalog  # the shipped rows, then the workspace's config/catalog.csv

    @property
    def policy(self) -> Policy:
        return self.partner.policy

    def language_of(self, customer: Customer) -> Language:
        """What the customer's reports and e-mails are written in: its own language, or else
        the partner's."""
        return customer.language or self.partner.partner.language


def load_config(workspace: Workspace) -> Config:
    partner = _validated(YamlDocument.read(workspace.partner_file, missing_ok=True),
                         PartnerConfig)
    document = YamlDocument.read(workspace.contracts_file)
    contracts = _validated(document, Contracts)
    _check_terms(document, contracts)
    _check_eligibility(contracts, partner.policy)
    return Config(workspace, partner, contracts, load_catalog(workspace.catalog_file))


def lake_settings(workspace: Workspace) -> DuckLakeSettings | None:
    """partner.yaml's `warehouse.ducklake` (None: the embedded warehouse), read on its own:
    opening the warehouse needs no contracts. A relative data folder is the workspace's."""
    key = (workspace.partner_file, *_signature(workspace.partner_file))
    if key not in _lake_settings:
        partner = _validated(YamlDocument.read(workspace.partner_file, missing_ok=True),
                             PartnerConfig)
        lake = partner.warehouse.ducklake
        if lake is not None and "://" not in lake.data_path:
            lake = lake.model_copy(update={"data_path": str(
                (workspace.home / lake.data_path).absolute()).rstrip("/") + "/"})
        _lake_settings.clear()
        _lake_settings[key] = lake
    return _lake_settings[key]


_lake_settings: dict[tuple, DuckLakeSettings | None] = {}


def _signature(path) -> tuple[int, int]:
    try:
        status = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (status.st_mtime_ns, status.st_size)


def _check_terms(document: YamlDocument, contracts: Contracts) -> None:
    """A customer's terms come oldest first and never overlap: each month has one term."""
    for index, customer in enumerate(contracts.customers):
        terms = customer.all_terms
        for number, (before, after) in enumerate(pairwise(terms), start=1):
            if after.term.first_month > before.term.last_month:
                continue
            how = "overlap" if after.term.start <= before.term.end else \
                f"share the month {after.term.first_month} (a month belongs to one term)"
            lines = [document.line_of(("customers", index, "terms", n, "term"))
                     for n in (number - 1, number)]
            raise ConfigError(
                f"contracts.yaml: customer '{customer.id}': terms {number} "
                f"({before.term.start}..{before.term.end}) and {number + 1} "
                f"({after.term.start}..{after.term.end}) {how} (lines {lines[0]} and "
                f"{lines[1]}): list the terms oldest first, each starting in a month after the "
                f"one before ends")


def _check_eligibility(contracts: Contracts, policy: Policy) -> None:
    """Footnote 3: at least one selected category must reach the eligibility threshold."""
    minimum = policy.eligibility_min_devices
    if minimum is None:
        return
    for customer in contracts.customers:
        for contract in customer.all_terms:
            if any(c.ordered >= minimum for c in contract.categories.values()):
                continue
            selected = ", ".join(f"{name} ({c.ordered} ordered)"
                                 for name, c in contract.categories.items())
            raise ConfigError(
                f"contracts.yaml: customer '{customer.id}': not eligible in the term "
                f"{contract.term.start}..{contract.term.end}: no selected category has at "
                f"least {minimum} ordered devices (policy.eligibility_min_devices): {selected}")


def _validated(document: YamlDocument, model: type[BaseModel]) -> Any:
    if not isinstance(document.data, dict):
        raise ConfigError(f"{document.path.name}: expected keys at the top level "
                          f"(see `python -m pipelines init`), found {type(document.data).__name__}")
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        raise ConfigError("\n".join(_describe(document, e) for e in error.errors())) from None


def _describe(document: YamlDocument, error: dict) -> str:
    """One line: file, customer, key, what is wrong, line."""
    location = tuple(error["loc"])
    where, key_path = "", location
    if location[:1] == ("customers",) and len(location) >= 2 and isinstance(location[1], int):
        where = f"customer {_customer_label(document.data, location[1])}: "
        key_path = location[2:]
    key = ".".join(str(step) for step in key_path)
    line = document.line_of(location)
    suffix = f" (line {line})" if line else ""
    return f"{document.path.name}: {where}{_problem(key, error)}{suffix}"


def _customer_label(data: dict, index: int) -> str:
    try:
        customer_id = data["customers"][index].get("id")
    except (KeyError, IndexError, TypeError, AttributeError):
        customer_id = None
    return f"'{customer_id}'" if customer_id else f"#{index + 1} (no id)"


def _problem(key: str, error: dict) -> str:
    kind, value = error["type"], error.get("input")
    if key.endswith(".[key]"):  # a mapping key itself is wrong, e.g. an unknown category
        key = key.removesuffix(".[key]").rsplit(".", 1)[0]
        return f"{key}: {value!r} is not allowed here: {error['msg'][0].lower()}{error['msg'][1:]}"
    subject = " ".join(part for part in (key, _show(value)) if part)
    if kind == "missing":
        return f"{key} is missing"
    if kind == "extra_forbidden":
        last = key.rsplit(".", 1)[-1]
        if last in _SECRET_KEYS:
            return (f"{key}: secrets do not belong in this file; set them in the environment "
                    f"(LENS_CLIENT_ID / LENS_CLIENT_SECRET, SMTP_USER / SMTP_PASSWORD)")
        return f"{key} is not a known key (misspelt?)"
    if kind.startswith("date"):
        return f"{subject} is not a date (expected YYYY-MM-DD)"
    if kind in ("decimal_parsing", "float_parsing") and isinstance(value, str) \
            and _DECIMAL_COMMA.fullmatch(value):
        return f"{subject} has a decimal comma: write {value.replace('.', '').replace(',', '.')}"
    if kind.startswith("int") or kind == "int_from_float":
        return f"{subject} is not a whole number"
    if kind.startswith("decimal") and kind != "decimal_max_places":
        return f"{subject} is not a number"
    if kind == "decimal_max_places":
        return f"{subject} has more than two decimal places"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        limit = next(iter(error["ctx"].values()))
        words = {"greater_than_equal": "at least", "greater_than": "more than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        return f"{subject} must be {words} {limit}"
    if kind == "literal_error":
        return f"{subject} must be {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch" and key.endswith("currency"):
        return f"{subject} is not a three-letter currency code (e.g. EUR)"
    if kind == "string_pattern_mismatch" and key.endswith("primary_color"):
        return f"{subject} is not a colour like #1f4e79"
    if kind == "too_short":
        return f"{key} is empty" if key else "empty"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{subject} should be a set of keys"
    if kind == "list_type":
        return f"{subject} should be a list"
    if kind == "bool_type":
        return f"{subject} must be true or false"
    if kind == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        return f"{key}: {message}" if key else message
    return f"{subject}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return ""
    return str(value)
