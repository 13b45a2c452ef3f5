"""Ordered primary takeover/relinquish phases.

A phase is a pair of hooks. Takeover runs the phases in order; relinquish runs them in
reverse, so that what was brought up last goes down first. Later capabilities add
phases (floating addresses, the API, DHCP/DNS, the metadata service...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pvc.errors import PVCError

log = logging.getLogger(__name__)

Hook = Callable[[], None]


def _nothing() -> None:
    return None


def _fine() -> str | None:
    return None


@dataclass(frozen=True)
class Phase:
    """One step of taking over or giving up the primary role; ``check``, asked on each
    keepalive while primary, keeps what it brought up running (a sentence when it acted).

    ``abandon``, when given, replaces ``relinquish`` when the role must be dropped at once
    (the node can no longer prove it holds it): no graceful waits, nothing in flight kept.
    """

    name: str
    takeover: Hook = _nothing
    relinquish: Hook = _nothing
    check: Callable[[], str | None] = _fine
    abandon: Hook | None = None

    def give_up(self, at_once: bool) -> None:
        """Relinquish, or abandon when ``at_once`` and the phase has a quicker way."""
        (self.abandon if at_once and self.abandon is not None else self.relinquish)()


class PhaseError(PVCError):
    """A takeover phase failed; the phases before it were rolled back."""


class PrimaryPhases:
    """The ordered list of phases a node runs when its primary role changes."""

    def __init__(self, phases: list[Phase] | None = None) -> None:
        self._phases: list[Phase] = list(phases or [])

    def add(self, phase: Phase, *, before: str | None = None) -> None:
        """Append ``phase``, or put it just before the phase called ``before`` (appended
        when there is none)."""
        names = self.names
        if before is not None and before in names:
            self._phases.insert(names.index(before), phase)
        else:
            self._phases.append(phase)

    @property
    def names(self) -> list[str]:
        return [phase.name for phase in self._phases]

    def take_over(self) -> None:
        """Run every takeover hook in order; on failure undo the completed ones."""
        done: list[Phase] = []
        for phase in self._phases:
            try:
                log.debug("takeover phase %s", phase.name)
                phase.takeover()
            except Exception as error:
                log.error("takeover phase %s failed: %s", phase.name, error)
                self._relinquish(reversed(done))
                raise PhaseError(f"takeover phase {phase.name} failed: {error}") from error
            done.append(phase)

    def supervise(self) -> list[str]:
        """Run every phase's check (while primary); what they did. A failing check is logged
        and tried again at the next keepalive."""
        done = []
        for phase in self._phases:
            try:
                sentence = phase.check()
            except Exception as error:
                log.error("phase %s: its service could not be kept running: %s", phase.name, error)
                continue
            if sentence:
                done.append(sentence)
        return done

    def relinquish(self, first: Sequence[str] = (), *, at_once: bool = False) -> list[str]:
        """Run every relinquish hook in reverse order (the phases named in ``first`` before
        all others, in that order); returns the names that failed. With ``at_once`` the
        phases that can stop without waiting do (see :attr:`Phase.abandon`)."""
        ahead = [phase for name in first for phase in self._phases if phase.name == name]
        rest = [phase for phase in reversed(self._phases) if phase not in ahead]
        return self._relinquish([*ahead, *rest], at_once=at_once)

    @staticmethod
    def _relinquish(phases, *, at_once: bool = False) -> list[str]:
        failed = []
        took = []
        for phase in phases:
            started = time.monotonic()
            try:
                log.debug("relinquish phase %s", phase.name)
                phase.give_up(at_once)
            except Exception as error:  # keep going: every later phase must still run
                log.error("relinquish phase %s failed: %s", phase.name, error)
                failed.append(phase.name)
            took.append(f"{phase.name} {time.monotonic() - started:.2f} s")
        if took:
            log.info("relinquished%s: %s", " at once" if at_once else "", ", ".join(took))
        return failed
