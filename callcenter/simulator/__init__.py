"""A protocol-faithful Asterisk Manager Interface for tests, the demo and benchmarks.

- :class:`AmiSimulator` (``server.py``): a simulated Asterisk 22 with queues, agents and a
  trunk, generating the event stream recorded in ``shared/asterisk/transcripts``.
- :class:`TranscriptReplayServer` (``replay.py``): replays one recording byte for byte.
"""

from .config import MemberConfig, QueueConfig, SimulatorConfig
from .replay import TranscriptReplayServer
from .server import AmiSimulator

__all__ = ["AmiSimulator", "MemberConfig", "QueueConfig", "SimulatorConfig",
           "TranscriptReplayServer"]
