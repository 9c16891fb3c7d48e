"""Flow validation when flows load: targets, reachability, dead ends, actions, languages,
and the length of every screen rendered with the longest values its placeholders allow.

Modelled on python-statemachine's factory (a machine is checked when it is defined): a
flow that passes here cannot send a screen past the channel's limit, because actions are
held at run time to the lengths they declared (`engine._check_outcome`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from paygo.conversations.definitions import Flow, State, Texts, is_plain, read_flow
from paygo.conversations.engine import BACK, HOME, MAX_OPTIONS, MORE, Actions, ListSpec
from paygo.errors import FlowError
from paygo.texts.catalogue import TEXTS_FILE
from paygo.texts.placeholders import fill, placeholders
from paygo.yamldoc import Problem

#: Strings every flow needs: the engine's navigation and errors, the channel's apology.
BASE_STRINGS = ("sorry",)
MENU_STRINGS = ("more", "back", "home", "invalid_choice")


def load_flows(directory: Path, actions: Actions, constants: Mapping[str, str]) -> dict[str, Flow]:
    """Read and validate every `*.yaml` flow in `directory`; raise FlowError on any problem."""
    flows, problems = check_directory(directory, actions, constants)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise FlowError(
            f"invalid flow definitions in {directory}:\n{lines}", problems=len(problems)
        )
    return flows


def check_directory(
    directory: Path, actions: Actions, constants: Mapping[str, str]
) -> tuple[dict[str, Flow], list[Problem]]:
    """Read and validate every flow in `directory`, returning all the problems found."""
    yamls = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    paths = [path for path in yamls if path.name != TEXTS_FILE]  # the texts catalogue
    if not paths:
        return {}, [Problem(str(directory), "no flow files (*.yaml) found")]
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in paths:
        flow, read = read_flow(path)
        problems += read
        if flow is None:
            continue
        if flow.name in flows:
            problems.append(Problem(path.name, f"flow name {flow.name!r} is used twice"))
        problems += validate_flow(flow, actions, constants)
        flows[flow.name] = flow
    return flows, problems


def validate_flow(flow: Flow, actions: Actions, constants: Mapping[str, str]) -> list[Problem]:
    """Every problem in one flow that was read."""
    problems = _check_graph(flow) + _check_actions(flow, actions)
    problems += _check_languages(flow)
    if not problems:
        problems += _check_lengths(flow, actions, constants)
    return problems


def _check_graph(flow: Flow) -> list[Problem]:
    file, problems = flow.path, []
    for name in [flow.start] + ([flow.home] if flow.home else []):
        if name not in flow.states:
            problems.append(Problem(file, f"start or home state {name!r} does not exist"))
    if flow.home and flow.states.get(flow.home) and flow.states[flow.home].kind != "menu":
        problems.append(Problem(file, "the home state must be a menu", state=flow.home))
    for state in flow.states.values():
        problems += _check_shape(flow, state)
        for target in state.targets():
            if target not in flow.states:
                problems.append(
                    Problem(file, f"goes to unknown state {target!r}", state=state.name)
                )
    if problems:
        return problems
    reached = _reachable(flow, [flow.start])
    problems += [
        Problem(file, "is unreachable from the start", state=name)
        for name in flow.states
        if name not in reached
    ]
    problems += [
        Problem(file, "is a dead end: no end state can be reached from it", state=name)
        for name in flow.states
        if not _ends(flow, name)
    ]
    problems += _action_loops(flow)
    return problems


def _check_shape(flow: Flow, state: State) -> list[Problem]:
    """What each kind needs: a dead end is a state with nowhere to go."""
    needs: list[str] = []
    if state.kind in ("menu", "input", "end") and state.text is None:
        needs.append("needs text")
    if state.kind == "menu" and not (state.options or state.items):
        needs.append("is a dead end: a menu needs options or items")
    if state.kind == "menu" and state.items and not (state.next and state.store):
        needs.append("a menu with items needs next and store")
    if state.kind == "menu" and len(state.options) > MAX_OPTIONS:
        needs.append(f"has more than {MAX_OPTIONS} options")
    if state.kind == "input" and (state.input is None or state.next is None):
        needs.append("is a dead end: an input needs input and next")
    if state.kind == "action" and (state.action is None or (state.next is None and not state.on)):
        needs.append("is a dead end: an action needs action and next or branches")
    if state.kind == "end" and state.targets():
        needs.append("an end state goes nowhere: remove its next, branches or options")
    if state.kind != "menu" and (state.options or state.items):
        needs.append("only menus have options or items")
    return [Problem(flow.path, n, state=state.name) for n in needs]


def _reachable(flow: Flow, starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += flow.states[name].targets()
    return seen


def _ends(flow: Flow, name: str) -> bool:
    return any(flow.states[n].kind == "end" for n in _reachable(flow, [name]))


def _action_loops(flow: Flow) -> list[Problem]:
    """A cycle made only of actions would spin without ever showing a screen."""
    problems = []
    for name, state in flow.states.items():
        if state.kind != "action":
            continue
        todo, seen = list(state.targets()), set()
        while todo:
            nxt = todo.pop()
            if nxt == name:
                problems.append(
                    Problem(flow.path, "actions loop without showing a screen", state=name)
                )
                break
            if nxt not in seen and flow.states[nxt].kind == "action":
                seen.add(nxt)
                todo += flow.states[nxt].targets()
    return problems


def _check_actions(flow: Flow, actions: Actions) -> list[Problem]:
    problems = []
    for state in flow.states.values():
        if state.kind != "action" or state.action is None:
            continue
        spec = actions.get(state.action)
        if spec is None:
            problems.append(
                Problem(flow.path, f"unknown action {state.action!r}", state=state.name)
            )
            continue
        for branch in state.on:
            if branch not in spec.branches:
                problems.append(
                    Problem(
                        flow.path,
                        f"action {spec.name} has no branch "
                        f"{branch!r} (it has {', '.join(spec.branches)})",
                        state=state.name,
                    )
                )
        if state.next is None:
            problems += [
                Problem(
                    flow.path, f"branch {b!r} of action {spec.name} goes nowhere", state=state.name
                )
                for b in spec.branches
                if b not in state.on
            ]
    problems += _check_lists(flow, actions)
    return problems


def _check_lists(flow: Flow, actions: Actions) -> list[Problem]:
    lists = {name for spec in actions.all() for name in spec.lists}
    return [
        Problem(flow.path, f"no action produces the list {s.items!r}", state=s.name)
        for s in flow.states.values()
        if s.items and s.items not in lists
    ]


def _check_languages(flow: Flow) -> list[Problem]:
    problems = []
    needed = BASE_STRINGS + (
        MENU_STRINGS if any(s.kind in ("menu", "input") for s in flow.states.values()) else ()
    )
    needed += tuple(
        f"invalid_{s.input.type}"
        for s in flow.states.values()
        if s.input is not None and s.error is None
    )
    for key in dict.fromkeys(needed):
        if key not in flow.strings:
            problems.append(Problem(flow.path, f"missing string {key!r}"))
    for key, texts in flow.strings.items():
        problems += _check_texts(flow, None, texts, f"string {key}")
    for state in flow.states.values():
        for what, texts in _state_texts(state):
            problems += _check_texts(flow, state.name, texts, what)
    return problems


def _state_texts(state: State) -> list[tuple[str, Texts]]:
    found = [("text", state.text)] if state.text is not None else []
    found += [("error", state.error)] if state.error is not None else []
    return found + [(f"option {i}", o.text) for i, o in enumerate(state.options, start=1)]


def _check_texts(flow: Flow, state: str | None, texts: Texts, what: str) -> list[Problem]:
    problems = []
    for lang in flow.languages:
        if not texts.get(lang, "").strip():
            problems.append(Problem(flow.path, f"missing {what}", state=state, language=lang))
        elif not is_plain(texts[lang]):
            problems.append(
                Problem(
                    flow.path,
                    f"{what} has characters beyond plain ASCII (networks mangle them)",
                    state=state,
                    language=lang,
                )
            )
    for lang in texts:
        if lang not in flow.languages:
            problems.append(
                Problem(
                    flow.path,
                    f"{what} is in a language the flow does not declare",
                    state=state,
                    language=lang,
                )
            )
    return problems


def placeholder_widths(
    flow: Flow, actions: Actions, constants: Mapping[str, str]
) -> dict[str, int]:
    """The longest value each placeholder can take in this flow."""
    widths = {name: len(value) for name, value in constants.items()}

    def widen(name: str, width: int) -> None:
        widths[name] = max(widths.get(name, 0), width)

    for spec in actions.all():
        for name, width in spec.produces.items():
            widen(name, width)
    for state in flow.states.values():
        if state.input is not None and state.store:
            widen(state.store, state.input.width())
        if state.kind == "menu" and state.store:
            for option in state.options:
                widen(state.store, len(option.value or ""))
            listed = _list_spec(actions, state.items)
            if listed is not None:
                widen(state.store, listed.value_width)
    return widths


def _list_spec(actions: Actions, name: str | None) -> ListSpec | None:
    for spec in actions.all():
        if name is not None and name in spec.lists:
            return spec.lists[name]
    return None


def _check_lengths(flow: Flow, actions: Actions, constants: Mapping[str, str]) -> list[Problem]:
    widths = placeholder_widths(flow, actions, constants)
    problems = []
    for state in flow.states.values():
        for what, texts in _state_texts(state):
            for lang in flow.languages:
                unknown = [p for p in placeholders(texts[lang]) if p not in widths]
                problems += [
                    Problem(
                        flow.path,
                        f"{what} uses unknown placeholder {{{p}}}",
                        state=state.name,
                        language=lang,
                    )
                    for p in unknown
                ]
    if problems:
        return problems
    for state in flow.states.values():
        if state.kind == "action":
            continue
        for lang in flow.languages:
            longest = _longest_screen(flow, state, lang, widths, actions)
            if longest > flow.limit:
                problems.append(
                    Problem(
                        flow.path,
                        f"a screen can be {longest} characters with the longest "
                        f"values (limit {flow.limit} on {flow.channel})",
                        state=state.name,
                        language=lang,
                    )
                )
    return problems


def _longest_screen(
    flow: Flow, state: State, lang: str, widths: Mapping[str, int], actions: Actions
) -> int:
    """Length of the longest page this state can show in `lang`."""
    longest = {name: "x" * width for name, width in widths.items()}

    def wide(text: str) -> str:
        return fill(text, longest)

    assert state.text is not None
    lines = [wide(flow.text(state.text, lang))]
    if state.kind == "input":
        assert state.input is not None
        error = state.error or flow.strings[f"invalid_{state.input.type}"]
        lines.insert(0, flow.text(error, lang))
        lines += [
            f"{key}. {flow.string(name, lang)}" for key, name in ((BACK, "back"), (HOME, "home"))
        ]
    if state.kind == "menu":
        lines.insert(0, flow.text(flow.strings["invalid_choice"], lang))
        labels = [wide(flow.text(o.text, lang)) for o in state.options]
        listed = _list_spec(actions, state.items)
        if listed is not None:
            labels.append("x" * listed.label_width)
        # Pages never split an option: the widest one must fit with the whole footer.
        number = f"{MAX_OPTIONS}. "
        lines.append(number + max(labels, key=len))
        lines += [
            f"{key}. {flow.string(name, lang)}"
            for key, name in ((MORE, "more"), (BACK, "back"), (HOME, "home"))
        ]
    return len("\n".join(lines))
