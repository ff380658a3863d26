"""CustomerService: register customers and find them by any spelling of their number.

Numbers are stored sealed by the vault (``callcenter.crypto``) and found by their blind index,
``IN vault.indexes(n)`` so lookups hold during an index-key rotation."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.auth.identity import CurrentUser
from callcenter.customers import validation
from callcenter.customers.history import CallerContext, build_caller_context, build_customer_context
from callcenter.crypto import PhoneVault
from callcenter.customers.phones import normalise
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from callcenter.errors import Conflict
from callcenter.geo.geocoding import Geocoder, default_geocoder, locate
from callcenter.privacy import mask_phone
from callcenter.settings import Settings

log = logging.getLogger(__name__)


def sealed_phone(vault: PhoneVault, number: str, kind: str) -> CustomerPhone:
    """A new customer_phones row for a normalised number, sealed by ``vault``."""
    sealed = vault.seal(number)
    return CustomerPhone(number_index=sealed.index, number_enc=sealed.enc, masked=sealed.masked,
                         kind=kind)


class CustomerService:
    """Owns writes to customers, phones, addresses and appliances; reads the caller context."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings,
                 vault: PhoneVault | None = None, geocoder: Geocoder | None = None) -> None:
        """``vault``: the app's (``appkeys.VAULT``); default ``settings.phone_vault()``.
        ``geocoder``: places a new address for dispatch; default the bundled district centres."""
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.vault = vault or settings.phone_vault()
        self.geocoder = geocoder or default_geocoder()

    async def create(self, data: Mapping[str, object], actor: CurrentUser, *,
                     now: dt.datetime | None = None) -> Customer:
        """Validate ``data`` and store the customer with phones, address and appliances.

        One transaction: either everything is stored or nothing. Raises ``ValidationFailed``
        (422, naming the field) or ``Conflict`` (409) when a number already belongs to another
        customer (the number is named masked). ``now`` (aware) stamps ``created_at`` and, as a
        date in ``settings.tz``, bounds purchase dates; default: the current time. Cancelled
        while waiting on the database: the transaction is rolled back, nothing is stored.
        """
        now = now or dt.datetime.now(dt.UTC)
        parsed = validation.customer(data, local_area_code=self.settings.local_area_code,
                                     today=now.astimezone(self.settings.tz).date())
        # Every blind index of every number (all index keys) → the number's position.
        position = {ix: i for i, p in enumerate(parsed.phones) for ix in self.vault.indexes(p.number)}
        a = parsed.address
        point = None if a is None else await locate(
            self.geocoder, lat=None, lon=None, province=a.province, city=a.city, district=a.district,
            detail=a.detail)
        async with self.sessionmaker() as session, session.begin():
            taken = (await session.execute(
                select(CustomerPhone.number_index, CustomerPhone.customer_id)
                .where(CustomerPhone.number_index.in_(list(position)))
                .order_by(CustomerPhone.customer_id))).first()
            if taken is not None:
                index = position[taken.number_index]
                masked = mask_phone(parsed.phones[index].number)
                raise Conflict(
                    f"phone {masked} already belongs to customer {taken.customer_id}",
                    field=f"phones[{index}]", phone=masked, customer_id=taken.customer_id)
            customer = Customer(
                name=parsed.name, level=parsed.level, remarks=parsed.remarks,
                created_at=now.astimezone(dt.UTC),
                phones=[self.phone_row(p.number, p.kind) for p in parsed.phones],
                addresses=[Address(province=a.province, city=a.city, district=a.district, detail=a.detail,
                                   lat=point.lat if point else None, lon=point.lon if point else None)
                           for a in [parsed.address] if a is not None],
                appliances=[Appliance(category=a.category, brand=a.brand, model=a.model,
                                      serial=a.serial, purchase_date=a.purchase_date,
                                      warranty_months=a.warranty_months)
                            for a in parsed.appliances],
            )
            session.add(customer)
            try:
                await session.flush()
            except IntegrityError as e:
                # Another request stored one of these numbers between our check and our insert
                # (customer_phones.number_index is unique).
                raise Conflict("phone already belongs to another customer") from e
        log.info("customer %s created by user %s (%d phones, %d appliances)",
                 customer.id, actor.id, len(parsed.phones), len(parsed.appliances))
        return customer

    async def find_by_number(self, raw: str) -> int | None:
        """The id of the customer owning ``raw`` (any spelling), or None (also for anonymous)."""
        found = normalise(raw, self.settings.local_area_code)
        if found is None:
            return None
        async with self.sessionmaker() as session:
            return (await session.execute(
                select(CustomerPhone.customer_id)
                .where(CustomerPhone.number_index.in_(self.vault.indexes(found.number)))
                .order_by(CustomerPhone.customer_id).limit(1))).scalar()

    def phone_row(self, number: str, kind: str) -> CustomerPhone:
        return sealed_phone(self.vault, number, kind)

    async def caller_context(self, raw: str, *, now: dt.datetime | None = None,
                             exclude_linkedid: str | None = None) -> CallerContext:
        """The screen-pop content for an inbound ``raw`` CallerIDNum (see ``history``)."""
        async with self.sessionmaker() as session:
            return await build_caller_context(session, raw, now=now or dt.datetime.now(dt.UTC),
                                              settings=self.settings, vault=self.vault,
                                              exclude_linkedid=exclude_linkedid)

    async def customer_context(self, customer_id: int, *,
                               now: dt.datetime | None = None) -> CallerContext:
        """The same content for a known customer id; ``customer_id`` None there if not found."""
        async with self.sessionmaker() as session:
            return await build_customer_context(session, customer_id,
                                                now=now or dt.datetime.now(dt.UTC),
                                                settings=self.settings)
