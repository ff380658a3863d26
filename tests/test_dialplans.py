"""The Asterisk files in ``dialplans/``, checked by parsing them.

Asterisk 22 is not packaged for this Debian (``apt-cache policy asterisk``: no candidate), so
the files are not loaded into a running Asterisk here; this test checks what a load would
reject or what would silently break the service:

- every context, extension and priority well-formed: extensions start at priority 1, then
  ``n`` or the next number; labels unique per extension; parentheses balanced;
- only applications and dialplan functions of a stock Asterisk 22;
- every ``Goto`` / ``GotoIf`` / ``Gosub`` / ``Dial(Local/…@context)`` target exists (a target
  whose extension is a variable needs an ``i`` extension to catch unknown values);
- every queue joined is defined in ``queues_callcenter.conf`` and is one of the recordings';
- every prompt played is in ``prompts.md`` (and ``prompts.md`` lists no prompt nobody plays);
- the survey: six questions in SA-CS-005's order, one digit 1–5, a timeout, one re-ask, and one
  ``UserEvent(SurveyResult, …)`` whose headers equal the recording's (and the parser's);
- ``manager.conf``: the service's user on loopback only, its read and write classes exactly the
  ones the events it consumes and the actions it sends need (the actions are found in the code);
- no secret in the repository: only the install-time placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.survey.events import HEADERS
from tests import transcripts

ROOT = Path(__file__).resolve().parents[1]
DIALPLANS = ROOT / "dialplans"
EXTENSION_FILES = ("hotline.conf", "survey.conf", "callback.conf")
PLACEHOLDER = "@CALLCENTER_AMI_SECRET@"

# Applications and functions of a stock Asterisk 22 that these files may use.
APPLICATIONS = {"Answer", "Background", "Dial", "Gosub", "GotoIf", "Goto", "Hangup", "NoOp", "Playback",
                "Queue", "Read", "Return", "Set", "UserEvent", "WaitExten"}
FUNCTIONS = {"CHANNEL", "IF", "LOCAL", "REGEX", "TIMEOUT", "LEN", "CALLERID"}
# Queues of the lab recordings (shared/asterisk/lab-config/queues.conf).
RECORDED_QUEUES = {"aftersales", "aircon", "escalation", "bulk", "hotline"}


# --- a small extensions.conf reader ------------------------------------------------------------


@dataclass
class Priority:
    number: int
    label: str | None
    app: str
    args: str
    where: str


@dataclass
class Extension:
    name: str
    priorities: list[Priority] = field(default_factory=list)

    def labels(self) -> set[str]:
        return {p.label for p in self.priorities if p.label}

    def has(self, target: str) -> bool:
        """Whether ``target`` (a priority number, ``n``-less label) exists here."""
        if target.isdigit():
            return any(p.number == int(target) for p in self.priorities)
        return target in self.labels()


Dialplan = dict[str, dict[str, Extension]]

_CONTEXT = re.compile(r"^\[([A-Za-z0-9_-]+)\]$")
_EXTEN = re.compile(r"^exten\s*=>\s*([^,\s]+)\s*,\s*(\d+|n)(?:\(([A-Za-z0-9_-]+)\))?\s*,\s*(\w+)\((.*)\)\s*$")
_SAME = re.compile(r"^same\s*=>\s*(\d+|n)(?:\(([A-Za-z0-9_-]+)\))?\s*,\s*(\w+)\((.*)\)\s*$")
_EXT_NAME = re.compile(r"^(?:_[0-9XZN.!\[\]-]+|[0-9A-Za-z*#+-]+)$")


def _strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i:i + 2])
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def read_extensions(names: tuple[str, ...] = EXTENSION_FILES) -> Dialplan:
    """Parse the extension files; AssertionError naming file:line for anything malformed."""
    plan: Dialplan = {}
    for name in names:
        context: str | None = None
        current: Extension | None = None
        for n, raw in enumerate((DIALPLANS / name).read_text(encoding="utf-8").splitlines(), 1):
            where = f"{name}:{n}"
            line = _strip_comment(raw)
            if not line:
                continue
            if line.startswith("["):
                m = _CONTEXT.match(line)
                assert m, f"{where}: malformed context line {line!r}"
                context = m.group(1)
                assert context not in plan, f"{where}: context [{context}] defined twice"
                plan[context] = {}
                current = None
                continue
            assert context is not None, f"{where}: a line before any context"
            if line.startswith("exten"):
                m = _EXTEN.match(line)
                assert m, f"{where}: malformed exten line {line!r}"
                ext, prio, label, app, args = m.groups()
                assert _EXT_NAME.match(ext), f"{where}: bad extension {ext!r}"
                if ext in plan[context]:
                    raise AssertionError(f"{where}: extension {ext} of [{context}] split in two")
                assert prio == "1", f"{where}: extension {ext} must start at priority 1, not {prio}"
                current = plan[context][ext] = Extension(ext)
                number = 1
            elif line.startswith("same"):
                m = _SAME.match(line)
                assert m, f"{where}: malformed same line {line!r}"
                assert current is not None, f"{where}: 'same' without an extension"
                prio, label, app, args = m.groups()
                number = current.priorities[-1].number + 1
                assert prio in ("n", str(number)), f"{where}: priority {prio} out of order (expected n or {number})"
            else:
                raise AssertionError(f"{where}: not a context, exten or same line: {line!r}")
            assert current is not None
            assert _balanced(args), f"{where}: unbalanced parentheses in {app}({args})"
            assert app in APPLICATIONS, f"{where}: application {app} is not one this dialplan may use"
            if label:
                assert label not in current.labels(), f"{where}: label {label} twice in {current.name}"
            current.priorities.append(Priority(number, label, app, args, where))
    return plan


def split_args(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside ${…}, $[…], (…) and quotes."""
    out, depth, quote, cur, i = [], 0, False, "", 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return out


def _ext_matches(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    rx = ""
    for ch in pattern[1:]:
        rx += {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(ch, re.escape(ch))
    return re.fullmatch(rx, exten) is not None


def _find_ext(plan: Dialplan, context: str, exten: str) -> Extension | None:
    for name, ext in plan.get(context, {}).items():
        if _ext_matches(name, exten):
            return ext
    return None


def check_target(plan: Dialplan, here: tuple[str, str], spec: str, where: str) -> None:
    """A Goto/Gosub target ``[[context,]exten,]priority`` (Gosub arguments stripped)."""
    parts = [p.strip() for p in split_args(spec)]
    if parts and "(" in parts[-1] and not parts[-1].startswith("$"):
        parts[-1] = parts[-1][:parts[-1].index("(")]
    context, exten = here
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        exten, target = parts
    elif len(parts) == 3:
        context, exten, target = parts
    else:
        raise AssertionError(f"{where}: target {spec!r} has {len(parts)} parts")
    assert context in plan, f"{where}: no context [{context}]"
    if "${" in exten:
        # Decided at run time: an unknown value must land somewhere.
        assert "i" in plan[context], f"{where}: [{context}] needs an i extension for {exten}"
        assert any(e.has(target) for e in plan[context].values()), f"{where}: no {target} in [{context}]"
        return
    ext = _find_ext(plan, context, exten)
    assert ext is not None, f"{where}: no extension {exten} in [{context}]"
    assert ext.has(target), f"{where}: no priority/label {target} in {context},{exten}"


def all_priorities(plan: Dialplan):  # type: ignore[no-untyped-def]
    for context, exts in plan.items():
        for name, ext in exts.items():
            for p in ext.priorities:
                yield context, name, p


@pytest.fixture(scope="module")
def plan() -> Dialplan:
    return read_extensions()


def test_every_context_extension_and_priority_is_well_formed(plan: Dialplan) -> None:
    assert {"callcenter-hotline", "callcenter-hotline-menu", "callcenter-agents", "survey", "survey-question",
            "callback", "callback-queue"} <= set(plan)
    for context, exts in plan.items():
        assert exts, f"[{context}] is empty"
        for ext in exts.values():
            numbers = [p.number for p in ext.priorities]
            assert numbers == list(range(1, len(numbers) + 1)), (context, ext.name, numbers)


def test_every_goto_gosub_and_local_dial_target_exists(plan: Dialplan) -> None:
    checked = 0
    for context, name, p in all_priorities(plan):
        here = (context, name)
        if p.app in ("Goto", "Gosub"):
            check_target(plan, here, p.args, p.where)
            checked += 1
        elif p.app == "GotoIf":
            cond, _, branches = p.args.partition("?")
            assert cond and branches, f"{p.where}: GotoIf without a condition or a target"
            for branch in split_args(branches, ":"):
                if branch.strip():
                    check_target(plan, here, branch.strip(), p.where)
                    checked += 1
        elif p.app == "Dial":
            for m in re.finditer(r"Local/([^@,&]+)@([A-Za-z0-9_-]+)", p.args):
                exten, ctx = m.groups()
                assert ctx in plan, f"{p.where}: Dial into missing [{ctx}]"
                if "${" not in exten:
                    assert _find_ext(plan, ctx, exten), f"{p.where}: no {exten} in [{ctx}]"
                checked += 1
    assert checked >= 15


def test_only_stock_functions_are_used() -> None:
    for name in EXTENSION_FILES:
        text = "\n".join(_strip_comment(line) for line in (DIALPLANS / name).read_text().splitlines())
        used = set(re.findall(r"\$\{([A-Z_]+)\(", text)) | set(re.findall(r"Set\(([A-Z_]+)\(", text))
        assert used <= FUNCTIONS, f"{name}: functions {used - FUNCTIONS}"


def _queues() -> set[str]:
    text = (DIALPLANS / "queues_callcenter.conf").read_text()
    return set(re.findall(r"^\[([A-Za-z0-9_-]+)\]", text, re.MULTILINE))


def test_every_queue_joined_is_defined_and_named_as_in_the_recordings(plan: Dialplan) -> None:
    queues = _queues()
    assert queues == {"aftersales", "aircon", "escalation"} and queues <= RECORDED_QUEUES
    recorded = {m.get("Queue") for name in ("inbound_answered", "inbound_ring_no_answer", "originate_callback")
                for m in transcripts.events(name) if m.get("Event") == "QueueCallerJoin"}
    assert recorded <= queues
    for context, name, p in all_priorities(plan):
        if p.app == "Queue":
            queue = split_args(p.args)[0]
            if "${" not in queue:
                assert queue in queues, f"{p.where}: queue {queue} is not defined"
    # The hotline joins the queue its menu returns: every answer of the menu is a queue.
    menu = [split_args(p.args)[0] for _, _, p in all_priorities({"m": plan["callcenter-hotline-menu"]})
            if p.app == "Return"]
    assert set(menu) == {"aircon", "aftersales", "escalation"}
    # The hotline's Queue() runs in the DID's extension (the pop's DID is Exten at QueueCallerJoin).
    (did,) = plan["callcenter-hotline"]
    assert any(p.app == "Queue" for p in plan["callcenter-hotline"][did].priorities)
    # A callback to a queue goes ahead of new callers.
    for queue in ("aftersales", "aircon", "escalation"):
        first = plan["callback-queue"][queue].priorities
        assert first[0].args == "QUEUE_PRIO=10" and split_args(first[1].args)[0] == queue


_PROMPT = re.compile(r"(?<![\w@-])callcenter/[a-z0-9-]+")


def test_every_prompt_played_is_in_prompts_md() -> None:
    listed = set(re.findall(r"`(callcenter/[a-z0-9-]+)`", (DIALPLANS / "prompts.md").read_text()))
    played = set()
    for name in EXTENSION_FILES:
        text = "\n".join(_strip_comment(line) for line in (DIALPLANS / name).read_text().splitlines())
        played |= set(_PROMPT.findall(text))
    assert played, "no prompts found"
    assert played <= listed, f"prompts missing from prompts.md: {sorted(played - listed)}"
    assert listed <= played, f"prompts.md lists prompts nobody plays: {sorted(listed - played)}"
    assert {f"callcenter/survey-q{i}" for i in range(1, 7)} <= played


def test_the_survey_asks_six_questions_once_more_on_bad_input_and_reports_one_user_event(plan: Dialplan) -> None:
    main = plan["survey"]["s"].priorities
    asked = [split_args(p.args)[2] for p in main if p.app == "Gosub"]
    assert asked == [f"1(callcenter/survey-q{i})" for i in range(1, 7)]
    stored = [p.args for p in main if p.app == "Set" and p.args.startswith("Q")]
    assert stored == [f"Q{i}=${{GOSUB_RETVAL}}" for i in range(1, 7)]
    # One question: one digit, a timeout, 1-5 only, asked at most twice.
    q = plan["survey-question"]["s"].priorities
    (read,) = [p for p in q if p.app == "Read"]
    var, prompt, maxdigits, _opts, attempts, timeout = split_args(read.args)
    assert (prompt, maxdigits, attempts) == ("${ARG1}", "1", "1") and int(timeout) > 0
    assert any('REGEX("^[1-5]$" ${' + var + "})" in p.args for p in q if p.app == "GotoIf")
    assert any(p.app == "GotoIf" and ">= 2]?skipped" in p.args for p in q)
    assert [p.args for p in q if p.app == "Return"] == [f"${{{var}}}", ""]
    # The report: one UserEvent whose headers are the recording's, in its order.
    (event,) = [p for p in main if p.app == "UserEvent"]
    name, *body = split_args(event.args)
    headers = [b.split(":", 1)[0].strip() for b in body]
    recorded = next(m for m in transcripts.events("survey_completed") if m.get("UserEvent") == "SurveyResult")
    keys = list(recorded)
    assert name == "SurveyResult"
    assert tuple(headers) == HEADERS == tuple(keys[keys.index("UserEvent") + 1:])
    assert [b.split(":", 1)[1].strip() for b in body] == [
        "${SURVEY_JOB}", "${WORK_ORDER}", *[f"${{Q{i}}}" for i in range(1, 7)]]
    # ... from the variables the dialler sets (the recorded Originate's Variable header).
    originate = next(f.msg for f in transcripts.load("survey_completed") if f.dir == "out" and f.msg
                 and f.msg.get("Action") == "Originate")
    assert originate["Context"] == "survey" and originate["Exten"] == "s"
    assert {kv.split("=")[0] for kv in originate["Variable"].split(",")} == {"SURVEY_JOB", "WORK_ORDER"}
    # Opting out: its own event with the job, for the do-not-call list.
    (optout,) = [p for p in plan["survey"]["optout"].priorities if p.app == "UserEvent"]
    assert split_args(optout.args)[:2] == ["OptOut", "Job: ${SURVEY_JOB}"]


def test_the_callback_context_is_the_recorded_one_and_keeps_the_job_on_the_channel(plan: Dialplan) -> None:
    originate = next(f.msg for f in transcripts.load("originate_callback") if f.dir == "out" and f.msg
                 and f.msg.get("Action") == "Originate")
    assert originate["Context"] in plan and originate["Exten"] in plan[originate["Context"]]
    sets = [p.args for p in plan["callback"]["s"].priorities if p.app == "Set"]
    assert "__CALLBACK_JOB=${CALLBACK_JOB}" in sets and "__WORK_ORDER=${WORK_ORDER}" in sets
    assert "CALLBACK_JOB" in originate["Variable"]


# --- manager.conf ------------------------------------------------------------------------------


def read_ini(path: Path) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        m = re.match(r"^\[([A-Za-z0-9_-]+)\](\(\+\))?$", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: malformed line {line!r}"
        current[key.strip()] = value.strip()
    return sections


# Write classes each action needs in Asterisk 22 (any one of them); empty: none.
ACTION_CLASSES: dict[str, set[str]] = {
    "Login": set(), "Logoff": set(), "Ping": set(), "QueueStatus": set(), "QueueSummary": set(),
    "Originate": {"originate"}, "QueueAdd": {"agent"}, "QueueRemove": {"agent"}, "QueuePause": {"agent"},
    "CoreShowChannels": {"system", "reporting"},
}
# Of two classes that would do, the one granted: "system" write would also allow Originate of
# the System() application (a shell), reload and module loading.
PREFERRED = {"CoreShowChannels": "reporting"}
_SENT = re.compile(r"(?:send_action|send_list_action|_send)\(\s*\"(\w+)\"")


def actions_sent() -> set[str]:
    found = set()
    for path in (ROOT / "callcenter").rglob("*.py"):
        if "simulator" in path.parts:
            continue  # the simulator answers actions, it does not send them
        found |= set(_SENT.findall(path.read_text(encoding="utf-8")))
    return found


def events_consumed() -> set[str]:
    from callcenter.agentstate.book import EVENT_NAMES as AGENT_EVENTS
    from callcenter.calls.events import EVENT_NAMES as CALL_EVENTS

    # Plus the outbound dialler's (OriginateResponse, UserEvent) and the restart notice.
    return set(CALL_EVENTS) | set(AGENT_EVENTS) | {"OriginateResponse", "UserEvent", "FullyBooted"}


# app_queue events the lab never raised (no penalty or ringinuse change was recorded).
UNRECORDED_CLASSES = {"QueueMemberPenalty": "agent", "QueueMemberRinginuse": "agent"}


def recorded_event_classes() -> dict[str, str]:
    out = dict(UNRECORDED_CLASSES)
    for name in transcripts.NAMES:
        for m in transcripts.events(name):
            if m.get("Privilege"):
                out[m["Event"]] = m["Privilege"].split(",")[0]
    return out


def test_the_manager_user_has_exactly_the_classes_the_service_needs() -> None:
    conf = read_ini(DIALPLANS / "manager.conf")
    user = conf["callcenter"]
    assert conf["general"]["bindaddr"] == "127.0.0.1"
    assert user["deny"] == "0.0.0.0/0.0.0.0" and user["permit"] == "127.0.0.1/255.255.255.255"
    assert set(conf) == {"general", "callcenter"}

    sent = actions_sent()
    assert {"Originate", "QueueAdd", "CoreShowChannels", "QueueStatus", "Ping", "Login"} <= sent
    unknown = sent - set(ACTION_CLASSES)
    assert not unknown, f"actions sent with unknown privilege: {unknown} — add them to ACTION_CLASSES"
    needed_write = {PREFERRED.get(a, next(iter(ACTION_CLASSES[a]), "")) for a in sent} - {""}
    write = set(user["write"].split(","))
    assert write == needed_write, f"write = {sorted(write)}, needed {sorted(needed_write)}"
    assert all(not ACTION_CLASSES[a] or ACTION_CLASSES[a] & write for a in sent)

    classes = recorded_event_classes()
    consumed = events_consumed()
    missing = {e for e in consumed if e not in classes}
    assert not missing, f"events never recorded (their class is unknown): {missing}"
    needed_read = {classes[e] for e in consumed}
    read = set(user["read"].split(","))
    assert read == needed_read == {"system", "call", "agent", "user"}, read
    assert "all" not in read | write and "command" not in write and "config" not in write


def test_no_secret_in_the_repository() -> None:
    conf = read_ini(DIALPLANS / "manager.conf")
    assert conf["callcenter"]["secret"] == PLACEHOLDER
    for path in DIALPLANS.iterdir():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".conf":
            for m in re.finditer(r"^\s*secret\s*=\s*(\S*)", text, re.MULTILINE):
                assert m.group(1) == PLACEHOLDER, f"{path.name}: a secret in the repository"
        for known in ("s3cret-ami", "change-me", "loopsecret"):
            assert known not in text, f"{path.name} carries {known!r}"
    install = (DIALPLANS / "install.sh").read_text()
    assert "CALLCENTER_AMI_SECRET" in install and PLACEHOLDER in install
