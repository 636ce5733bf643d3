"""What a ``docker build`` of the repository would see and do, without a container
engine: the Dockerfile's stages and instructions (:func:`parse_dockerfile`), the build
context ``.dockerignore`` leaves (:func:`context_files`, :func:`stage_context`), and the
environment a stage's ``ENV`` lines set (:func:`stage_env`).

Used by tests/packaging/test_dockerfile.py and tests/e2e/test_wheel.py, which run the
builder stage's build command on that context, so the tested venv is the image's.
Only the Dockerfile syntax this repository uses is understood (no heredocs, no escape
directive); anything else fails loudly rather than being misread.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Instruction:
    keyword: str  # upper case: RUN, ENV, COPY ...
    args: str  # the rest of the instruction, continuation lines joined


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions in order, comments dropped, ``\\`` continuations joined."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        if "<<" in args and keyword.upper() == "RUN":
            raise ValueError(f"heredocs are not understood here: {whole[:60]}")
        found.append(Instruction(keyword.upper(), " ".join(args.split())))
    if pending:
        raise ValueError("the Dockerfile ends inside a continued instruction")
    return found


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages). A stage's base has the global ARGs substituted."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = ins.args.split()
            base = _substitute(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base, name))
        elif not stages:
            if ins.keyword != "ARG":
                raise ValueError(f"{ins.keyword} before the first FROM")
            key, _, value = ins.args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def stage_env(stage: Stage, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the stage's ``ENV`` lines set (``KEY=value`` form), in order, with
    ``$VAR`` / ``${VAR}`` taken from earlier ones or ``base``."""
    env = dict(base or {})
    for ins in stage.all("ENV"):
        for word in shlex.split(ins.args):
            key, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"ENV {ins.args!r}: only the KEY=value form is understood")
            env[key] = _substitute(value, env)
    return env


def _substitute(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


# --------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" matches zero or more directories
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":  # a character class: the same syntax in Go and in Python's re
            end = pattern.index("]", i + 1)
            out += pattern[i:end + 1]
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class Rule:
    pattern: str
    negate: bool  # an exception: "!pattern"
    regex: re.Pattern[str]


def ignore_rules(text: str) -> list[Rule]:
    """The rules of a .dockerignore, in order."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = re.sub(r"/+", "/", pattern).strip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        rules.append(Rule(pattern, negate, _pattern_regex(pattern)))
    return rules


def ignored(relpath: str, rules: list[Rule]) -> bool:
    """Docker's rule: the last rule matching the path, or a parent directory of it, decides."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for rule in rules:
        if any(rule.regex.match(p) for p in prefixes):
            verdict = not rule.negate
    return verdict


def _may_reinclude(reldir: str, rules: list[Rule]) -> bool:
    """Whether an exception could bring back something under the ignored ``reldir``."""
    return any(r.negate and (r.pattern.startswith(reldir + "/") or r.pattern[:1] in "*?[") for r in rules)


def context_files(repo: Path = REPO) -> list[str]:
    """The files (relative paths, sorted) of the build context of ``repo``."""
    rules = ignore_rules((repo / ".dockerignore").read_text())
    files = []
    for root, dirs, names in os.walk(repo):
        base = Path(root).relative_to(repo).as_posix()
        base = "" if base == "." else base + "/"
        # Ignored folders nothing can re-include are not walked (the virtualenvs, .git).
        dirs[:] = [d for d in dirs if not ignored(base + d, rules) or _may_reinclude(base + d, rules)]
        files += [base + n for n in names if not ignored(base + n, rules)]
    return sorted(files)


def stage_context(dest: Path, repo: Path = REPO) -> str:
    """Copy the build context into ``dest``; return the sha256 of its paths and contents
    (a cache key: same key, same sources)."""
    digest = hashlib.sha256()
    for rel in context_files(repo):
        src = repo / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        digest.update(rel.encode() + b"\0" + src.read_bytes() + b"\0")
    return digest.hexdigest()
