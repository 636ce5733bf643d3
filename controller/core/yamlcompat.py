"""Read YAML manifests exactly as Kubernetes reads them (kubectl and the API server).

Called by :func:`controller.core.parse.parse_text` (``meshctl validate`` / ``meshctl
plan``), so that a manifest is judged offline by the values the API server would store,
not by PyYAML's own YAML 1.1 rules. Pure: text in, data out.

What Kubernetes does (sources: k8s.io/apimachinery ``util/yaml`` (kubectl's reader),
sigs.k8s.io/yaml v1.6.0 ``YAMLToJSON``, go.yaml.in/yaml/v2 v2.4.3 ``resolve.go`` and
``decode.go``; checked by running that Go code on the same texts, and against a real
API server by ``tests/e2e/test_yaml_scalars.py``):

* The stream is cut into documents at lines that start with ``---``; anything but
  blanks or a comment after the ``---`` is an error. Of each piece only the first YAML
  document is read (so text after a ``...`` marker is ignored). Empty documents are
  ``None`` (kubectl skips them).
* Plain scalars resolve by go-yaml v2's table, which is YAML 1.1-flavoured and differs
  from both PyYAML and the YAML 1.2 core schema:

  - ``y Y yes Yes YES on On ON true True TRUE`` are ``true``;
    ``n N no No NO off Off OFF false False FALSE`` are ``false`` (YAML 1.2: strings);
  - ``~ null Null NULL`` and the empty scalar are null;
  - integers are Go's ``strconv.ParseInt(s, 0, 64)`` after removing every ``_``:
    ``0x1F``, ``0o17``, ``0b101``, ``017`` (octal, YAML 1.2: 17), ``+1``, ``1_000``;
    beyond int64 ``ParseUint``; ``08``/``09`` are no octal, so they become the float 8/9;
  - floats are ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`` after removing
    ``_``: ``1e3``, ``1E+3``, ``5.``, ``1_000.5`` (PyYAML needs a dot: ``1e3`` is a
    string there); a scalar starting with ``.`` is Go's ``ParseFloat`` (``.5``,
    ``.5_5``); ``.inf``, ``-.Inf``, ``.nan`` ... are non-finite floats; a float that
    overflows (``1e400``) stays a string;
  - no sexagesimal numbers: ``22:00`` is the string ``"22:00"`` (PyYAML: 1320);
  - timestamps stay the string as written (``2026-11-22``, also with ``!!timestamp``);
  - everything else is a string.
* Explicit tags: ``!!str`` keeps the text; ``!!int``/``!!bool``/``!!null``/
  ``!!float``/``!!timestamp`` must resolve to that type (``!!float 1`` is 1.0) or the
  document is an error; ``!!binary`` is base64-decoded into a string; any other tag
  (``!foo``, ``!``, ``!!set`` ...) on a scalar leaves the text as a string, and tags on
  collections are ignored.
* Mappings: later keys overwrite earlier ones (kubectl does not use the strict decoder,
  so a duplicate key is no error: the last one wins). ``<<`` merge keys are applied in
  place, in order: a key after a merge overwrites the merged one, a merge after a key
  overwrites the key (go-yaml's rule, not the merge spec's); of a list of merged
  mappings the first wins. Keys become JSON strings: ints in decimal (``0x10`` ->
  ``"16"``), bools ``"true"``/``"false"``, floats in Go's shortest float32 ``%g``; a
  null key is an error (when it reaches JSON: not if a later key overwrites its mapping).
* Values then go through JSON: ``NaN``/``Inf`` are an error (Go's encoding/json
  refuses them); a float with an integral value is written without a fraction
  (``1e3`` -> ``1000``) and read back by the API server as an integer, so it is a Python
  ``int`` here; an integer beyond int64 is read back as a float64.
* Anchors and aliases are expanded; a later anchor of the same name replaces the
  first (PyYAML: an error); an anchor that contains itself is an error, and so is
  go-yaml's "excessive aliasing".
* Double-quoted escapes are libyaml's: ``\\'`` is allowed, ``\\/`` is an error.

Errors are ``yaml.MarkedYAMLError`` subclasses with ``problem`` and ``problem_mark``.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import decimal
import math
import re
import struct
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["KubernetesLoader", "KubernetesYAMLError", "load_documents", "resolve_scalar"]

_PREFIX = "tag:yaml.org,2002:"
STR_TAG = _PREFIX + "str"
INT_TAG = _PREFIX + "int"
FLOAT_TAG = _PREFIX + "float"
BOOL_TAG = _PREFIX + "bool"
NULL_TAG = _PREFIX + "null"
TIMESTAMP_TAG = _PREFIX + "timestamp"
BINARY_TAG = _PREFIX + "binary"
MERGE_TAG = _PREFIX + "merge"
# The tag our resolver gives every plain scalar whose first character go-yaml looks at.
PLAIN_TAG = "tag:meshplane.io,2026:go-yaml-plain"

_RESOLVABLE = {"", STR_TAG, BOOL_TAG, INT_TAG, FLOAT_TAG, NULL_TAG, TIMESTAMP_TAG}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1

# go-yaml v2 resolve.go: resolveTable (hint by first character) and resolveMap.
_HINTS: dict[str, str] = {"+": "S", "-": "S", ".": "."}
_HINTS.update(dict.fromkeys("0123456789", "D"))
_HINTS.update(dict.fromkeys("yYnNtTfFoO~", "M"))
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {}
for _values, _item in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), (BOOL_TAG, True)),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), (BOOL_TAG, False)),
    (("", "~", "null", "Null", "NULL"), (NULL_TAG, None)),
    ((".nan", ".NaN", ".NAN"), (FLOAT_TAG, math.nan)),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT_TAG, math.inf)),
    (("-.inf", "-.Inf", "-.INF"), (FLOAT_TAG, -math.inf)),
    (("<<",), (MERGE_TAG, "<<")),
):
    for _value in _values:
        _RESOLVE_MAP[_value] = _item

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class KubernetesYAMLError(yaml.MarkedYAMLError):
    """A manifest Kubernetes would refuse while reading it (before any schema)."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _ResolveError(ValueError):
    """go-yaml's ``failf`` in resolve(): the caller adds the mark."""


# --------------------------------------------------------------------------- Go's strconv


def _parse_uint(text: str, base: int) -> int | None:
    """Go's ``strconv.ParseUint(text, base, 64)`` for text without underscores; None on error."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            if len(text) >= 3 and text[1].lower() in "box":
                base = {"b": 2, "o": 8, "x": 16}[text[1].lower()]
                text = text[2:]
            else:
                base = 8
                text = text[1:]
    value = 0
    for char in text.lower():
        digit = _DIGITS.find(char)
        if digit < 0 or digit >= base:
            return None
        value = value * base + digit
        if value > _UINT64_MAX:
            return None
    return value


def _parse_int(text: str, base: int) -> int | None:
    """Go's ``strconv.ParseInt(text, base, 64)`` for text without underscores; None on error."""
    if not text:
        return None
    negative = text[0] == "-"
    unsigned = _parse_uint(text[1:] if text[0] in "+-" else text, base)
    if unsigned is None:
        return None
    value = -unsigned if negative else unsigned
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _underscore_ok(text: str) -> bool:
    """Go's strconv.underscoreOK for a decimal number: each ``_`` between two digits."""
    saw = "^"
    for char in text[1:] if text[:1] in ("+", "-") else text:
        if char.isascii() and char.isdigit():
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


_GO_DECIMAL_FLOAT = re.compile(r"[-+]?[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9][0-9_]*)?")


def _parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)`` for the decimal texts go-yaml hands it
    (starting with a digit, a sign or a dot); None on a syntax or range error."""
    if not _GO_DECIMAL_FLOAT.fullmatch(text) or not any(c.isdigit() for c in text.split("e")[0].split("E")[0]):
        return None
    if "_" in text and not _underscore_ok(text):
        return None
    value = float(text.replace("_", ""))
    return None if math.isinf(value) else value  # Go: ErrRange on overflow (underflow is 0)


# --------------------------------------------------------------------------- timestamps

_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<zone>Z|[-+][0-9]{2}:[0-9]{2})?)?"
)


def _is_timestamp(text: str) -> bool:
    """go-yaml v2 parseTimestamp: Go's time.Parse with the layouts
    ``2006-1-2T15:4:5.999999999Z07:00`` (also ``t``), ``2006-1-2 15:4:5.999999999``
    and ``2006-1-2``."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    if match["sep"] is not None and (match["sep"] == " ") == (match["zone"] is not None):
        return False  # the T layouts need a zone, the space layout has none
    year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return False
    if match["sep"] is not None:
        if int(match["H"]) > 23 or int(match["M"]) > 59 or int(match["S"]) > 59:
            return False
        zone = match["zone"]
        if zone not in (None, "Z") and (int(zone[1:3]) > 24 or int(zone[4:6]) > 60):
            return False
    return True


# --------------------------------------------------------------------------- resolve


def _resolve_untyped(tag: str, text: str) -> tuple[str, Any]:
    hint = _HINTS.get(text[0]) if text else "N"
    if hint is None or tag in (STR_TAG, BINARY_TAG):
        return STR_TAG, text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if hint == ".":
        value = _parse_float(text)
        if value is not None:
            return FLOAT_TAG, value
    elif hint in "DS":
        if tag in ("", TIMESTAMP_TAG) and text[:4].isdigit() and text[4:5] == "-" and _is_timestamp(text):
            return TIMESTAMP_TAG, text
        plain = text.replace("_", "")
        integer = _parse_int(plain, 0)
        if integer is None:
            integer = _parse_uint(plain, 0)
        if integer is not None:
            return INT_TAG, integer
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            value = _parse_float(plain)
            if value is not None:
                return FLOAT_TAG, value
        if plain.startswith("0b"):
            integer = _parse_int(plain[2:], 2)
            if integer is None:
                integer = _parse_uint(plain[2:], 2)
            if integer is not None:
                return INT_TAG, integer
        elif plain.startswith("-0b"):
            integer = _parse_int("-" + plain[3:], 2)
            if integer is not None:
                return INT_TAG, integer
    return STR_TAG, text


def _short(tag: str) -> str:
    return "!!" + tag[len(_PREFIX):] if tag.startswith(_PREFIX) else tag


def resolve_scalar(tag: str, text: str) -> tuple[str, Any]:
    """go-yaml v2 ``resolve(tag, in)``: the tag and value of a scalar; ``tag`` is ``""``
    for a plain scalar without a tag. Timestamps come back as their text. Raises
    ValueError where go-yaml fails (e.g. ``!!int 1.5``)."""
    if tag not in _RESOLVABLE:
        return tag, text
    rtag, value = _resolve_untyped(tag, text)
    if tag in ("", rtag, STR_TAG):
        return rtag, value
    if tag == FLOAT_TAG and rtag == INT_TAG and _INT64_MIN <= value <= _INT64_MAX:
        return FLOAT_TAG, float(value)
    raise _ResolveError(f"cannot decode {_short(rtag)} `{text}` as a {_short(tag)}")


# --------------------------------------------------------------------------- JSON


def _go_float32_g(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'g', -1, 32)`` (how YAMLToJSON writes float keys)."""
    if math.isnan(value):
        return "NaN"
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isinf(single):
        return "+Inf" if single > 0 else "-Inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    for precision in range(1, 10):
        text = f"{single:.{precision - 1}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            break
    mantissa, exponent_text = text.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exponent = int(exponent_text)
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    point = exponent + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


class _Key:
    """A go-yaml map key: equal by Go type and value (``1``, ``true`` and ``"1"`` are three
    keys), converted to a JSON key only when the whole document goes to JSON."""

    __slots__ = ("kind", "value", "mark")

    def __init__(self, value: Any, mark: yaml.Mark | None) -> None:
        self.kind = type(value).__name__
        self.value = value
        self.mark = mark

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and (self.kind, self.value) == (other.kind, other.value)

    def __hash__(self) -> int:
        return hash((self.kind, self.value))

    def json(self) -> str:
        """sigs.k8s.io/yaml convertToJSONableObject: the key as a JSON string."""
        key = self.value
        if isinstance(key, str):
            return key
        if isinstance(key, bool):
            return "true" if key else "false"
        if isinstance(key, int):
            if key > _INT64_MAX:
                raise KubernetesYAMLError(f"unsupported map key of type: uint64, key: {key}", self.mark)
            return str(key)
        if isinstance(key, float):
            text = _go_float32_g(key)
            return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
        raise KubernetesYAMLError("unsupported map key of type: <nil> (a null key cannot be a JSON key)", self.mark)


class _MarkedFloat(float):
    """A non-finite float that remembers where it was written, for the JSON error."""

    mark: yaml.Mark | None = None


def _json_value(value: Any) -> Any:
    """The value as encoding/json writes it and the API server reads it back."""
    if isinstance(value, dict):
        return {key.json(): _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        value = float(value)  # the API server reads an integer beyond int64 as a float64
    if not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
        raise KubernetesYAMLError(
            f"json: unsupported value: {shown} (JSON has no NaN or infinity)", getattr(value, "mark", None)
        )
    if value.is_integer() and abs(value) < 1e21:
        # encoding/json writes 1e3 as 1000 (an integer for the API server), and a float
        # beyond 2**53 with its shortest digits padded with zeros (1.8446744073709552e19
        # as 18446744073709552000).
        return int(decimal.Decimal(repr(value)))
    return float(value)


# --------------------------------------------------------------------------- loader


class KubernetesLoader(yaml.SafeLoader):
    """A SafeLoader that resolves and constructs like go-yaml v2 + sigs.k8s.io/yaml.

    Its only implicit resolver tags the plain scalars that go-yaml's resolve table looks
    at (by first character); ``construct_document`` then decodes the node graph the way
    go-yaml's decoder fills an ``interface{}`` (``resolve_scalar``, merge keys in order,
    last duplicate wins) and returns the JSON-normalised value.
    """

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    # libyaml's double-quoted escapes: ``\'`` yes, ``\/`` no (PyYAML: the other way round).
    ESCAPE_REPLACEMENTS = {  # type: ignore[misc]  # Final in the stubs only
        **{k: v for k, v in yaml.SafeLoader.ESCAPE_REPLACEMENTS.items() if k != "/"},
        "'": "'",
    }

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        anchor = getattr(event, "anchor", None)
        if not isinstance(event, yaml.AliasEvent) and anchor is not None:
            self.anchors.pop(anchor, None)  # go-yaml lets a later anchor of one name replace the first
        return super().compose_node(parent, index)

    def compose_scalar_node(self, anchor: str | None) -> ScalarNode:  # type: ignore[override]  # stubs: wrong type
        non_specific = getattr(self.peek_event(), "tag", None) == "!"  # type: ignore[no-untyped-call]
        node = super().compose_scalar_node(anchor)  # type: ignore[arg-type]
        if non_specific:
            node.tag = "!"  # PyYAML resolves ``! 12`` to an int; go-yaml keeps the text
        return node

    def construct_document(self, node: Node) -> Any:
        return _json_value(_Decoder().value(node))


KubernetesLoader.add_implicit_resolver(PLAIN_TAG, re.compile(r".*", re.DOTALL), [*_HINTS, "<", ""])

# go-yaml decode.go: "excessive aliasing" limits.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


def _allowed_alias_ratio(count: int) -> float:
    if count <= _ALIAS_RATIO_LOW:
        return 0.99
    if count >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (count - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


class _Decoder:
    """go-yaml v2's decoder into ``interface{}`` over a PyYAML node graph. PyYAML has no
    alias nodes (an alias is the anchored node itself), so a node met again is an alias."""

    def __init__(self) -> None:
        self.decode_count = 1  # the document node
        self.alias_count = 0
        self.alias_depth = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def _count(self, node: Node) -> None:
        self.decode_count += 1
        if self.alias_depth > 0:
            self.alias_count += 1
        if (
            self.alias_count > 100
            and self.decode_count > 1000
            and self.alias_count / self.decode_count > _allowed_alias_ratio(self.decode_count)
        ):
            raise KubernetesYAMLError("document contains excessive aliasing", node.start_mark)

    def value(self, node: Node, into: dict[_Key, Any] | None = None) -> Any:
        """Decode one node (an alias when met before); ``into``: merge a mapping into it."""
        alias = id(node) in self.seen
        if alias:
            if id(node) in self.active:
                raise KubernetesYAMLError("anchor value contains itself", node.start_mark)
            self._count(node)  # the alias node
            self.alias_depth += 1
        self.seen.add(id(node))
        self.active.add(id(node))
        try:
            self._count(node)
            if isinstance(node, MappingNode):
                return self.mapping(node, {} if into is None else into)
            if isinstance(node, SequenceNode):
                return [self.value(child) for child in node.value]
            return self.scalar(node)
        finally:
            self.active.discard(id(node))
            if alias:
                self.alias_depth -= 1

    def scalar(self, node: Node) -> Any:
        tag = "" if node.tag == PLAIN_TAG else node.tag
        text = str(node.value)
        if tag == BINARY_TAG:
            try:
                data = base64.b64decode(text.replace("\n", "").replace("\r", ""), validate=True)
            except (binascii.Error, ValueError):
                raise KubernetesYAMLError("!!binary value contains invalid base64 data", node.start_mark) from None
            return data.decode("utf-8", errors="replace")
        try:
            rtag, value = resolve_scalar(tag, text)
        except _ResolveError as exc:
            raise KubernetesYAMLError(str(exc), node.start_mark) from None
        if rtag == TIMESTAMP_TAG:
            return text  # decode.go: a timestamp read into interface{} stays a string
        if isinstance(value, float) and not math.isfinite(value):
            marked = _MarkedFloat(value)
            marked.mark = node.start_mark
            return marked
        return value

    def merge(self, node: Node, into: dict[_Key, Any]) -> None:
        def want_map() -> KubernetesYAMLError:
            return KubernetesYAMLError("map merge requires map or sequence of maps as the value", node.start_mark)

        if isinstance(node, MappingNode):
            self.value(node, into)
        elif isinstance(node, SequenceNode):
            for child in reversed(node.value):  # earlier mappings take precedence
                if not isinstance(child, MappingNode):
                    raise want_map()
                self.value(child, into)
        else:
            raise want_map()

    def mapping(self, node: MappingNode, out: dict[_Key, Any]) -> dict[_Key, Any]:
        for key_node, value_node in node.value:
            if key_node.value == "<<" and key_node.tag in (PLAIN_TAG, MERGE_TAG):
                self.merge(value_node, out)
                continue
            key = self.value(key_node)
            if isinstance(key, (dict, list)):
                raise KubernetesYAMLError("invalid map key: a mapping or sequence", key_node.start_mark)
            out[_Key(key, key_node.start_mark)] = self.value(value_node)
        return out


# --------------------------------------------------------------------------- documents


def _shift(mark: yaml.Mark | None, lines: int) -> yaml.Mark | None:
    if mark is None:
        return None
    return yaml.Mark(mark.name, mark.index, mark.line + lines, mark.column, None, 0)


def _split(text: str) -> list[tuple[int, str]]:
    """k8s.io/apimachinery YAMLReader: (first line, text) of each document."""
    pieces: list[tuple[int, str]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start, buffer = 0, list[str]()
    for number, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("---"):
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                mark = yaml.Mark("<manifest>", 0, number, 3, None, 0)
                raise KubernetesYAMLError(f"invalid Yaml document separator: {rest}", mark)
            if buffer:
                pieces.append((start, "".join(buffer)))
            start, buffer = number + 1, []
            continue
        buffer.append(line + "\n")
    if buffer:
        pieces.append((start, "".join(buffer)))
    return pieces


def load_documents(text: str) -> list[Any]:
    """The documents of a YAML stream as Kubernetes reads them (``None`` for empty ones).

    Raises a ``yaml.MarkedYAMLError`` (``problem``, ``problem_mark``) where kubectl
    would refuse the text.
    """
    documents: list[Any] = []
    for first_line, piece in _split(text):
        loader = KubernetesLoader(piece)
        try:
            node = loader.get_node() if loader.check_node() else None  # the first document only (yaml.v2)
            documents.append(None if node is None else loader.construct_document(node))
        except yaml.MarkedYAMLError as exc:
            exc.context_mark = _shift(exc.context_mark, first_line)
            exc.problem_mark = _shift(exc.problem_mark, first_line)
            raise
        finally:
            loader.dispose()
    return documents
