"""The outbox and its sender on SQLite and PostgreSQL: queueing (deduplicated, in the caller's
transaction), sending what is due, retries then failure, leases that run out, cancellation, and
several senders at once never sending one message twice."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from callcenter.db.notify import Notification
from callcenter.notify.outbox import Outbox
from callcenter.notify.sender import OutboxSender
from tests.apphelpers import fixed_vault
from tests.notifyworld import FlakyGateway, Meeting, MeetingGateway, SlowGateway
from tests.privacy_scan import LogScan

T = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)
S = dt.timedelta(seconds=1)
MOBILE = "13800138000"


@pytest.fixture
def vault():  # type: ignore[no-untyped-def]
    return fixed_vault()


async def _queue(sessionmaker, vault, key: str, *, due: dt.datetime = T, number: str = MOBILE,  # type: ignore[no-untyped-def]
                 kind: str = "test.message") -> int | None:
    recipient = Outbox(vault).seal(number) if number.startswith("1") else vault.seal(number)
    async with sessionmaker.begin() as s:
        return await Outbox.enqueue(s, kind=kind, recipient=recipient, text=f"【测试】消息 {key}",
                                    dedupe_key=key, now=T - M, due_at=due)


async def _row(sessionmaker, nid: int) -> Notification:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        row = await s.get(Notification, nid)
    assert row is not None
    return row


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC)


async def test_queueing_is_deduplicated_and_follows_the_transaction(sessionmaker, vault) -> None:
    first = await _queue(sessionmaker, vault, "k1")
    assert first is not None
    assert await _queue(sessionmaker, vault, "k1") is None  # the same message again: nothing
    # Queued in a transaction that rolls back: nothing queued.
    with pytest.raises(RuntimeError):
        async with sessionmaker.begin() as s:
            await Outbox.enqueue(s, kind="test.message", recipient=vault.seal(MOBILE), text="x",
                                 dedupe_key="k2", now=T)
            raise RuntimeError("the change failed")
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Notification)) == 1
    row = await _row(sessionmaker, first)
    assert (row.status, row.attempts, row.recipient_masked, row.channel) == ("queued", 0, "138****8000", "sms")
    assert MOBILE not in row.recipient_enc and row.recipient_index == vault.index(MOBILE)


async def test_a_text_with_a_phone_number_is_refused(sessionmaker, vault) -> None:
    for text in ("请回电 13800138000", "请回电 +86 138-0013-8000"):
        with pytest.raises(ValueError):
            async with sessionmaker.begin() as s:
                await Outbox.enqueue(s, kind="test.message", recipient=vault.seal(MOBILE), text=text,
                                     dedupe_key="bad", now=T)
    with pytest.raises(ValueError):
        Outbox(vault).seal("01088886666")


async def test_a_pass_sends_what_is_due_and_only_that(sessionmaker, vault) -> None:
    now_id = await _queue(sessionmaker, vault, "now")
    later_id = await _queue(sessionmaker, vault, "later", due=T + M)
    gateway = FlakyGateway()
    sender = OutboxSender(sessionmaker, vault, gateway, hooks={})
    with LogScan() as logs:
        result = await sender.run_pass(T)
    assert (result.sent, result.retried, result.failed) == ([now_id], [], [])
    assert gateway.calls == [(MOBILE, "【测试】消息 now", f"ntf-{now_id}")]
    row = await _row(sessionmaker, now_id)
    assert (row.status, row.attempts, row.gateway_id, _utc(row.sent_at), row.lease_until) == (
        "sent", 1, "gw-1", T, None)
    assert (await _row(sessionmaker, later_id)).status == "queued"
    assert (await sender.run_pass(T)).sent == []  # nothing twice
    assert (await sender.run_pass(T + M)).sent == [later_id]
    assert any(f"notification {now_id}" in line and "138****8000" in line for line in logs.lines)


async def test_a_gateway_failure_is_retried_then_fails(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "flaky")
    gateway = FlakyGateway(failures=10)
    sender = OutboxSender(sessionmaker, vault, gateway, hooks={})
    with LogScan() as logs:
        assert (await sender.run_pass(T)).retried == [nid]
        row = await _row(sessionmaker, nid)
        assert (row.status, row.attempts, _utc(row.due_at)) == ("queued", 1, T + M)
        assert row.last_error.startswith("throttled: gateway busy")
        assert MOBILE not in row.last_error and "138****8000" in row.last_error  # masked
        assert (await sender.run_pass(T + 59 * S)).retried == []  # not yet
        assert (await sender.run_pass(T + M)).retried == [nid]
        assert _utc((await _row(sessionmaker, nid)).due_at) == T + 6 * M
        assert (await sender.run_pass(T + 6 * M)).retried == [nid]
        assert _utc((await _row(sessionmaker, nid)).due_at) == T + 21 * M
        assert (await sender.run_pass(T + 21 * M)).failed == [nid]
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 4, None)
    assert len(gateway.calls) == 4
    assert (await sender.run_pass(T + 24 * 60 * M)).failed == []  # failed is final
    assert logs.lines  # scanned on exit: the number never appears


async def test_a_retry_that_goes_through(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "once")
    sender = OutboxSender(sessionmaker, vault, FlakyGateway(failures=1), hooks={})
    assert (await sender.run_pass(T)).retried == [nid]
    assert (await sender.run_pass(T + M)).sent == [nid]
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts, row.last_error, _utc(row.sent_at)) == ("sent", 2, "", T + M)


async def test_a_refusal_fails_at_once(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "refused")
    gateway = FlakyGateway(failures=1, retryable=False)
    assert (await OutboxSender(sessionmaker, vault, gateway, hooks={}).run_pass(T)).failed == [nid]
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts) == ("failed", 1) and row.last_error.startswith("rejected")


async def test_a_number_that_is_no_mobile_is_never_sent(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "landline", number="01088886666")
    gateway = FlakyGateway()
    assert (await OutboxSender(sessionmaker, vault, gateway, hooks={}).run_pass(T)).failed == [nid]
    assert gateway.calls == []
    assert (await _row(sessionmaker, nid)).last_error.startswith("invalid_number")


async def test_a_gateway_that_hangs_times_out_and_is_retried(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "hang")
    sender = OutboxSender(sessionmaker, vault, SlowGateway(delay=30), hooks={}, send_timeout=0.05)
    assert (await sender.run_pass(T)).retried == [nid]
    assert (await _row(sessionmaker, nid)).last_error.startswith("timeout")


class _Broken:
    async def send(self, number: str, text: str, ref: str) -> str:
        raise ConnectionResetError(f"connection reset while sending to {number}")


async def test_a_gateway_that_breaks_is_retried_and_its_words_are_not_kept(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "broken")
    with LogScan():
        assert (await OutboxSender(sessionmaker, vault, _Broken(), hooks={}).run_pass(T)).retried == [nid]
    assert (await _row(sessionmaker, nid)).last_error == "error: ConnectionResetError"


async def test_a_claim_whose_lease_ran_out_is_taken_over(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "orphan")
    dead = OutboxSender(sessionmaker, vault, FlakyGateway(), hooks={})
    claimed, _, _ = await dead.claim(T)  # claimed, then the sender died before sending
    assert [c.id for c in claimed] == [nid]
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts, _utc(row.lease_until)) == ("sending", 1, T + 60 * S)
    gateway = FlakyGateway()
    other = OutboxSender(sessionmaker, vault, gateway, hooks={})
    assert (await other.run_pass(T + 59 * S)).sent == []  # the lease still holds
    assert (await other.run_pass(T + 60 * S)).sent == [nid]
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts) == ("sent", 2)
    assert [ref for _, _, ref in gateway.calls] == [f"ntf-{nid}"]  # the same reference
    # The dead sender's late outcome does not overwrite the row.
    from callcenter.notify.sender import _Outcome

    assert await dead._record(claimed[0], _Outcome("retry", error="late"), T + 2 * M) is None
    assert (await _row(sessionmaker, nid)).status == "sent"


async def test_an_orphan_on_its_last_attempt_fails(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "last")
    sender = OutboxSender(sessionmaker, vault, FlakyGateway(failures=3), hooks={})
    for at in (T, T + M, T + 6 * M):
        assert (await sender.run_pass(at)).retried == [nid]
    await sender.claim(T + 21 * M)  # the fourth attempt's sender dies
    result = await sender.run_pass(T + 23 * M)
    assert result.failed == [nid] and result.sent == []
    row = await _row(sessionmaker, nid)
    assert (row.status, row.attempts) == ("failed", 4) and row.last_error.startswith("lease_expired")


async def test_cancel_needs_a_scope_and_cancelled_messages_are_not_sent(sessionmaker, vault) -> None:
    keep = await _queue(sessionmaker, vault, "keep")
    drop = await _queue(sessionmaker, vault, "drop")
    async with sessionmaker.begin() as s:
        with pytest.raises(ValueError):
            await Outbox.cancel(s)  # everything? no
        assert await Outbox.cancel(s, appointment_ids=[]) == 0
        await s.execute(Notification.__table__.update().where(Notification.id == drop).values(status="cancelled"))
    assert (await OutboxSender(sessionmaker, vault, FlakyGateway(), hooks={}).run_pass(T)).sent == [keep]


class _NotWanted:
    async def still_wanted(self, session, row) -> bool:  # type: ignore[no-untyped-def]
        return False

    async def sent(self, session, row, at) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("never sent")


async def test_a_message_no_longer_wanted_is_cancelled_when_due(sessionmaker, vault) -> None:
    nid = await _queue(sessionmaker, vault, "stale", kind="stale.kind")
    gateway = FlakyGateway()
    result = await OutboxSender(sessionmaker, vault, gateway, hooks={"stale.kind": _NotWanted()}).run_pass(T)
    assert (result.cancelled, result.sent, gateway.calls) == ([nid], [], [])
    assert (await _row(sessionmaker, nid)).status == "cancelled"


async def test_a_claim_takes_at_most_a_batch(sessionmaker, vault) -> None:
    for i in range(10):
        await _queue(sessionmaker, vault, f"b{i}")
    sender = OutboxSender(sessionmaker, vault, FlakyGateway(), hooks={}, batch=4)
    claimed, _, _ = await sender.claim(T)
    assert len(claimed) == 4
    claimed2, _, _ = await sender.claim(T)
    assert len(claimed2) == 4 and not {c.id for c in claimed} & {c.id for c in claimed2}


async def test_several_senders_never_send_a_message_twice(sessionmaker, vault) -> None:
    """Three senders (as on three instances) drain 60 messages at once, in small batches; the
    gateways hold the first sends until two senders are sending side by side. Every message goes
    out exactly once. PostgreSQL: SKIP LOCKED and the re-checked WHERE; SQLite: one writer at a
    time."""
    ids = [await _queue(sessionmaker, vault, f"m{i}") for i in range(60)]
    meeting = Meeting(senders=2)
    gateways = [MeetingGateway(meeting, who) for who in range(3)]
    senders = [OutboxSender(sessionmaker, vault, g, hooks={}, batch=4) for g in gateways]
    results = await asyncio.gather(*(s.run_pass(T) for s in senders), *(s.run_pass(T) for s in senders))
    refs = [r for g in gateways for r in g.refs]
    assert sorted(refs) == sorted(f"ntf-{i}" for i in ids), "a message was sent twice or not at all"
    assert sorted(i for r in results for i in r.sent) == sorted(ids)
    assert sum(1 for g in gateways if g.refs) >= 2, "the work was not shared"
    async with sessionmaker() as s:
        assert set((await s.execute(select(Notification.status))).scalars()) == {"sent"}
