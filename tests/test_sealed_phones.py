"""Phone numbers at rest: the vault, key rotation, settings, and migration 0003 on both databases."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from callcenter.auth.identity import CurrentUser
from callcenter.crypto import PhoneVault, new_key_spec
from callcenter.customers.history import build_caller_context
from callcenter.customers.services import CustomerService
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Call, CustomerPhone, IntakeRecord
from callcenter.keys import _rotate_column, rotate, sealed_columns
from callcenter.settings import Settings, SettingsError
from tests.apphelpers import keyed_settings

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
AGENT = CurrentUser(id=1, username="agent1", role="agent")
D1, D2, I1, I2 = (new_key_spec(k) for k in ("d1", "d2", "i1", "i2"))


def vault(data: str, index: str) -> PhoneVault:
    return PhoneVault.from_specs(data, index)


# ---------------------------------------------------------------------------------------------
# The vault (pure)


def test_seal_round_trip_and_empty() -> None:
    v = vault(D1, I1)
    s = v.seal("13800138000")
    assert s.masked == "138****8000" and s.index == v.index("13800138000") and len(s.index) == 64
    assert s.enc.startswith("d1:") and "13800138000" not in s.enc
    assert v.decrypt(s.enc) == "13800138000"
    # Random nonces: the same number never gives the same ciphertext; the index is stable.
    again = v.seal("13800138000")
    assert again.enc != s.enc and again.index == s.index
    assert v.seal("") == type(s)("", "", "")
    assert v.index("13800138000") != v.index("13800138001")


def test_tampering_is_detected() -> None:
    v = vault(D1, I1)
    token = v.encrypt("13800138000")
    kid, body = token.split(":")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for pos in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        forged = f"{kid}:{base64.urlsafe_b64encode(bytes(bad)).decode().rstrip('=')}"
        with pytest.raises(ValueError, match="does not authenticate"):
            v.decrypt(forged)
    with pytest.raises(ValueError, match="no data key 'zz'"):
        v.decrypt("zz:" + body)
    # Another install's key (same id) cannot open it either.
    with pytest.raises(ValueError):
        vault(new_key_spec("d1"), I1).decrypt(token)


def test_rotation_keeps_old_values_readable_and_findable() -> None:
    old = vault(D1, I1)
    sealed = old.seal("13800138000")
    both = vault(f"{D2},{D1}", f"{I2},{I1}")
    assert both.current_key_id == "d2"
    assert both.decrypt(sealed.enc) == "13800138000"
    assert both.needs_reencryption(sealed.enc) and not both.needs_reencryption(both.encrypt("1"))
    assert both.indexes("13800138000") == (both.index("13800138000"), sealed.index)
    assert both.index("13800138000") != sealed.index


@pytest.mark.parametrize(("env", "variable"), [
    ({"CALLCENTER_DATA_KEYS": D1}, "CALLCENTER_INDEX_KEYS"),
    ({"CALLCENTER_INDEX_KEYS": I1}, "CALLCENTER_DATA_KEYS"),
    ({"CALLCENTER_DATA_KEYS": "d1:not-base64!", "CALLCENTER_INDEX_KEYS": I1}, "CALLCENTER_DATA_KEYS"),
    ({"CALLCENTER_DATA_KEYS": D1, "CALLCENTER_INDEX_KEYS": "i1:" + base64.b64encode(b"short").decode()},
     "CALLCENTER_INDEX_KEYS"),
    ({"CALLCENTER_DATA_KEYS": f"{D1},{D1}", "CALLCENTER_INDEX_KEYS": I1}, "CALLCENTER_DATA_KEYS"),
    ({"CALLCENTER_DATA_KEYS": D1, "CALLCENTER_INDEX_KEYS": "no id"}, "CALLCENTER_INDEX_KEYS"),
])
def test_bad_keys_name_their_variable(env, variable) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert e.value.variable == variable and variable in str(e.value)
    # The message never echoes key material.
    for spec in env.values():
        assert spec.split(":", 1)[-1] not in str(e.value) or len(spec.split(":", 1)[-1]) < 8


def test_keys_from_env_or_a_generated_file(tmp_path) -> None:
    s = Settings.from_env({"CALLCENTER_DATA_KEYS": f"{D2},{D1}", "CALLCENTER_INDEX_KEYS": I1})
    assert s.phone_vault().current_key_id == "d2"
    assert "d2:" not in repr(s)  # keys stay out of reprs (and so out of logs)
    path = tmp_path / "keys" / "callcenter.keys"
    first = Settings.from_env({"CALLCENTER_KEY_FILE": str(path)}).phone_vault()
    assert path.stat().st_mode & 0o777 == 0o600
    token = first.encrypt("13800138000")
    second = Settings.from_env({"CALLCENTER_KEY_FILE": str(path)}).phone_vault()
    assert second.decrypt(token) == "13800138000" and second.index("1") == first.index("1")


# ---------------------------------------------------------------------------------------------
# Rotation on a database


async def _add_calls(sessionmaker, v: PhoneVault, numbers: list[str]) -> None:  # noqa: ANN001
    async with sessionmaker.begin() as s:
        for i, number in enumerate(numbers):
            sealed = v.seal(number)
            await s.execute(insert(Call).values(
                linkedid=f"17000000{i:02d}.{i}", caller_index=sealed.index, caller_enc=sealed.enc,
                caller_masked=sealed.masked, queue="aftersales", state="ended", outcome="answered",
                rang=[], started_at=NOW - dt.timedelta(hours=i + 1)))


async def _lookup(sessionmaker, v: PhoneVault, number: str):  # noqa: ANN001, ANN202
    async with sessionmaker() as s:
        return await build_caller_context(s, number, now=NOW, settings=keyed_settings(), vault=v)


async def test_rotate_reencrypts_reindexes_and_lookups_work_throughout(engine, sessionmaker) -> None:
    old = vault(D1, I1)
    settings = keyed_settings()
    service = CustomerService(sessionmaker, settings, old)
    ids = []
    for i in range(5):
        c = await service.create({"name": f"客户{i}", "phones": [f"1380013800{i}", f"0108888666{i}"]},
                                 AGENT, now=NOW)
        ids.append(c.id)
    await _add_calls(sessionmaker, old, ["13800138000", "13900001111", "13900001111"])
    async with sessionmaker.begin() as s:
        sealed = old.seal("13800138003")
        await s.execute(insert(IntakeRecord).values(
            number="CR20261124-001", created_at=NOW, customer_id=ids[3], product_model="KFR-35GW",
            request_type="维修", problem="不制冷", contact_phone_index=sealed.index,
            contact_phone_enc=sealed.enc, contact_phone_masked=sealed.masked))

    both = vault(f"{D2},{D1}", f"{I2},{I1}")
    names = {c.name for c in sealed_columns()}
    assert {"customer_phones.number_enc", "calls.caller_enc", "intake_records.contact_phone_enc",
            "users.mobile_enc"} <= names

    async def check_lookups(v: PhoneVault) -> None:
        after = CustomerService(sessionmaker, settings, v)
        for i, cid in enumerate(ids):
            assert await after.find_by_number(f"138-0013-800{i}") == cid
            assert await after.find_by_number(f"010 8888 666{i}") == cid
        unknown = await _lookup(sessionmaker, v, "13900001111")
        assert unknown.new_caller and unknown.calls_30d == 2
        known = await _lookup(sessionmaker, v, "13800138000")
        assert known.customer_id == ids[0] and known.customer.phones[0].masked == "138****8000"

    # New keys in place, nothing rotated yet: found through the old index key.
    await check_lookups(both)
    # Mid-rotation: phones re-indexed, calls not yet.
    report = await rotate(engine, both, check=True)
    assert report.per_column["customer_phones.number_enc"] == 10
    assert report.per_column["calls.caller_enc"] == 3
    assert report.per_column["intake_records.contact_phone_enc"] == 1
    phones = next(c for c in sealed_columns() if c.name == "customer_phones.number_enc")
    await _rotate_column(engine, both, phones, 3, False, type(report)())
    await check_lookups(both)

    report = await rotate(engine, both, batch=2)
    assert report.rows == 4 and report.reencrypted == 4 and report.reindexed == 4  # 3 calls + intake
    assert not report.unreadable
    async with sessionmaker() as s:
        for enc, index in (await s.execute(select(CustomerPhone.number_enc, CustomerPhone.number_index))).all():
            assert enc.startswith("d2:") and index == both.index(both.decrypt(enc))
        for enc, index in (await s.execute(select(Call.caller_enc, Call.caller_index))).all():
            assert enc.startswith("d2:") and index == both.index(both.decrypt(enc))
    # Idempotent: a second run finds nothing to do; the old keys can go.
    again = await rotate(engine, both)
    assert again.rows == 0 and again.scanned == report.scanned
    await check_lookups(vault(D2, I2))
    # A ciphertext no key opens is reported by id, and left alone.
    async with sessionmaker.begin() as s:
        await s.execute(text("UPDATE calls SET caller_enc = 'zz:AAAA' WHERE linkedid = '1700000000.0'"))
    bad = await rotate(engine, vault(D2, I2))
    assert [c for c, _ in bad.unreadable] == ["calls.caller_enc"] and bad.rows == 0


def test_cli_keys_new_and_rotate(tmp_path) -> None:
    env = {**os.environ, "CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/k.sqlite3",
           "CALLCENTER_KEY_FILE": str(tmp_path / "keys.json")}
    env = {k: v for k, v in env.items() if k not in ("CALLCENTER_DATA_KEYS", "CALLCENTER_INDEX_KEYS")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "callcenter", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    r = cli("keys", "new", "--id", "d7")
    assert r.returncode == 0, r.stderr
    spec = r.stdout.strip()
    assert spec.startswith("d7:") and PhoneVault.from_specs(spec, spec).current_key_id == "d7"
    assert cli("keys", "new", "--id", "bad id!").returncode == 2
    r = cli("keys", "rotate", "--check")
    assert r.returncode == 0 and "0 under old keys" in r.stdout, r.stdout + r.stderr
    r = cli("keys", "rotate")
    assert r.returncode == 0 and "customer_phones.number_enc: 0 rotated" in r.stdout


# ---------------------------------------------------------------------------------------------
# Migration 0003 converts what 0002 stored


async def test_migration_seals_existing_numbers(db_url) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, "0002")
        async with engine.begin() as c:
            await c.execute(text("INSERT INTO customers (id, name, level, remarks, created_at) "
                                 "VALUES (1, '张三', '', '', :t), (2, '李四', '', '', :t)"), {"t": NOW})
            await c.execute(text(
                "INSERT INTO customer_phones (customer_id, number, raw, kind) VALUES "
                "(1, '13800138000', '138-0013-8000', 'mobile'), (1, '01088886666', '010 8888 6666', "
                "'landline'), (2, '13900001111', '13900001111', 'mobile')"))
            for i, (number, cid) in enumerate([("13800138000", 1), ("", None),
                                               ("13700001111", None)]):
                await c.execute(text(
                    "INSERT INTO calls (linkedid, direction, caller_raw, caller_number, did, queue, "
                    "customer_id, agent_member, state, rang, rang_members, started_at) VALUES "
                    "(:lid, 'inbound', :n, :n, '', 'aftersales', :cid, '', 'ended', '[]', '', :t)"),
                    {"lid": f"1.{i}", "n": number, "cid": cid, "t": NOW - dt.timedelta(hours=i + 1)})
        # Without the keys the migration refuses to touch the numbers (and changes nothing).
        with pytest.raises(RuntimeError, match="needs the keys"):
            await migrate(engine, "0003")
        v = vault(D1, I1)
        await migrate(engine, "0003", vault=v)
        await migrate(engine, vault=v)  # and whatever other branches add
        sm = make_sessionmaker(engine)
        async with sm() as s:
            phones = (await s.execute(select(CustomerPhone).order_by(CustomerPhone.id))).scalars().all()
            calls = (await s.execute(select(Call).order_by(Call.linkedid))).scalars().all()
            columns = {r[0] for r in (await s.execute(text(
                "SELECT name FROM pragma_table_info('customer_phones')" if engine.dialect.name == "sqlite"
                else "SELECT column_name FROM information_schema.columns "
                     "WHERE table_name = 'customer_phones'"))).all()}
        assert columns == {"id", "customer_id", "number_index", "number_enc", "masked", "kind"}
        assert [(v.decrypt(p.number_enc), p.masked, p.kind) for p in phones] == [
            ("13800138000", "138****8000", "mobile"), ("01088886666", "010****6666", "landline"),
            ("13900001111", "139****1111", "mobile")]
        assert all(p.number_index == v.index(v.decrypt(p.number_enc)) for p in phones)
        assert [(c.caller_masked, c.caller_index == (v.index(v.decrypt(c.caller_enc)) if c.caller_enc else ""))
                for c in calls] == [("138****8000", True), ("", True), ("137****1111", True)]
        # The converted rows answer lookups and the unique index holds.
        service = CustomerService(sm, keyed_settings(), v)
        assert await service.find_by_number("+86 10 8888 6666") == 1
        ctx = await _lookup(sm, v, "13700001111")
        assert ctx.new_caller and ctx.calls_30d == 1
        with pytest.raises(IntegrityError):
            async with sm.begin() as s:
                s.add(CustomerPhone(customer_id=2, number_index=v.index("13800138000"),
                                    number_enc="x", masked="x", kind="mobile"))
    finally:
        await engine.dispose()
