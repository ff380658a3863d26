"""Fault: ``callcenter import customers`` is SIGKILLed in the middle of a large file. What must
hold: no half-written customer (every one saved has its phone, address and appliance: rows are
saved in whole batches), the database is usable at once, and running the same import again
completes it without duplicating anyone or anything."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from tests import apphelpers as h
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
HEADER = ["姓名", "电话", "备用电话", "省", "市", "区", "详细地址", "品类", "品牌", "型号", "序列号", "购买日期", "保修月数"]
ROWS = 60_000


async def _counts(sm) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with sm() as s:
        return {t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (Customer, CustomerPhone, Address, Appliance)}


async def _import(env: dict[str, str], path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter", "import", "customers", str(path), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)


async def test_sigkill_mid_import_leaves_whole_customers_and_a_rerun_completes(tmp_path):
    path = tmp_path / "customers.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(ROWS):
            w.writerow([f"客户{i}", f"139{i:08d}", "", "广东省", "深圳市", "南山区", f"{i}号", "空调", "格力",
                        f"KFR-{i % 50}", f"SN{i}", "2023-05-01", "24"])
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.sqlite3'}"
    engine = make_engine(url)
    await migrate(engine, vault=h.fixed_vault())
    sm = make_sessionmaker(engine)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_DATABASE_URL=url, CALLCENTER_DATA_KEYS=h.TEST_KEYS["data_keys"],
               CALLCENTER_INDEX_KEYS=h.TEST_KEYS["index_keys"])
    try:
        proc = await _import(env, path)
        try:
            # Killed once some batches are in, well before the end.
            await wait_for(lambda: _some(sm), 60, interval=0.05, message="the import under way")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        mid = await _counts(sm)
        assert 0 < mid["customers"] < ROWS, mid
        # Whole customers only: each with its phone, its address and its appliance.
        assert mid["customers"] == mid["customer_phones"] == mid["addresses"] == mid["appliances"], mid

        proc = await _import(env, path)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()[-2000:]
        done = await _counts(sm)
        assert done == {"customers": ROWS, "customer_phones": ROWS, "addresses": ROWS, "appliances": ROWS}, done
    finally:
        await engine.dispose()


async def _some(sm) -> bool:  # type: ignore[no-untyped-def]
    counts = await _counts(sm)
    return counts["customers"] >= 2000
