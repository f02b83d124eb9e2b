"""The life of one worker, as a state machine that remembers every transition."""

from __future__ import annotations

ALLOWED = {
    "starting": {"ready", "failed"},
    "ready": {"busy", "ready", "stopping"},  # ready -> ready: a health check passed
    "busy": {"ready", "failed"},
    "stopping": {"stopped"},
    "failed": {"starting"},
    "stopped": set(),
}


class WorkerStateMachine:
    def __init__(self) -> None:
        self.state = "starting"
        self.transition_history: list[tuple[str, str]] = []

    def to(self, state: str) -> None:
        if state not in ALLOWED[self.state]:
            raise ValueError(f"worker cannot go from {self.state} to {state}")
        self.transition_history.append((self.state, state))
        self.state = state

    def health_check(self) -> bool:
        """A passing check while idle is recorded, so the history shows the worker was seen."""
        if self.state == "ready":
            self.to("ready")
        return self.state in ("ready", "busy")

    def run_one_task(self) -> None:
        self.to("busy")
        self.to("ready")
        self.health_check()
