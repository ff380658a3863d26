"""Messages to customers through a notification outbox (issue 4 item 5; issue 5's SMS fallback).

A message is a row of ``notifications`` (``callcenter.db.notify``) queued with
:meth:`~callcenter.notify.outbox.Outbox.enqueue` in the transaction of the change that calls for
it (so a rolled-back change sends nothing, and a committed one is never forgotten); the
:class:`~callcenter.notify.sender.OutboxSender` claims due rows under a lease, sends them through
the configured :class:`~callcenter.notify.gateway.SmsGateway`, and records the outcome, retrying
by :func:`~callcenter.notify.rules.retry_at`. What a kind of message does before and after it is
sent (still wanted? which milestone does it set?) is its :class:`~callcenter.notify.sender.KindHooks`
(``visits.py``: the SA-AP-003 confirmation and the visit reminder).
"""
