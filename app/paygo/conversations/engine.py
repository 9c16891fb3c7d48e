"""The flow engine: `resume(state, input) -> (reply, new_state, effects)`, state plain JSON.

The engine writes nothing. Actions are functions the app registers by name; the engine hands
them an opaque context (for reading) and checks what they return against what they
declared, so a screen never grows past what validation measured. What an action decides
to change (a language to remember, a ticket to open) comes back as effects: data the
caller applies in its own transaction, as goflow's events are applied by its host. A value
only the host can know (the number of the ticket it inserts) is awaited: the screen is
finished by `settle` once the effects are applied. Long lists are paginated: `98` more,
`0` back, `00` main menu.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

from paygo.conversations.definitions import Flow, State
from paygo.errors import GatewayError
from paygo.texts.placeholders import fill

MORE, BACK, HOME = "98", "0", "00"
#: Options are numbered 1..97 so they never collide with the navigation keys.
MAX_OPTIONS = 97
#: Actions may chain; a longer chain is a loop that validation should have refused.
MAX_STEPS = 25

F = TypeVar("F", bound=Callable[..., Any])


class FlowRuntimeError(GatewayError):
    """A flow could not go on (an action broke its contract, a screen grew too long)."""

    code = "flow_runtime"


@dataclass(frozen=True)
class Effect:
    """A change an action asks for; the caller applies it after the engine returns.

    `provides` names the values applying it yields (each a placeholder the action declared),
    which the engine awaits before a screen that shows them is finished.
    """

    provides: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class Outcome:
    """What an action returns: the branch to follow, data for the next screens, a language,
    and the effects to apply."""

    branch: str = "ok"
    data: Mapping[str, Any] = field(default_factory=dict)
    lang: str | None = None
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class ListSpec:
    """A list an action produces for a menu: its longest label and value, its length."""

    label_width: int
    value_width: int
    max_items: int


@dataclass(frozen=True)
class ActionSpec:
    """A registered action: its function and the contract validation checks flows against."""

    name: str
    func: Callable[[Any, Mapping[str, Any]], Outcome]
    branches: tuple[str, ...] = ("ok",)
    produces: Mapping[str, int] = field(default_factory=dict)  # placeholder -> max length
    lists: Mapping[str, ListSpec] = field(default_factory=dict)


class Actions:
    """The named actions flows may call."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def register(
        self,
        name: str,
        *,
        branches: tuple[str, ...] = ("ok",),
        produces: Mapping[str, int] | None = None,
        lists: Mapping[str, ListSpec] | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function as action `name`."""

        def decorate(func: F) -> F:
            self._specs[name] = ActionSpec(
                name=name,
                func=func,
                branches=branches,
                produces=dict(produces or {}),
                lists=dict(lists or {}),
            )
            return func

        return decorate

    def get(self, name: str) -> ActionSpec | None:
        """The action called `name`, if registered."""
        return self._specs.get(name)

    def all(self) -> list[ActionSpec]:
        """Every registered action."""
        return list(self._specs.values())


@dataclass(frozen=True)
class Reply:
    """A screen: its text, and whether the conversation ends with it.

    `awaiting` names values the effects will provide: until `Engine.settle` has them, the
    text shows them empty and must not be sent.
    """

    text: str
    end: bool
    awaiting: tuple[str, ...] = ()


class Turn(NamedTuple):
    """What one call of the engine gives back: the screen, the new state, the effects."""

    reply: Reply
    state: dict[str, Any]
    effects: tuple[Effect, ...] = ()


class Engine:
    """Runs validated flows one input at a time."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
        actions: Actions,
        constants: Mapping[str, str] | None = None,
    ) -> None:
        self.flows = dict(flows)
        self.actions = actions
        self.constants = dict(constants or {})

    def begin(
        self,
        flow_name: str,
        *,
        lang: str,
        data: Mapping[str, Any] | None = None,
        context: Any = None,
    ) -> Turn:
        """Start `flow_name` and return its first screen, state and effects."""
        flow = self.flows[flow_name]
        state: dict[str, Any] = {
            "flow": flow_name,
            "lang": lang,
            "at": flow.start,
            "page": 0,
            "history": [],
            "data": dict(data or {}),
            "done": False,
        }
        effects: list[Effect] = []
        return self._turn(self._advance(flow, state, flow.start, context, effects), effects)

    def resume(self, state: Mapping[str, Any], user_input: str, *, context: Any = None) -> Turn:
        """Apply one input to a conversation; the given state is left untouched."""
        # The engine only replaces top-level data values and appends to the history, so
        # copying those two leaves the caller's state untouched.
        new: dict[str, Any] = {
            **state,
            "data": dict(state["data"]),
            "history": [list(h) for h in state["history"]],
        }
        flow = self.flows[new["flow"]]
        if new.get("done"):
            raise FlowRuntimeError("the conversation has ended")
        if new.get("awaiting"):
            raise FlowRuntimeError("the last screen was never settled")
        current = flow.states[new["at"]]
        text = user_input.strip()
        navigated = self._navigate(flow, current, new, text)
        if navigated is not None:
            return Turn(navigated, new)
        effects: list[Effect] = []
        if current.kind == "menu":
            reply = self._choose(flow, current, new, text, context, effects)
        else:
            reply = self._answer(flow, current, new, text, context, effects)
        return self._turn(reply, effects)

    def settle(self, state: Mapping[str, Any], values: Mapping[str, str]) -> Turn:
        """Finish a screen that awaited values the applied effects provided."""
        new: dict[str, Any] = {**state, "data": dict(state["data"])}
        widths: dict[str, int] = new.pop("awaiting", None) or {}
        for name, width in widths.items():
            value = values.get(name)
            if not isinstance(value, str) or len(value) > width:
                raise FlowRuntimeError(f"{name} must be a string of at most {width} characters")
            new["data"][name] = value
        return Turn(self._render(self.flows[new["flow"]], new, error=False), new)

    def _turn(self, rendered: tuple[Reply, dict[str, Any]], effects: list[Effect]) -> Turn:
        return Turn(rendered[0], rendered[1], tuple(effects))

    def wants_text(self, state: Mapping[str, Any]) -> bool:
        """True when the conversation waits for free text (which may itself hold `*`)."""
        current = self.flows[state["flow"]].states[state["at"]]
        return current.input is not None and current.input.type == "text"

    # Navigation -----------------------------------------------------------------------

    def _navigate(
        self, flow: Flow, current: State, state: dict[str, Any], text: str
    ) -> Reply | None:
        if (
            text == MORE
            and current.kind == "menu"
            and state["page"] + 1 < len(self._pages(flow, current, state))
        ):
            state["page"] += 1
        elif text == BACK and (state["page"] > 0 or state["history"]):
            if state["page"] > 0:
                state["page"] -= 1
            else:
                state["at"], state["page"] = state["history"].pop()
        elif text == HOME and _can_go_home(flow, state):
            while state["history"] and state["at"] != flow.home:
                state["at"], state["page"] = state["history"].pop()
            state["page"] = 0
        else:
            return None
        return self._render(flow, state, error=False)

    def _choose(
        self,
        flow: Flow,
        current: State,
        state: dict[str, Any],
        text: str,
        context: Any,
        effects: list[Effect],
    ) -> tuple[Reply, dict[str, Any]]:
        pages = self._pages(flow, current, state)
        shown = dict(pages[min(state["page"], len(pages) - 1)])
        if not text.isdigit() or int(text) not in shown:
            return self._render(flow, state, error=True), state
        number = int(text)
        target, value = self._option_target(current, state, number)
        if current.store and value is not None:
            state["data"][current.store] = value
        state["history"].append([current.name, state["page"]])
        return self._advance(flow, state, target, context, effects)

    def _option_target(
        self, current: State, state: dict[str, Any], number: int
    ) -> tuple[str, str | None]:
        items = _items(current, state)
        if number <= len(items):
            assert current.next is not None
            return current.next, str(items[number - 1]["value"])
        option = current.options[number - len(items) - 1]
        return option.next, option.value

    def _answer(
        self,
        flow: Flow,
        current: State,
        state: dict[str, Any],
        text: str,
        context: Any,
        effects: list[Effect],
    ) -> tuple[Reply, dict[str, Any]]:
        assert current.input is not None and current.next is not None
        value = current.input.clean(text)
        if value is None:
            return self._render(flow, state, error=True), state
        if current.store:
            state["data"][current.store] = value
        state["history"].append([current.name, state["page"]])
        return self._advance(flow, state, current.next, context, effects)

    # Running actions ------------------------------------------------------------------

    def _advance(
        self, flow: Flow, state: dict[str, Any], target: str, context: Any, effects: list[Effect]
    ) -> tuple[Reply, dict[str, Any]]:
        for _ in range(MAX_STEPS):
            current = flow.states[target]
            state["at"], state["page"] = target, 0
            if current.kind != "action":
                state["done"] = current.kind == "end"
                return self._render(flow, state, error=False), state
            target = self._run_action(current, state, context, effects)
        raise FlowRuntimeError(f"{flow.path}: more than {MAX_STEPS} actions in a row", state=target)

    def _run_action(
        self, current: State, state: dict[str, Any], context: Any, effects: list[Effect]
    ) -> str:
        assert current.action is not None
        spec = self.actions.get(current.action)
        if spec is None:
            raise FlowRuntimeError(f"unknown action {current.action}", state=current.name)
        outcome = spec.func(context, dict(state["data"]))
        _check_outcome(spec, outcome)
        state["data"].update(outcome.data)
        if outcome.lang:
            state["lang"] = outcome.lang
        effects += outcome.effects
        for effect in outcome.effects:
            for name in effect.provides:
                # Shown empty until settled; `awaiting` keeps the width to check it against.
                state["data"][name] = ""
                state.setdefault("awaiting", {})[name] = spec.produces[name]
        target = current.on.get(outcome.branch) or current.next
        if target is None:
            raise FlowRuntimeError(
                f"action {spec.name} took branch {outcome.branch!r} which the flow does not follow",
                state=current.name,
            )
        return target

    # Rendering ------------------------------------------------------------------------

    def _render(self, flow: Flow, state: Mapping[str, Any], *, error: bool) -> Reply:
        current = flow.states[state["at"]]
        lang = state["lang"]
        lines = [self._error_line(flow, current, lang)] if error else []
        assert current.text is not None
        lines.append(self._fill(flow.text(current.text, lang), state["data"]))
        if current.kind == "menu":
            pages = self._pages(flow, current, state)
            page = min(state["page"], len(pages) - 1)
            lines += [label for _, label in pages[page]]
            lines += self._footer(
                flow,
                state,
                more=page + 1 < len(pages),
                lang=lang,
                back=page > 0 or bool(state["history"]),
            )
        elif current.kind == "input":
            lines += self._footer(flow, state, more=False, lang=lang, back=bool(state["history"]))
        text = "\n".join(lines)
        awaiting: Mapping[str, int] = state.get("awaiting") or {}
        longest = len(text) + sum(awaiting.values())
        if longest > flow.limit:
            raise FlowRuntimeError(
                f"{flow.path}: screen of {longest} characters", state=current.name
            )
        return Reply(text=text, end=current.kind == "end", awaiting=tuple(awaiting))

    def _pages(
        self, flow: Flow, current: State, state: Mapping[str, Any]
    ) -> list[list[tuple[int, str]]]:
        """Split a menu's options into pages that fit; an option is never split."""
        lang = state["lang"]
        labels = [str(item["label"]) for item in _items(current, state)]
        labels += [self._fill(flow.text(o.text, lang), state["data"]) for o in current.options]
        numbered = [(n, f"{n}. {label}") for n, label in enumerate(labels, start=1)]
        assert current.text is not None
        head = [
            self._error_line(flow, current, lang),
            self._fill(flow.text(current.text, lang), state["data"]),
        ]
        single = self._footer(flow, state, more=False, lang=lang, back=bool(state["history"]))
        if _fits(flow, head + [line for _, line in numbered] + single):
            return [numbered]
        full = self._footer(flow, state, more=True, lang=lang, back=True)
        pages: list[list[tuple[int, str]]] = [[]]
        for entry in numbered:
            if pages[-1] and not _fits(flow, head + [x for _, x in pages[-1]] + [entry[1]] + full):
                pages.append([])
            pages[-1].append(entry)
        return pages

    def _footer(
        self, flow: Flow, state: Mapping[str, Any], *, more: bool, back: bool, lang: str
    ) -> list[str]:
        lines = [f"{MORE}. {flow.string('more', lang)}"] if more else []
        if back:
            lines.append(f"{BACK}. {flow.string('back', lang)}")
        if _can_go_home(flow, state):
            lines.append(f"{HOME}. {flow.string('home', lang)}")
        return lines

    def _error_line(self, flow: Flow, current: State, lang: str) -> str:
        if current.error is not None:
            return flow.text(current.error, lang)
        if current.kind == "menu":
            return flow.string("invalid_choice", lang)
        assert current.input is not None
        return flow.string(f"invalid_{current.input.type}", lang)

    def _fill(self, text: str, data: Mapping[str, Any]) -> str:
        if "{" not in text:
            return text
        try:
            return fill(text, ChainMap(dict(data), self.constants))
        except KeyError as exc:
            raise FlowRuntimeError(f"no value for placeholder {exc.args[0]}") from None


def _fits(flow: Flow, lines: list[str]) -> bool:
    return len("\n".join(lines)) <= flow.limit


def _can_go_home(flow: Flow, state: Mapping[str, Any]) -> bool:
    return (
        flow.home is not None
        and state["at"] != flow.home
        and any(name == flow.home for name, _ in state["history"])
    )


def _items(current: State, state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if current.items is None:
        return []
    items: list[Mapping[str, Any]] = state["data"].get(current.items) or []
    return items


def _check_outcome(spec: ActionSpec, outcome: Outcome) -> None:
    """Refuse what an action returns beyond its declaration: screens were measured on it."""
    if outcome.branch not in spec.branches:
        raise FlowRuntimeError(f"action {spec.name} returned undeclared branch {outcome.branch!r}")
    for effect in outcome.effects:
        missing = [name for name in effect.provides if name not in spec.produces]
        if missing:
            raise FlowRuntimeError(f"action {spec.name} did not declare {', '.join(missing)}")
    for key, value in outcome.data.items():
        if key in spec.lists:
            _check_list(spec, key, value)
        elif key in spec.produces:
            if not isinstance(value, str) or len(value) > spec.produces[key]:
                raise FlowRuntimeError(
                    f"action {spec.name}: {key} must be a string of at "
                    f"most {spec.produces[key]} characters, got {value!r}"
                )
        elif not key.startswith("_"):  # private data, never shown: no length to keep
            raise FlowRuntimeError(f"action {spec.name} returned undeclared value {key!r}")


def _check_list(spec: ActionSpec, key: str, value: Any) -> None:
    limits = spec.lists[key]
    ok = (
        isinstance(value, list)
        and len(value) <= min(limits.max_items, MAX_OPTIONS)
        and all(
            isinstance(i, dict)
            and isinstance(i.get("label"), str)
            and len(i["label"]) <= limits.label_width
            and isinstance(i.get("value"), str)
            and len(i["value"]) <= limits.value_width
            for i in value
        )
    )
    if not ok:
        raise FlowRuntimeError(f"action {spec.name}: list {key} breaks its declared limits")
