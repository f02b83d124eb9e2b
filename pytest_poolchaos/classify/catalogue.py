"""Every built-in rule, listed once, with its stable id.

Ids appear as they are in the JSON report (``diagnosis.rules``) and are what
``--poolchaos-disable-rules`` / ``poolchaos_disable_rules`` switch off. A rule's doc is its check's
docstring. Checks return a Finding (or None) without id and category; ``_rule`` fills both in,
so no check repeats them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ..guard import record
from ..model import Category, Evidence, Finding, Rule
from . import expectation, lifecycle, mockgap, pollution, race, timeout

__all__ = ["FALLBACKS", "RULES", "by_id", "run_rules"]

Check = Callable[[Evidence], Finding | None]


def _rule(rule_id: str, category: Category, check: Check) -> Rule:
    def run(evidence: Evidence) -> Finding | None:
        found = check(evidence)
        if found is None:
            return None
        return replace(found, rule=rule_id, category=category)

    return Rule(rule_id, category, run, (check.__doc__ or "").strip())


_T, _E, _L = Category.TIMEOUT, Category.EXPECTATION, Category.LIFECYCLE
_P, _M, _R = Category.CONFIG_POLLUTION, Category.MOCK_GAP, Category.RACE

RULES: tuple[Rule, ...] = (
    _rule("timeout.pytest-timeout", _T, timeout.pytest_timeout),
    _rule("timeout.timeout-error", _T, timeout.timeout_error),
    _rule("timeout.subprocess", _T, timeout.subprocess_timeout),
    _rule("timeout.queue-empty", _T, timeout.queue_empty),
    _rule("timeout.event-wait", _T, timeout.event_wait),
    _rule("timeout.near-limit", _T, timeout.near_limit),
    _rule("timeout.thread-method-kill", _T, timeout.thread_method_kill),
    _rule("timeout.dropped-wait", _T, timeout.dropped_wait),
    _rule("timeout.busy-timeout", _T, timeout.busy_timeout),
    _rule("timeout.deadline-gave-up", _T, timeout.deadline_gave_up),
    _rule("timeout.bounded-wait", _T, timeout.bounded_wait),
    _rule("timeout.barrier", _T, timeout.barrier_timeout),
    _rule("expectation.threshold", _E, expectation.threshold),
    _rule("expectation.exact-count", _E, expectation.exact_count),
    _rule("expectation.ordering", _E, expectation.ordering),
    _rule("expectation.distribution", _E, expectation.distribution),
    _rule("expectation.approx", _E, expectation.approx),
    _rule("lifecycle.broken-executor", _L, lifecycle.broken_executor),
    _rule("lifecycle.pool-shut-down", _L, lifecycle.pool_shut_down),
    _rule("lifecycle.used-after-close", _L, lifecycle.used_after_close),
    _rule("lifecycle.cancelled", _L, lifecycle.cancelled),
    _rule("lifecycle.child-failed", _L, lifecycle.child_failed),
    _rule("lifecycle.refused-by-state", _L, lifecycle.refused_by_state),
    _rule("lifecycle.waited-on-shut-pool", _L, lifecycle.waited_on_shut_pool),
    _rule("lifecycle.connection", _L, lifecycle.connection),
    _rule("lifecycle.end-of-stream", _L, lifecycle.end_of_stream),
    _rule("lifecycle.loop-closed", _L, lifecycle.loop_closed),
    _rule("lifecycle.address-in-use", _L, lifecycle.address_in_use),
    _rule("lifecycle.already-started", _L, lifecycle.already_started),
    _rule("lifecycle.unhandled-thread", _L, lifecycle.unhandled_thread),
    _rule("lifecycle.worker-exit", _L, lifecycle.worker_exit),
    _rule("lifecycle.own-leaks", _L, lifecycle.own_leaks),
    _rule("lifecycle.never-awaited", _L, lifecycle.never_awaited),
    _rule("lifecycle.process-died", _L, lifecycle.process_died),
    _rule("lifecycle.dead-before-timeout", _L, lifecycle.dead_before_timeout),
    _rule("lifecycle.died-with-work", _L, lifecycle.died_with_work),
    _rule("lifecycle.killed-with-work", _L, lifecycle.killed_with_work),
    _rule("lifecycle.abandoned-queue", _L, lifecycle.abandoned_queue),
    _rule("lifecycle.setter-gone", _L, lifecycle.setter_gone),
    _rule("config-pollution.ledger-match", _P, pollution.ledger_match),
    _rule("config-pollution.watched", _P, pollution.watched),
    _rule("config-pollution.env-key-error", _P, pollution.env_key_error),
    _rule("config-pollution.cwd-relative-path", _P, pollution.cwd_relative),
    _rule("config-pollution.sys-path-import", _P, pollution.syspath_import),
    _rule("config-pollution.leaked-patch", _P, pollution.leaked_patch),
    _rule("config-pollution.socket-timeout", _P, pollution.socket_timeout),
    _rule("config-pollution.captured-logs", _P, pollution.captured_logs),
    _rule("config-pollution.timeout-alarm", _P, pollution.timeout_alarm),
    _rule("config-pollution.read-on-the-way", _P, pollution.read_on_the_way),
    _rule("config-pollution.order-dependent", _P, pollution.order_dependent),
    _rule("config-pollution.passes-alone", _P, pollution.passes_alone),
    _rule("config-pollution.outstanding", _P, pollution.outstanding),
    _rule("mock-gap.spec-attribute", _M, mockgap.spec_attribute),
    _rule("mock-gap.not-implemented", _M, mockgap.not_implemented),
    _rule("mock-gap.mock-value", _M, mockgap.mock_value),
    _rule("mock-gap.never-awaited", _M, mockgap.never_awaited),
    _rule("mock-gap.mock-assertion", _M, mockgap.mock_assertion),
    _rule("mock-gap.real-resources", _M, mockgap.real_resources),
    _rule("mock-gap.zero-from-double", _M, mockgap.zero_from_double),
    _rule("mock-gap.side-effect-exhausted", _M, mockgap.side_effect_exhausted),
    _rule("mock-gap.missed-patch", _M, mockgap.missed_patch),
    _rule("mock-gap.unset-call", _M, mockgap.unset_call),
    _rule("mock-gap.magic-default", _M, mockgap.magic_default),
    _rule("mock-gap.double-in-computation", _M, mockgap.double_in_computation),
    _rule("mock-gap.unset-attribute", _M, mockgap.unset_attribute_decided),
    _rule("mock-gap.frozen-clock", _M, mockgap.frozen_clock),
    _rule("mock-gap.patched-worker", _M, mockgap.patched_worker),
    _rule("mock-gap.none-from-double", _M, mockgap.none_from_double),
    _rule("race.self-deadlock", _R, race.self_deadlock),
    _rule("race.closed-under-use", _R, race.closed_under_use),
    _rule("race.set-late", _R, race.set_late),
    _rule("race.started-twice", _R, race.started_twice),
    _rule("race.lock-ownership", _R, race.lock_ownership),
    _rule("race.concurrent-mutation", _R, race.concurrent_mutation),
    _rule("race.generator-reentry", _R, race.generator_reentry),
    _rule("race.lost-update", _R, race.lost_update),
    _rule("race.duplicate-instance", _R, race.duplicate_instance),
    _rule("race.broken-invariant", _R, race.broken_invariant),
    _rule("race.negative-count", _R, race.negative_count),
    _rule("race.thread-bound", _R, race.thread_bound),
    _rule("race.over-release", _R, race.over_release),
    _rule("race.shared-reader", _R, race.shared_reader),
    _rule("race.database-locked", _R, race.database_locked),
    _rule("race.lost-wakeup", _R, race.lost_wakeup),
    _rule("race.file-check-then-act", _R, race.file_check_then_act),
    _rule("race.lock-order", _R, race.lock_order),
    _rule("race.undrained-pipe", _R, race.undrained_pipe),
    _rule("race.flips-alone", _R, race.flips_alone),
)

#: Rules that speak only when no rule above claims the failure, the first that speaks wins:
#: a failed worker process, then work still running at the failing assert, then a race.
FALLBACKS: tuple[Rule, ...] = (
    _rule("lifecycle.worker-failed", _L, lifecycle.worker_failed),
    _rule("lifecycle.stopped-under-it", _L, lifecycle.stopped_under_it),
    _rule("timeout.work-in-progress", _T, timeout.work_in_progress),
    _rule("race.unexplained-concurrency", _R, race.unexplained),
)


def by_id() -> dict[str, Rule]:
    return {rule.id: rule for rule in (*RULES, *FALLBACKS)}


def run_rules(rules: Sequence[Rule], evidence: Evidence) -> list[Finding]:
    """Every rule's finding; a rule that raises is an internal problem, the others still run."""
    findings = []
    for rule in rules:
        try:
            found = rule.check(evidence)
        except Exception as error:
            record(f"rule {rule.id}", error)
            continue
        if found is not None:
            findings.append(found)
    return findings
