"""The flow engine: pure resume, pagination, validation of flow files, `paygo flows check`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from paygo.cli.flows import flows_group
from paygo.conversations.actions import ACTIONS
from paygo.conversations.commands import Keywords, check_keywords
from paygo.conversations.definitions import CHANNEL_LIMITS, InputRule, read_flow
from paygo.conversations.engine import (
    Actions,
    Effect,
    Engine,
    FlowRuntimeError,
    ListSpec,
    Outcome,
)
from paygo.conversations.service import SHIPPED_FLOWS, constants
from paygo.conversations.specs import CURRENT
from paygo.conversations.validation import check_directory, load_flows
from paygo.errors import FlowError
from paygo.settings import Settings

LANGS = ("en", "sw")
NAV = {
    "more": {"en": "More", "sw": "Zaidi"},
    "back": {"en": "Back", "sw": "Rudi"},
    "home": {"en": "Main menu", "sw": "Menyu kuu"},
    "invalid_choice": {"en": "Invalid choice.", "sw": "Chaguo si sahihi."},
    "invalid_digits": {"en": "Digits only.", "sw": "Tarakimu tu."},
    "sorry": {"en": "Sorry.", "sw": "Samahani."},
}


def both(en: str, sw: str | None = None) -> dict[str, str]:
    return {"en": en, "sw": sw if sw is not None else en.upper()}


def registry(**lists: list[dict[str, str]]) -> Actions:
    """Actions for test flows: `pick` lists things, `greet` branches on a name."""
    actions = Actions()

    @actions.register(
        "things",
        produces={"count": 3},
        lists={"things": ListSpec(label_width=40, value_width=5, max_items=97)},
    )
    def things(ctx: Any, data: Mapping[str, Any]) -> Outcome:
        items = lists.get("things", [])
        return Outcome(data={"things": items, "count": str(len(items))})

    @actions.register("greet", branches=("known", "stranger"), produces={"name": 12})
    def greet(ctx: Any, data: Mapping[str, Any]) -> Outcome:
        name = str(data.get("typed", ""))
        if name == "42":
            return Outcome(branch="known", data={"name": "Wanjiku"}, lang="sw")
        return Outcome(branch="stranger")

    @actions.register("rude", produces={"name": 12})
    def rude(ctx: Any, data: Mapping[str, Any]) -> Outcome:
        return Outcome(data={"name": "x" * 13})

    @actions.register("remember", produces={"name": 12, "receipt": 6})
    def remember(ctx: Any, data: Mapping[str, Any]) -> Outcome:
        typed = str(data.get("typed", ""))
        return Outcome(data={"name": typed}, effects=(Remember(typed), Stamp(typed)))

    return actions


@dataclass(frozen=True)
class Remember(Effect):
    """A change a test action asks for."""

    what: str


@dataclass(frozen=True)
class Stamp(Effect):
    """A change whose applying yields the value `receipt`."""

    provides: ClassVar[tuple[str, ...]] = ("receipt",)
    what: str


def base_flow(**states: Any) -> dict[str, Any]:
    flow: dict[str, Any] = {
        "flow": "test",
        "channel": "ussd",
        "languages": list(LANGS),
        "start": "main",
        "home": "main",
        "strings": copy.deepcopy(NAV),
        "states": {
            "main": {
                "kind": "menu",
                "text": both("Hello {distributor}"),
                "options": [
                    {"text": both("Things"), "next": "list_things"},
                    {"text": both("Greet"), "next": "ask"},
                ],
            },
            "list_things": {"kind": "action", "action": "things", "next": "pick"},
            "pick": {
                "kind": "menu",
                "text": both("Pick one of {count}:"),
                "items": "things",
                "store": "chosen",
                "next": "picked",
            },
            "picked": {"kind": "end", "text": both("You picked {chosen}.")},
            "ask": {
                "kind": "input",
                "text": both("Your number:"),
                "input": {"type": "digits", "max_length": 4},
                "store": "typed",
                "next": "greet",
            },
            "greet": {
                "kind": "action",
                "action": "greet",
                "branches": {"known": "hello", "stranger": "bye"},
            },
            "hello": {"kind": "end", "text": both("Hi {name}", "Habari {name}")},
            "bye": {"kind": "end", "text": both("Bye")},
        },
    }
    flow["states"].update(states)
    return {**flow, "states": {k: v for k, v in flow["states"].items() if v is not None}}


def write(tmp_path: Path, flow: Mapping[str, Any], name: str = "test.yaml") -> Path:
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(dict(flow), sort_keys=False))
    return folder


def engine_for(
    tmp_path: Path, flow: Mapping[str, Any] | None = None, actions: Actions | None = None
) -> Engine:
    actions = actions or registry()
    consts = {"distributor": "SunPower"}
    flows = load_flows(write(tmp_path, flow or base_flow()), actions, consts)
    return Engine(flows, actions, consts)


def problems_of(
    tmp_path: Path, flow: Mapping[str, Any], consts: Mapping[str, str] | None = None
) -> list[str]:
    _, problems = check_directory(
        write(tmp_path, flow), registry(), consts or {"distributor": "SunPower"}
    )
    return [str(p) for p in problems]


def run(engine: Engine, inputs: list[str], lang: str = "en") -> list[str]:
    reply, state, _ = engine.begin("test", lang=lang)
    screens = [reply.text]
    for text in inputs:
        reply, state, _ = engine.resume(state, text)
        screens.append(reply.text)
    return screens


# Running flows -----------------------------------------------------------------------------


def test_a_menu_choice_and_an_input_lead_through_an_action_to_the_end(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    reply, state, _ = engine.begin("test", lang="en")
    assert reply.text == "Hello SunPower\n1. Things\n2. Greet" and not reply.end
    reply, state, _ = engine.resume(state, "2")
    assert reply.text.startswith("Your number:")
    reply, state, _ = engine.resume(state, " 42 ")
    assert reply.text == "Habari Wanjiku" and reply.end  # the action switched to Swahili
    assert state["done"] and state["lang"] == "sw"


def test_state_is_plain_json_and_resume_leaves_the_given_state_untouched(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    _, state, _ = engine.begin("test", lang="en")
    frozen = json.dumps(state)
    reply, new, _ = engine.resume(json.loads(frozen), "2")
    assert json.dumps(state) == frozen and json.loads(json.dumps(new)) == new
    assert engine.resume(json.loads(frozen), "2")[0] == reply


def test_an_invalid_choice_repeats_the_screen_under_an_error_line(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    for wrong in ("7", "abc", "", "98", "0", "00"):
        screens = run(engine, [wrong], lang="sw")
        assert screens[1] == "Chaguo si sahihi.\n" + screens[0]


def test_an_input_is_checked_before_it_is_stored(tmp_path: Path) -> None:
    engine = engine_for(tmp_path)
    screens = run(engine, ["2", "12345", "4x"])
    assert screens[2] == screens[3] == "Digits only.\nYour number:\n0. Back\n00. Main menu"
    assert run(engine, ["2", "7"])[-1] == "Bye"


@pytest.mark.parametrize(
    ("rule", "raw", "stored"),
    [
        (InputRule("digits", max_length=4), "0123", "0123"),
        (InputRule("digits", max_length=4), "12345", None),
        (InputRule("digits", max_length=4), "١٢", None),  # Arabic-Indic digits are not ours
        (InputRule("account_number"), "1000 0004", "10000004"),
        (InputRule("account_number"), "10000005", None),  # wrong check digit
        (InputRule("amount", maximum=1000), "500", "500"),
        (InputRule("amount", maximum=1000), "12.50", "12.50"),
        (InputRule("amount", maximum=1000), "1001", None),
        (InputRule("amount", maximum=1000), "0", None),
        (InputRule("amount", maximum=1000), "1e3", None),
        (InputRule("text", min_length=3, max_length=10), "  no   light ", "no light"),
        (InputRule("text", min_length=3, max_length=10), "ab", None),
        (InputRule("text", min_length=3, max_length=10), "x" * 11, None),
    ],
)
def test_input_rules_accept_only_what_they_promise(
    rule: InputRule, raw: str, stored: str | None
) -> None:
    assert rule.clean(raw) == stored


def test_back_and_home_return_to_earlier_screens(tmp_path: Path) -> None:
    engine = engine_for(tmp_path, actions=registry(things=[{"label": "Lamp", "value": "L"}]))
    screens = run(engine, ["1", "0", "1", "00"])
    assert screens[1] == "Pick one of 1:\n1. Lamp\n0. Back\n00. Main menu"
    assert screens[2] == screens[0] and screens[4] == screens[0]
    assert run(engine, ["1", "1"])[-1] == "You picked L."


def test_a_long_list_is_paginated_with_98_for_more(tmp_path: Path) -> None:
    items = [{"label": f"Item number {n:02d} " + "x" * 20, "value": str(n)} for n in range(1, 13)]
    engine = engine_for(tmp_path, actions=registry(things=items))
    screens = run(engine, ["1", "98", "98", "0", "00"])
    first, second, third = screens[1:4]
    assert first.startswith("Pick one of 12:\n1. Item number 01")
    assert first.endswith("\n98. More\n0. Back\n00. Main menu")
    per_page = first.count("x" * 20)
    assert second.startswith(f"Pick one of 12:\n{per_page + 1}. Item number")
    assert third.startswith(f"Pick one of 12:\n{2 * per_page + 1}. Item number")
    assert screens[4] == second and screens[5] == screens[0]
    assert _pick(engine, ["1", "98"], str(per_page + 1))[0] == f"You picked {per_page + 1}."


def test_98_on_the_last_page_is_an_invalid_choice(tmp_path: Path) -> None:
    items = [{"label": "z" * 30, "value": str(n)} for n in range(1, 8)]
    engine = engine_for(tmp_path, actions=registry(things=items))
    reply, state, _ = engine.begin("test", lang="en")
    reply, state, _ = engine.resume(state, "1")
    while "98. More" in reply.text:
        reply, state, _ = engine.resume(state, "98")
    assert "7. " + "z" * 30 in reply.text
    assert engine.resume(state, "98")[0].text == "Invalid choice.\n" + reply.text


def _pick(engine: Engine, inputs: list[str], choice: str) -> tuple[str, dict[str, Any]]:
    _, state, _ = engine.begin("test", lang="en")
    for text in inputs:
        _, state, _ = engine.resume(state, text)
    reply, state, _ = engine.resume(state, choice)
    return reply.text, state


def test_an_option_from_another_page_is_not_accepted(tmp_path: Path) -> None:
    items = [{"label": "y" * 38, "value": str(n)} for n in range(1, 10)]
    engine = engine_for(tmp_path, actions=registry(things=items))
    screens = run(engine, ["1", "9"])
    assert screens[2].startswith("Invalid choice.\nPick one of 9:")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_pages_fit_the_screen_and_never_split_an_option(
    tmp_path_factory: pytest.TempPathFactory, widths: list[int]
) -> None:
    items = [{"label": "w" * width, "value": str(n)} for n, width in enumerate(widths, 1)]
    engine = engine_for(tmp_path_factory.mktemp("f"), actions=registry(things=items))
    reply, state, _ = engine.begin("test", lang="en")
    reply, state, _ = engine.resume(state, "1")
    seen: list[str] = []
    while True:
        assert len(reply.text) <= CHANNEL_LIMITS["ussd"]
        seen += [
            line
            for line in reply.text.splitlines()
            if line.split(". ")[0].isdigit() and line.split(". ")[0] not in ("98", "0", "00")
        ]
        if "\n98. More" not in reply.text:
            break
        reply, state, _ = engine.resume(state, "98")
    assert seen == [f"{n}. {item['label']}" for n, item in enumerate(items, 1)]


def test_an_action_breaking_its_declared_lengths_is_stopped(tmp_path: Path) -> None:
    flow = base_flow(greet={"kind": "action", "action": "rude", "next": "hello"}, bye=None)
    engine = engine_for(tmp_path, flow)
    _, state, _ = engine.begin("test", lang="en")
    _, state, _ = engine.resume(state, "2")
    with pytest.raises(FlowRuntimeError, match="at most 12"):
        engine.resume(state, "1")


# Effects: actions ask, the caller applies ----------------------------------------------------


def _remembering(tmp_path: Path) -> Engine:
    flow = base_flow(
        greet={"kind": "action", "action": "remember", "next": "hello"},
        hello={"kind": "end", "text": both("Kept {name}, receipt {receipt}.")},
        bye=None,
    )
    return engine_for(tmp_path, flow)


def test_what_an_action_changes_comes_back_as_effects_beside_the_screen(tmp_path: Path) -> None:
    engine = _remembering(tmp_path)
    _, state, effects = engine.begin("test", lang="en")
    assert effects == ()
    _, state, effects = engine.resume(state, "2")
    reply, state, effects = engine.resume(state, "42")
    assert effects == (Remember("42"), Stamp("42"))
    assert json.loads(json.dumps(state)) == state


def test_a_screen_that_shows_a_value_an_effect_provides_waits_for_settle(tmp_path: Path) -> None:
    engine = _remembering(tmp_path)
    _, state, _ = engine.begin("test", lang="en")
    _, state, _ = engine.resume(state, "2")
    reply, waiting, _ = engine.resume(state, "42")
    assert reply.awaiting == ("receipt",) and reply.end
    settled, state, effects = engine.settle(waiting, {"receipt": "R-17"})
    assert settled.text == "Kept 42, receipt R-17." and not settled.awaiting and effects == ()
    assert state["data"]["receipt"] == "R-17" and "awaiting" not in state
    with pytest.raises(FlowRuntimeError, match="at most 6"):
        engine.settle(waiting, {"receipt": "R-1234567"})
    with pytest.raises(FlowRuntimeError, match="receipt"):
        engine.settle(waiting, {})


def test_an_unsettled_conversation_goes_no_further(tmp_path: Path) -> None:
    flow = base_flow(
        greet={"kind": "action", "action": "remember", "next": "again"},
        again={
            "kind": "menu",
            "text": both("Receipt {receipt}."),
            "options": [
                {"text": both("Again"), "next": "greet"},
                {"text": both("Stop"), "next": "bye"},
            ],
        },
        hello=None,
    )
    engine = engine_for(tmp_path, flow)
    _, state, _ = engine.begin("test", lang="en")
    _, state, _ = engine.resume(state, "2")
    reply, waiting, _ = engine.resume(state, "7")
    assert reply.awaiting == ("receipt",)
    with pytest.raises(FlowRuntimeError, match="never settled"):
        engine.resume(waiting, "1")
    settled, state, _ = engine.settle(waiting, {"receipt": "R-1"})
    assert settled.text.startswith("Receipt R-1.\n1. Again")
    assert engine.resume(state, "1").effects == (Remember("7"), Stamp("7"))


# Validation --------------------------------------------------------------------------------


def test_the_shipped_flows_are_valid() -> None:
    _, problems = check_directory(SHIPPED_FLOWS, ACTIONS, constants(Settings()))
    assert problems == []


def test_the_shipped_sms_keywords_cover_every_command_in_every_language() -> None:
    flow, _ = read_flow(SHIPPED_FLOWS / "sms.yaml")
    assert flow is not None and check_keywords(flow) == []
    keywords = Keywords.from_flow(flow)
    assert keywords.parse(" bal  1000 0018 ").account_arg == "10000018"
    assert (keywords.parse("salio").name, keywords.parse("salio").keyword_lang) == ("balance", "sw")
    assert keywords.parse("Solde10000018").account_arg == "10000018"
    assert keywords.parse("lugha kiswahili").language_arg == "sw"
    assert keywords.parse("what is this").name == "help"


def test_a_long_distributor_name_makes_the_shipped_flows_too_long() -> None:
    long_name = {"distributor": "D" * 120, "paybill": "600638"}
    _, problems = check_directory(SHIPPED_FLOWS, ACTIONS, long_name)
    assert any("characters with the longest values" in str(p) for p in problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bye": {"kind": "end", "text": both("Bye"), "next": "main"}}, "state bye: an end state"),
        (
            {
                "ask": {
                    "kind": "input",
                    "text": both("Number:"),
                    "input": "digits",
                    "store": "typed",
                    "next": "nowhere",
                }
            },
            "state ask: goes to unknown state 'nowhere'",
        ),
        (
            {"orphan": {"kind": "end", "text": both("Alone")}},
            "state orphan: is unreachable from the start",
        ),
        (
            {
                "bye": {
                    "kind": "menu",
                    "text": both("Loop"),
                    "options": [{"text": both("Again"), "next": "bye"}],
                }
            },
            "state bye: is a dead end: no end state can be reached from it",
        ),
        ({"pick": {"kind": "menu", "text": both("Pick")}}, "state pick: is a dead end"),
        (
            {"list_things": {"kind": "action", "action": "teleport", "next": "pick"}},
            "state list_things: unknown action 'teleport'",
        ),
        (
            {"greet": {"kind": "action", "action": "greet", "branches": {"known": "hello"}}},
            "state greet: branch 'stranger' of action greet goes nowhere",
        ),
        (
            {
                "greet": {
                    "kind": "action",
                    "action": "greet",
                    "branches": {"known": "hello", "stranger": "bye", "alien": "bye"},
                }
            },
            "state greet: action greet has no branch 'alien'",
        ),
        (
            {"hello": {"kind": "end", "text": {"en": "Hi {name}"}}},
            "state hello, language sw: missing text",
        ),
        (
            {"hello": {"kind": "end", "text": both("Hi {nickname}")}},
            "state hello, language en: text uses unknown placeholder {nickname}",
        ),
        (
            {"hello": {"kind": "end", "text": both("Caf\u00e9 {name}")}},
            "state hello, language en: text has characters beyond plain ASCII",
        ),
        (
            {"hello": {"kind": "end", "text": both("x" * 160 + " {name}")}},
            "state hello, language en: a screen can be 173 characters with the longest values "
            "(limit 178 on ussd)",
        ),
        (
            {"hello": {"kind": "end", "text": both("x" * 170 + " {name}")}},
            "state hello, language en: a screen can be 183 characters",
        ),
    ],
)
def test_validation_names_file_state_and_language_of_each_problem(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    problems = problems_of(tmp_path, base_flow(**change))
    if "173 characters" in expected:  # within the limit: no problem at all
        assert problems == []
        return
    assert any(p.startswith("test.yaml, " + expected) for p in problems), problems


def _flow_with(**changes: Any) -> dict[str, Any]:
    """The base flow with keys added at dotted paths ("states.ask.eror")."""
    flow = base_flow()
    for path, value in changes.items():
        *parents, key = path.split(".")
        target: Any = flow
        for name in parents:
            target = target[int(name)] if isinstance(target, list) else target[name]
        target[key] = value
    return flow


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("colour", "unknown top-level key 'colour'"),
        ("states.ask.eror", "state ask: unknown key 'eror' (known: kind, text, options"),
        ("states.main.options.1.nxt", "state main: unknown option 2 key 'nxt'"),
        ("states.ask.input.maxlength", "state ask: unknown input key 'maxlength'"),
        ("states.bye.store", "state bye: end states take no 'store' (they take kind, text)"),
        ("states.greet.error", "state greet: action states take no 'error'"),
        ("commands", "unknown top-level key 'commands'"),  # only SMS flows have commands
    ],
)
def test_a_key_the_spec_does_not_know_is_named_with_its_line(
    tmp_path: Path, path: str, expected: str
) -> None:
    value: Any = {"en": "x"} if path.endswith("error") else 987654
    folder = write(tmp_path, _flow_with(**{path: value}))
    wanted = path.rsplit(".", 1)[-1] + ":" + ("" if isinstance(value, dict) else f" {value}")
    lines = (folder / "test.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip().startswith(wanted))
    problems = [str(p) for p in check_directory(folder, registry(), {"distributor": "x"})[1]]
    where = f"test.yaml:{line}" + (", " if expected.startswith("state") else ": ")
    assert any(p.startswith(where + expected) for p in problems), problems


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (CURRENT + 1, f"spec {CURRENT + 1} is newer than this gateway reads (up to {CURRENT})"),
        ("one", "spec must be a whole number"),
        (-1, "spec must be a whole number"),
    ],
)
def test_a_spec_this_gateway_cannot_read_is_refused(
    tmp_path: Path, spec: object, expected: str
) -> None:
    flow = {"spec": spec, **base_flow()}
    assert problems_of(tmp_path, flow) == [f"test.yaml:1: {expected}"]


def _spec_0_sms() -> dict[str, Any]:
    """The shipped SMS flow as it was written before spec versions."""
    flow = yaml.safe_load((SHIPPED_FLOWS / "sms.yaml").read_text())
    del flow["spec"]
    return {**flow.pop("commands"), **flow}


def test_a_spec_0_flow_is_migrated_and_reads_like_the_current_one(tmp_path: Path) -> None:
    folder = write(tmp_path, _spec_0_sms(), name="sms.yaml")
    (folder / "ussd.yaml").write_text((SHIPPED_FLOWS / "ussd.yaml").read_text())
    flows, problems = check_directory(folder, ACTIONS, constants(Settings()))
    old, current = flows["sms"], read_flow(SHIPPED_FLOWS / "sms.yaml")[0]
    assert problems == [] and current is not None
    assert (old.spec, old.migrated) == (0, ("moved keywords and language_names under commands",))
    assert old.commands == current.commands and old.states == current.states
    assert Keywords.from_flow(old) == Keywords.from_flow(current) and check_keywords(old) == []
    result = CliRunner().invoke(flows_group, ["check", "--dir", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["migrated"] == {"sms.yaml": list(old.migrated)}


def test_spec_0_keys_in_a_spec_1_file_are_unknown(tmp_path: Path) -> None:
    flow = {"spec": 1, **_spec_0_sms()}
    problems = problems_of(tmp_path, flow)
    assert any(": unknown top-level key 'keywords'" in p for p in problems), problems
    assert any(": unknown top-level key 'language_names'" in p for p in problems), problems


def test_a_missing_engine_string_is_reported(tmp_path: Path) -> None:
    flow = base_flow()
    del flow["strings"]["more"]
    flow["strings"]["back"] = {"en": "Back"}
    problems = problems_of(tmp_path, flow)
    assert "test.yaml: missing string 'more'" in problems
    assert "test.yaml, language sw: missing string back" in problems


def test_actions_that_loop_without_a_screen_are_refused(tmp_path: Path) -> None:
    flow = base_flow(
        greet={
            "kind": "action",
            "action": "greet",
            "branches": {"known": "hello", "stranger": "again"},
        },
        again={
            "kind": "action",
            "action": "greet",
            "branches": {"known": "hello", "stranger": "greet"},
        },
    )
    assert any("actions loop without showing a screen" in p for p in problems_of(tmp_path, flow))


def test_a_list_whose_widest_item_cannot_fit_a_page_is_refused(tmp_path: Path) -> None:
    flow = base_flow(
        pick={
            "kind": "menu",
            "text": both("P" * 120),
            "items": "things",
            "store": "chosen",
            "next": "picked",
        }
    )
    assert any(
        p.startswith("test.yaml, state pick, language en: a screen can be")
        for p in problems_of(tmp_path, flow)
    )


def test_a_file_that_is_not_a_flow_is_reported_not_raised(tmp_path: Path) -> None:
    folder = write(tmp_path, base_flow())
    (folder / "broken.yaml").write_text("states: [unclosed")
    (folder / "list.yaml").write_text("- a\n- b\n")
    _, problems = check_directory(folder, registry(), {"distributor": "x"})
    messages = [str(p) for p in problems]
    assert any(m.startswith("broken.yaml: cannot be read") for m in messages)
    assert any(m.startswith("list.yaml: is not a mapping") for m in messages)


def test_load_flows_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    flow = base_flow(orphan={"kind": "end", "text": both("Alone")})
    with pytest.raises(FlowError) as caught:
        load_flows(write(tmp_path, flow), registry(), {"distributor": "x"})
    assert "test.yaml, state orphan: is unreachable from the start" in caught.value.message


# paygo flows check -------------------------------------------------------------------------


def test_flows_check_passes_on_the_shipped_flows() -> None:
    result = CliRunner().invoke(flows_group, ["check", "--dir", str(SHIPPED_FLOWS)])
    assert result.exit_code == 0, result.output
    assert "ussd.yaml: ok" in result.output and "sms.yaml: ok" in result.output


def test_flows_check_lists_problems_and_exits_non_zero(tmp_path: Path) -> None:
    for name in ("ussd.yaml", "sms.yaml"):
        text = (SHIPPED_FLOWS / name).read_text()
        (tmp_path / name).write_text(text.replace('sw: "Lugha"', 'sw: ""'))
    result = CliRunner().invoke(flows_group, ["check", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["problems"] == ["ussd.yaml, state main, language sw: missing option 4"]


def test_the_app_refuses_to_start_with_an_invalid_flow(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    for name in ("ussd.yaml", "sms.yaml"):
        text = (SHIPPED_FLOWS / name).read_text()
        (tmp_path / name).write_text(text.replace("next: balance}", "next: balanse}"))
    with pytest.raises(FlowError, match="ussd.yaml, state main: goes to unknown state 'balanse'"):
        make_app(flows_dir=str(tmp_path))
