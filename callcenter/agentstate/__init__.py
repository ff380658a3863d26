"""Agent states through AMI: queue login/logout, pause with a reason, resume, automatic wrap-up;
the live picture of members, waiting callers and the day's tallies, shared by every instance.

- ``rules.py``: what may be sent to Asterisk (strict patterns, no CR/LF) — pure;
- ``book.py``: :class:`LiveBook`, the live state built from ``QueueMember*``/``Agent*``/
  ``QueueCaller*`` events and rebuilt from ``QueueStatus`` — pure;
- ``services.py``: :class:`AgentStateService`, the glue on the AMI leader (events, resync,
  actions, wrap-up timers) and the published snapshot;
- ``store.py``: how the snapshot and the agents' commands travel between instances
  (in process, or Redis);
- ``http.py``: the agent's endpoints (``/api/agent-state…``).
"""
