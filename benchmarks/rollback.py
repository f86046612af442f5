"""Figure 5: rollback latency, and failed requests during rollback and promotion under load.

On the engine's local platform (process mode, ``tests/services/fault_service.py``) behind its
HAProxy router, with a closed-loop load through the router the whole time, each round does
what the canary gate does:

A. canary with 5 % errors at 10 % weight; the engine's ``Sampler`` and ``Judge`` judge 1 s
   intervals until a failing verdict; then the gate's rollback steps: ``rollback_traffic``
   (router 100 % stable, read back), ``remove_canary`` (drained, stopped),
   ``verify_main``;
B. a good canary at 10 %, then ``promote`` (100 % to it, old main drained and stopped,
   canary relabelled main) and ``verify_main``;
C. emergency rollback of that promotion: ``rollback(release_image)`` brings the previous
   version back as main (new replicas, traffic shifted, promoted ones drained);
D. blue/green: the next version as the idle colour at full size at 0 %, the switch (all
   traffic in one router change, ``verify_live``), then the switch back (``rollback_traffic``,
   the new colour drained and stopped, ``verify_main``).

Times are ratios to one bare HAProxy runtime-API round trip (``show servers state``) measured
in the same round; failed requests are counted per phase, with the steady state before
the verdict as the baseline.

    python benchmarks/rollback.py [--quick] [--reps N] [--out DIR]
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _canary import LoadLoop, Response, Stack, load_through, local_stack
from _common import (
    BenchmarkError,
    Figure,
    command_line,
    fmt_ratio,
    fmt_seconds,
    fmt_spread,
    out_dir,
    parser,
    reps,
    summarize,
)

from pytest_release.canary.config import SamplerConfig
from pytest_release.canary.judge import Judge, JudgeConfig
from pytest_release.canary.sampler import Sampler

INTERVAL = 1.0
MAX_LOOKS = 15
WEIGHT = 10
ERROR_RATE = "0.05"


@dataclass(frozen=True)
class Round:
    api_round_trip: float
    verdict_look: int
    to_traffic: float  # verdict -> router reads back 100 % stable
    to_removed: float  # verdict -> canary drained and stopped
    to_verified: float  # verdict -> main verified through the router
    last_canary_response: float  # verdict -> start of the last request the canary served
    steady: tuple[int, int]  # (requests, rollout-caused failures) in the steady window
    rollback: tuple[int, int]
    promote_time: float
    promotion: tuple[int, int]
    restore_time: float
    restore: tuple[int, int]
    switch_time: float
    switch: tuple[int, int]
    switch_back_time: float
    switch_back: tuple[int, int]
    failures: tuple[str, ...]


def api_round_trip(stack: Stack) -> float:
    """One bare runtime-API command on HAProxy's admin socket (no lock, no state file)."""
    state = stack.router._load()
    start = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(state.socket)
        sock.sendall(b"show servers state app\n")
        while sock.recv(65536):
            pass
    return time.perf_counter() - start


def caused_by_rollout(response: Response, injected_version: str | None) -> bool:
    """A failure the rollout (router, draining, stopping) caused - not an error the bad
    canary injects on purpose (HTTP 500 answered by that version)."""
    if response.status is None:
        return True
    if response.status < 500:
        return False
    return not (injected_version and response.version == injected_version)


def count(
    load: LoadLoop, start: float, end: float, injected: str | None
) -> tuple[tuple[int, int], list[str]]:
    responses = load.between(start, end)
    bad = [r for r in responses if caused_by_rollout(r, injected)]
    text = [r.error or f"HTTP {r.status} from {r.version or 'the router'}" for r in bad]
    return (len(responses), len(bad)), text


def judge_until_fail(stack: Stack, image: str) -> tuple[float, int]:
    """Sampler + judge as the gate drives them; returns (time of the failing verdict, look)."""
    judge_config = JudgeConfig.model_validate(
        {
            "no_success_window": 30.0 / 60.0,
            "sustained_error_window": 120.0 / 60.0,
            "slow_response_window": 60.0 / 60.0,
        }
    )
    sampler_config = SamplerConfig.model_validate(
        {"rate": 0, "direct_rate": 40, "health_interval": 0.25, "status_interval": 0.25}
    )
    sampler = Sampler(sampler_config, stack.targets(), status=stack.replicas)
    judge = Judge(judge_config, planned_looks=MAX_LOOKS)
    sampler.start()
    hold_start = time.time()
    try:
        for look in range(1, MAX_LOOKS + 1):
            start = hold_start + (look - 1) * INTERVAL
            end = start + INTERVAL
            while (remaining := end - time.time()) > 0:
                time.sleep(min(0.05, remaining))
            sampler.settle(end)
            verdict = judge.judge_interval(
                sampler.samples(start, end),
                sampler.statuses(start, end),
                start,
                end,
                sampler.samples(None, end),
                look=look,
            )
            if verdict.verdict == "fail":
                return time.time(), look
    finally:
        sampler.stop()
    raise BenchmarkError(
        f"the judge did not fail the canary {image} ({ERROR_RATE} errors) in {MAX_LOOKS} looks"
    )


def one_round(stack: Stack, load: LoadLoop, k: int) -> Round:
    rollout = stack.rollout
    failures: list[str] = []
    trip = api_round_trip(stack)

    # A. bad canary, judged, rolled back.
    bad = f"bad-{k}"
    rollout.deploy_canary(bad, 1)
    rollout.shift(WEIGHT)
    judged_from = time.time()
    verdict_at, look = judge_until_fail(stack, bad)
    weights = rollout.rollback_traffic()
    t_traffic = time.time()
    if (weights.stable, weights.canary) != (100, 0):
        raise BenchmarkError(f"rollback_traffic left the router at {weights}")
    rollout.remove_canary()
    t_removed = time.time()
    rollout.verify_main(None, None, 20)
    t_verified = time.time()
    time.sleep(0.2)  # let requests in flight at the end of the phase finish
    served = [r for r in load.between(verdict_at - 5.0, t_verified) if r.version == bad]
    last = max((r.started for r in served), default=verdict_at) - verdict_at
    steady, _ = count(load, judged_from, verdict_at, bad)
    rolled, text = count(load, verdict_at, t_verified + 0.2, bad)
    failures += text

    # B. good canary, promoted.
    good = f"good-{k}"
    rollout.deploy_canary(good, 1)
    rollout.shift(WEIGHT)
    time.sleep(0.3)
    p0 = time.time()
    rollout.promote(good, 1)
    rollout.verify_main(good, 1, 20)
    p1 = time.time()
    time.sleep(0.2)
    promoted, text = count(load, p0, p1 + 0.2, None)
    failures += text

    # C. emergency rollback of the promotion: the previous version is main again.
    time.sleep(0.3)
    r0 = time.time()
    status = rollout.rollback(good)
    rollout.verify_main(status.stable_image, None, 20)
    r1 = time.time()
    time.sleep(0.2)
    restored, text = count(load, r0, r1 + 0.2, None)
    failures += text
    if status.stable_image == good:
        raise BenchmarkError(f"rollback({good!r}) left {good} as the main deployment")

    # D. blue/green: switch to the idle colour and back.
    from pytest_release.canary.bluegreen import verify_live
    from pytest_release.canary.rollout import NO_BASELINE

    green = f"green-{k}"
    rollout.shift(0)
    rollout.deploy_canary(green, 1)
    time.sleep(0.3)
    s0 = time.time()
    weights = rollout.shift(100)
    if (weights.stable, weights.canary) != (0, 100):
        raise BenchmarkError(f"the switch left the router at {weights}")
    verify_live(rollout, green, 20, NO_BASELINE)
    s1 = time.time()
    time.sleep(0.3)
    b0 = time.time()
    rollout.rollback_traffic()
    rollout.remove_canary()
    rollout.verify_main(status.stable_image, None, 20)
    b1 = time.time()
    time.sleep(0.2)
    switched, text = count(load, s0, s1 + 0.2, None)
    failures += text
    switched_back, text = count(load, b0, b1 + 0.2, None)
    failures += text

    return Round(
        api_round_trip=trip,
        verdict_look=look,
        to_traffic=t_traffic - verdict_at,
        to_removed=t_removed - verdict_at,
        to_verified=t_verified - verdict_at,
        last_canary_response=last,
        steady=steady,
        rollback=rolled,
        promote_time=p1 - p0,
        promotion=promoted,
        restore_time=r1 - r0,
        restore=restored,
        switch_time=s1 - s0,
        switch=switched,
        switch_back_time=b1 - b0,
        switch_back=switched_back,
        failures=tuple(failures),
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    out = out_dir(args)
    rounds = reps(args, full=15, quick=1)
    figure = Figure(
        "rollback", command_line("rollback.py", sys.argv[1:] if argv is None else argv), args.quick
    )
    image_env = {f"bad-{k}": {"FAULT_ERROR_RATE": ERROR_RATE} for k in range(rounds)}
    results: list[Round] = []
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="pytest-release-bench-rollback-") as state,
        local_stack(Path(state), image_env) as stack,
    ):
        port = int(stack.router.url.rpartition(":")[2])
        with load_through(port, threads=4) as load:
            time.sleep(0.5)
            for k in range(rounds):
                results.append(one_round(stack, load, k))
                r = results[-1]
                print(
                    f"  round {k + 1}/{rounds}: verdict at look {r.verdict_look}, "
                    f"100% stable after {r.to_traffic * 1000:.0f} ms, failures "
                    f"{r.rollback[1]}/{r.promotion[1]}/{r.restore[1]}",
                    flush=True,
                )
            total_requests = len(load.responses)
            load_seconds = time.time() - started

    def s(values: Sequence[float]) -> str:
        return fmt_spread(summarize(values))

    trips = [r.api_round_trip for r in results]
    times = figure.table(
        "Rollback latency from the failing verdict (ratio: to one bare HAProxy runtime-API "
        "round trip measured in the same round)",
        ["step done", "time after the verdict", "ratio to one runtime-API round trip", "n"],
    )
    for label, values in (
        ("router reads back 100 % stable (`rollback_traffic`)", [r.to_traffic for r in results]),
        ("canary drained and stopped (`remove_canary`)", [r.to_removed for r in results]),
        (
            "main verified: 20 requests through the router (`verify_main`)",
            [r.to_verified for r in results],
        ),
        (
            "last request served by the canary started (observed by the load)",
            [max(0.0, r.last_canary_response) for r in results],
        ),
    ):
        ratios = [v / t for v, t in zip(values, trips, strict=True)]
        times.rows.append([label, s(values), fmt_ratio(summarize(ratios)), str(len(values))])
    times.rows.append(["(baseline) bare runtime-API round trip", s(trips), "1.00x", str(rounds)])

    def total(pairs: Sequence[tuple[int, int]]) -> tuple[int, int]:
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    failed = figure.table(
        "Failed requests under continuous load through the router (transport errors and "
        "5xx not injected by the bad canary on purpose), summed over all rounds",
        ["phase", "phase duration", "requests", "failed", "failed per 1,000"],
    )
    phases = (
        ("steady state before the verdict (baseline)", [r.steady for r in results], None),
        (
            "rollback (verdict -> main verified)",
            [r.rollback for r in results],
            [r.to_verified for r in results],
        ),
        (
            "promotion (`promote` + `verify_main`)",
            [r.promotion for r in results],
            [r.promote_time for r in results],
        ),
        (
            "emergency rollback of the promotion (`rollback` + `verify_main`)",
            [r.restore for r in results],
            [r.restore_time for r in results],
        ),
        (
            "blue/green switch (one router change + `verify_live`)",
            [r.switch for r in results],
            [r.switch_time for r in results],
        ),
        (
            "blue/green switch back (`rollback_traffic`, `remove_canary`, `verify_main`)",
            [r.switch_back for r in results],
            [r.switch_back_time for r in results],
        ),
    )
    for label, pairs, durations in phases:
        requests, bad = total(pairs)
        failed.rows.append(
            [
                label,
                s(durations) if durations else "-",
                str(requests),
                str(bad),
                f"{1000 * bad / requests:.2f}" if requests else "-",
            ]
        )
    looks = [r.verdict_look for r in results]
    rate = total_requests / load_seconds if load_seconds else 0.0
    median_traffic = summarize([r.to_traffic for r in results]).median
    phases_of = ("rollback", "promotion", "restore", "switch", "switch_back")
    all_failed = sum(getattr(r, name)[1] for r in results for name in phases_of)
    all_requests = sum(getattr(r, name)[0] for r in results for name in phases_of)
    figure.summary += [
        f"failing verdict -> router at 100 % stable: {fmt_seconds(median_traffic)} median "
        f"({fmt_ratio(summarize([r.to_traffic / r.api_round_trip for r in results]))} one "
        "runtime-API round trip)",
        f"failed requests during rollbacks, promotions and blue/green switches: {all_failed} "
        f"of {all_requests}",
    ]
    figure.notes += [
        f"Load: 4 closed-loop client threads with keep-alive through HAProxy, about "
        f"{rate:.0f} req/s overall ({total_requests} requests in {load_seconds:.0f} s).",
        f"Judge: 1 s intervals (time windows compressed x60), the canary answers "
        f"{float(ERROR_RATE) * 100:g} % of its requests with 500 at {WEIGHT} % weight; the "
        f"verdict came at look {min(looks)}-{max(looks)} (median "
        f"{summarize([float(x) for x in looks]).median:g}).",
        "Main deployment: 1 replica; each canary 1 replica; replicas are processes of "
        "tests/services/fault_service.py under the platform's supervisor.",
        "The rollback steps are the ones the canary gate's rollback items call, in the same "
        "order, without pytest around them.",
    ]
    failures = [f for r in results for f in r.failures]
    if failures:
        figure.notes.append("Failures seen: " + "; ".join(sorted(set(failures))[:10]))
    figure.raw = {"rounds": [r.__dict__ for r in results], "load_rate": rate}
    figure.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
