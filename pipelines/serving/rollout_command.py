"""`kubetfx rollout start|status|advance|promote|abort` and `kubetfx rollout --auto`: a
staged rollout of a pushed candidate beside the stable version, through the config's plan
(default 5, 10, 20, 100% of callers), decided on live outcomes (rollout_rule.py).

The state is `<serving_dir>/rollout.json` (components/serving/rollout_state.py), which
the model server and the logging proxy follow: every command here changes it with one
atomic write, under the pipeline's home lock (a run's push never interleaves). Abort
sets status aborted and the candidate's share to 0 in that one write, so all traffic is
on stable at the server's next poll. Promote makes the candidate stable (status
promoted): it is the highest version the Pusher wrote, so the server serves it to
everybody as it serves any push. `--auto` applies the rule once: advance to the next
step, promote when the rule passes at the plan's last step below 100% (100% of callers
on the candidate leaves no stable traffic to compare with, so reaching it is the
promotion), abort, or wait. Each decision is recorded with its evidence
(pipelines/record/rollout_history.py).

With `rollout: {mode: staged}`, `kubetfx run` calls pin_for_push() before the run (the
served version stays served while the Pusher writes a higher one) and after_run() after
it: a blessed push starts a rollout at plan[0], anything else lifts the pin."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
from typing import Optional

from kubetfx.components.serving import rollout_state
from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError, PipelineConfig, home_for
from kubetfx.pipelines.serving import rollout_rule

ACTIONS = ("start", "status", "advance", "promote", "abort")


def _now_ms_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _load(config) -> Optional[rollout_state.RolloutState]:
    try:
        return rollout_state.load(config.serving_dir)
    except rollout_state.RolloutStateError as err:
        raise ConfigError(f"{err}; fix or remove the file (abort writes a new one)") from None


def _versions(config) -> list:
    from kubetfx.components.serving import valid_version

    return valid_version.versions(config.serving_dir)


def _record(config, state, decision: str, evidence: dict) -> None:
    from kubetfx.pipelines.record import rollout_history

    percent = state.candidate_percent
    rollout_history.record(config, {
        "time": _now_ms_iso(), "candidate": state.candidate if decision != "promote" else state.stable,
        "stable": state.stable if decision != "promote" else state.extra.get("previous_stable"),
        "step": state.step, "percent": percent if decision != "promote" else 100.0,
        "decision": decision, "evidence": evidence})


def _write(config, state) -> None:
    rollout_state.write(config.serving_dir, state)


def _new_step(state, step: int):
    extra = {**state.extra, "step_started": _now_ms_iso()}
    return dataclasses.replace(state, extra=extra).with_changes(step=step, candidate_percent=float(state.plan[step]))


def _running(config):
    state = _load(config)
    if state is None or not state.running or state.candidate is None:
        raise ConfigError(f"no rollout is running for {config.name} (`kubetfx rollout start` begins one)")
    return state


# ---- the actions ------------------------------------------------------------------
def start(config, candidate: Optional[int] = None, stable: Optional[int] = None, *, evidence=None):
    """A running rollout of `candidate` (default: the highest version) beside `stable`
    (default: the version everybody is served: the last rollout's stable, else the highest
    version below the candidate)."""
    versions = _versions(config)
    if not versions:
        raise ConfigError(f"pipeline {config.name} has no pushed model in {config.serving_dir}: run `kubetfx run` first")
    candidate = versions[-1] if candidate is None else int(candidate)
    previous = _load(config)
    if previous is not None and previous.running and previous.candidate is not None:
        raise ConfigError(f"a rollout of version {previous.candidate} is running: promote or abort it first")
    if stable is None:
        stable = previous.stable if previous is not None else max((v for v in versions if v < candidate), default=None)
    for name, version in (("candidate", candidate), ("stable", stable)):
        if version is None or int(version) not in versions:
            raise ConfigError(f"{name} version {version} is not a complete version in {config.serving_dir}; "
                              f"versions: {', '.join(map(str, versions))}")
    if int(stable) == candidate:
        raise ConfigError(f"version {candidate} is already the stable version")
    rule = config.rollout
    state = rollout_state.RolloutState.begin(int(stable), candidate, rule.plan, rule.key)
    state = dataclasses.replace(state, extra={"step_started": _now_ms_iso()}).validate()
    _write(config, state)
    _record(config, state, "start", evidence or {})
    return state


def advance(config, evidence=None):
    state = _running(config)
    if state.step + 1 >= len(state.plan):
        raise ConfigError(f"version {state.candidate} is at the plan's last step ({state.candidate_percent:g}%): "
                          "`kubetfx rollout promote` makes it stable")
    state = _new_step(state, state.step + 1)
    _write(config, state)
    _record(config, state, "advance", evidence or {"by": "hand"})
    return state


def promote(config, evidence=None):
    state = _running(config)
    promoted = dataclasses.replace(state, extra={**state.extra, "previous_stable": state.stable}).with_changes(
        stable=state.candidate, candidate=None, candidate_percent=0.0, status="promoted")
    _write(config, promoted)
    _record(config, promoted, "promote", evidence or {"by": "hand"})
    return promoted


def abort(config, evidence=None):
    state = _running(config)
    aborted = state.with_changes(candidate_percent=0.0, status="aborted")
    _write(config, aborted)
    _record(config, dataclasses.replace(aborted, candidate_percent=state.candidate_percent), "abort",
            evidence or {"by": "hand"})
    return aborted


def evaluate(config, state) -> dict:
    """The step's live figures per track and the rule's verdict on them."""
    from kubetfx.pipelines.serving import feedback, live_evaluation

    task = feedback.task_of(config)
    db = feedback.connect(feedback.db_path(config))
    try:
        feedback.read_log(db, _log_dir(config), _key_feature(state))
        found = live_evaluation.evaluate(db, state, task)
    finally:
        db.close()
    decision = rollout_rule.decide(found["stable"], found["candidate"], config.rollout, task)
    return {"task": task, "since": datetime.datetime.fromtimestamp(found["since_ms"] / 1000, datetime.timezone.utc)
            .isoformat(timespec="seconds"), "stable": found["stable"].to_dict(),
            "candidate": found["candidate"].to_dict(), "js_distance": found["js_distance"],
            "decision": decision.to_dict()}


def _key_feature(state) -> Optional[str]:
    return state.key_feature if state is not None else None


def _log_dir(config):
    from kubetfx.pipelines.serving import inference_log

    return inference_log.log_dir(config)


def auto(config) -> tuple:
    """Applies the rule once: (decision, state after, evidence)."""
    state = _running(config)
    evidence = evaluate(config, state)
    action = evidence["decision"]["action"]
    if action == rollout_rule.ABORT:
        return "abort", abort(config, evidence), evidence
    if action == rollout_rule.ADVANCE:
        following = state.step + 1
        if following >= len(state.plan) or state.plan[following] >= 100:
            return "promote", promote(config, evidence), evidence
        return "advance", advance(config, evidence), evidence
    _record(config, state, "wait", evidence)
    return "wait", state, evidence


# ---- the run's hook (mode: staged) ------------------------------------------------
@dataclasses.dataclass
class Pin:
    """What pin_for_push found, so after_run can start a rollout or put it back."""
    stable: Optional[int]
    previous: Optional[rollout_state.RolloutState]
    wrote: bool


def pin_for_push(config) -> Optional[Pin]:
    """Before a staged run: keeps the version everybody is served served while the Pusher
    writes a higher one (a running state with no candidate). None in replace mode."""
    if config.rollout.mode != "staged":
        return None
    try:
        previous = rollout_state.load(config.serving_dir)
    except rollout_state.RolloutStateError:
        previous = None
    versions = _versions(config)
    if previous is not None and previous.running:
        return Pin(previous.stable, previous, False)  # the server already follows the state
    stable = previous.stable if previous is not None else (versions[-1] if versions else None)
    if stable is None or stable not in versions:
        return Pin(None, previous, False)  # nothing served yet: the first push serves everybody
    pin = rollout_state.RolloutState(stable, None, 0.0, 0, tuple(config.rollout.plan), rollout_state.now(),
                                     rollout_state.now(), "running", config.rollout.key,
                                     {"pinned_for_push": True}).validate()
    _write(config, pin)
    return Pin(stable, previous, True)


def after_run(config, pin: Optional[Pin], pushed_path: Optional[str], out=sys.stdout) -> None:
    """After a staged run: a new pushed version becomes the candidate; else the pin goes."""
    if pin is None:
        return
    pushed = int(os.path.basename(str(pushed_path).rstrip("/"))) if pushed_path else None
    if pushed is None or pin.stable is None or pushed == pin.stable:
        _unpin(config, pin)
        return
    superseded = pin.previous if pin.previous is not None and pin.previous.running and \
        pin.previous.candidate is not None else None
    if superseded is not None:
        abort(config, {"by": "a newer push", "superseded_by": pushed})
    state = start(config, pushed, pin.stable, evidence={"by": "push", "pushed": str(pushed_path)})
    print(f"kubetfx: version {pushed} is the candidate for {state.candidate_percent:g}% of callers beside "
          f"stable {state.stable} (`kubetfx rollout status`)", file=out, flush=True)


def _unpin(config, pin: Pin) -> None:
    if not pin.wrote:
        return
    if pin.previous is None:
        try:
            os.unlink(rollout_state.path(config.serving_dir))
        except FileNotFoundError:
            pass
    else:
        _write(config, pin.previous)


# ---- the command --------------------------------------------------------------------
def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollout", help="staged rollout of a candidate beside the stable version: start, status, advance, promote, abort",
        epilog="""examples:
  kubetfx rollout start                   # the highest version as candidate at the plan's first step
  kubetfx rollout status --json           # each track's live figures and what the rule says
  kubetfx rollout --auto                  # apply the rule once: advance, promote, abort or wait
  kubetfx rollout abort                   # all traffic back to stable at once
""")
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("action", nargs="?", choices=ACTIONS, help="default with --auto; else status")
    parser.add_argument("--auto", action="store_true", help="apply the rule once (for a CronJob or a loop)")
    parser.add_argument("--candidate", type=int, help="start: the candidate version (default: the highest)")
    parser.add_argument("--stable", type=int, help="start: the stable version (default: the one served to everybody)")
    parser.add_argument("--config", help="YAML file whose rollout: section sets plan, budgets and the rule")
    parser.add_argument("--name", help="pipeline name (default: kubetfx-penguin, or the config's)")
    parser.add_argument("--home", help="where runs write (default: the --config file's home:, "
                                       "else $KUBETFX_HOME or ./.kubetfx)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=main)


def config_of(args) -> PipelineConfig:
    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    return config.replace(home=home_for(args.home, args.config, config), name=args.name).validate()


def _state_dict(state) -> Optional[dict]:
    return state.to_dict() if state is not None else None


def _status(config) -> dict:
    from kubetfx.pipelines.record import rollout_history

    state = _load(config)
    doc = {"pipeline": config.name, "state": _state_dict(state), "rule": dataclasses.asdict(config.rollout)}
    if state is not None and state.running and state.candidate is not None:
        doc["evaluation"] = evaluate(config, state)
    doc["history"] = rollout_history.history(config.metadata_path, config.name, config.serving_dir)[-50:]
    return doc


def _track_line(t: dict, task: str) -> str:
    metric = "MAE" if task == "regression" else "accuracy"
    value = "-" if t["metric"] is None else f"{t['metric']:.4f}"
    errors = "not logged" if t["errors"] is None else str(t["errors"])
    p99 = "-" if t["latency_p99_ms"] is None else f"{t['latency_p99_ms']:.1f} ms"
    return (f"  {t['track']:<9} version {t['version']}: {t['requests']} requests, {t['labelled']} labelled, "
            f"{metric} {value}, errors {errors}, p99 {p99}")


def _print_status(doc: dict) -> None:
    state = doc["state"]
    if state is None:
        print(f"kubetfx: no rollout for {doc['pipeline']} (the highest version serves everybody)")
        return
    print(f"kubetfx: rollout of {doc['pipeline']}: {state['status']}, stable {state['stable']}, candidate "
          f"{state['candidate']} at {state['candidate_percent']:g}% (step {state['step'] + 1} of "
          f"{len(state['plan'])}: {', '.join(f'{p:g}' for p in state['plan'])}%)")
    found = doc.get("evaluation")
    if found:
        print(f"  since {found['since']}:")
        print(_track_line(found["stable"], found["task"]))
        print(_track_line(found["candidate"], found["task"]))
        js = found["js_distance"]
        print(f"  prediction distance between tracks (Jensen-Shannon): {'-' if js is None else f'{js:.3f}'}")
        decision = found["decision"]
        print(f"  rule: {decision['action']}: {'; '.join(decision['reasons'])}")


def main(args) -> int:
    from kubetfx.pipelines.record.home_lock import RunLockedError, exclusive_run

    config = config_of(args)
    if args.auto and args.action not in (None, "status"):
        raise ConfigError("--auto applies the rule itself: give no action (or status)")
    action = "auto" if args.auto else args.action or "status"
    if action == "status":
        doc = _status(config)
        print(json.dumps(doc, indent=2, default=str)) if args.json else _print_status(doc)
        return exit_codes.OK
    try:
        with exclusive_run(config):
            if action == "auto":
                decision, state, evidence = auto(config)
            elif action == "start":
                decision, state, evidence = "start", start(config, args.candidate, args.stable), {}
            else:
                decision, state = action, {"advance": advance, "promote": promote, "abort": abort}[action](config)
                evidence = {"by": "hand"}
    except RunLockedError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.BUSY
    except rollout_state.RolloutStateError as err:  # a state the file cannot hold: one line, exit 2
        raise ConfigError(str(err)) from None
    if args.json:
        print(json.dumps({"pipeline": config.name, "decision": decision, "state": _state_dict(state),
                          "evidence": evidence}, indent=2, default=str))
    else:
        reasons = evidence.get("decision", {}).get("reasons") if isinstance(evidence, dict) else None
        print(f"kubetfx: rollout {decision}: stable {state.stable}, candidate {state.candidate} at "
              f"{state.candidate_percent:g}% ({state.status})" + (f"; {'; '.join(reasons)}" if reasons else ""))
    return exit_codes.OK
