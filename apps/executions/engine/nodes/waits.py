"""Nodes that wait for people or other systems: `signal_wait` (a named signal, or its timeout)
and `approval` (a work item decided by a person). What they do lives in engine/signals.py,
which also delivers signals, pauses, resumes and continues runs as new."""

from __future__ import annotations

from ..signals import activate_approval, activate_signal_wait


class SignalWait:
    activate = staticmethod(activate_signal_wait)


class Approval:
    activate = staticmethod(activate_approval)
