"""controller.core.yamlcompat: YAML read as kubectl and the API server read it.

The expected values were taken from go.yaml.in/yaml/v2 v2.4.3 + sigs.k8s.io/yaml v1.6.0
+ k8s.io/apimachinery (kubectl's reader, then the API server's int64/float64 JSON
numbers) and agree with a real API server (tests/e2e/test_yaml_scalars.py).
"""

from __future__ import annotations

import decimal
import json
import math
import struct

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.yamlcompat import load_documents, resolve_scalar
from tests.support.manifests import parse_texts

# (YAML text after "v: ", the value Kubernetes stores); ERROR: kubectl refuses the text.
ERROR = object()
SCALARS: list[tuple[str, object]] = [
    # integers: strconv.ParseInt(s, 0, 64) after removing "_"
    ("100", 100), ("+1", 1), ("-0", 0), ("-1", -1), ("1_000", 1000), ("0777", 511), ("017", 15), ("0o777", 511),
    ("0o17", 15), ("0x1F", 31), ("0x_1F", 31), ("-0x1F", -31), ("+0x1F", 31), ("0b101", 5), ("-0b101", -5),
    ("0b-101", -5), ("00", 0), ("0", 0), ("9223372036854775807", 9223372036854775807),
    ("-9223372036854775808", -9223372036854775808),
    # beyond int64: ParseUint, then the API server reads a float64 (written by encoding/json)
    ("18446744073709551615", 18446744073709552000), ("9223372036854775808", 9223372036854776000),
    ("18446744073709551616", 18446744073709552000),
    # floats; an integral float goes through JSON as an integer
    ("1.", 1), ("1.0", 1), ("5.", 5), ("1e3", 1000), ("1E3", 1000), ("1E+3", 1000), ("0.1e-2", 0.001),
    ("-1.5e-3", -0.0015), ("1_000.5", 1000.5), (".5", 0.5), ("+.5", 0.5), ("-.5", -0.5), ("0.5", 0.5),
    (".5_5", 0.55), ("08", 8), ("09.5", 9.5), ("1e21", 1e21), ("1e20", 100000000000000000000), ("1e-7", 1e-7),
    ("1e-400", 0), ("-0.0", 0), ("1.5e300", 1.5e300),
    # not numbers
    ("1e400", "1e400"), ("._5", "._5"), (".5_", ".5_"), ("1e", "1e"), ("0x", "0x"), ("0b", "0b"), ("1.2.3", "1.2.3"),
    ("0x1p3", "0x1p3"), ("1,000", "1,000"), ("Infinity", "Infinity"), ("inf", "inf"), ("nan", "nan"), ("-", ERROR),
    ("1e3x", "1e3x"), ("_1", "_1"),
    # non-finite floats: encoding/json refuses them
    (".inf", ERROR), ("-.Inf", ERROR), ("+.INF", ERROR), (".nan", ERROR), (".NaN", ERROR),
    # booleans: YAML 1.1 as go-yaml v2 reads it (YAML 1.2 core: only true/false)
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False),
    ("yes", True), ("Yes", True), ("YES", True), ("no", False), ("No", False), ("NO", False), ("y", True),
    ("Y", True), ("n", False), ("N", False), ("on", True), ("On", True), ("ON", True), ("off", False),
    ("OFF", False), ("tRUE", "tRUE"), ("yEs", "yEs"), ("oN", "oN"),
    # nulls
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None), ("nULL", "nULL"),
    # no sexagesimal numbers (PyYAML: 22:00 is 1320); timestamps stay strings
    ("22:00", "22:00"), ("1:30:00", "1:30:00"), ("190:20:30", "190:20:30"), ("2026-11-22", "2026-11-22"),
    ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"), ("2026-11-22 10:00:00", "2026-11-22 10:00:00"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    # quoted: always strings
    ("'1e3'", "1e3"), ('"yes"', "yes"), ("'~'", "~"), ("''", ""), ('"\\u0031"', "1"), ('"it\\\'s"', "it's"),
    ('"a\\/b"', ERROR),
    # explicit tags
    ("!!str 1e3", "1e3"), ("!!str yes", "yes"), ("!!str", ""), ("!!float 1", 1), ("!!float '2.5'", 2.5),
    ("!!float 1e3", 1000), ("!!float x", ERROR), ("!!float 18446744073709551615", ERROR), ("!!int 0x1F", 31),
    ("!!int '12'", 12), ("!!int 1.5", ERROR), ("!!int yes", ERROR), ("!!bool yes", True), ("!!bool True", True),
    ("!!bool 1", ERROR), ("!!null ~", None), ("!!null ''", None), ("!!null x", ERROR),
    ("!!timestamp 2026-11-22", "2026-11-22"), ("!!timestamp 2026-1-2T3:4:5Z", "2026-1-2T3:4:5Z"),
    ("!!timestamp 2026-02-30", ERROR), ("!!timestamp 2026-13-01", ERROR), ("!!timestamp x", ERROR),
    ("!!binary aGVsbG8=", "hello"), ("!!binary 'aGVsbG8'", ERROR), ("! 12", "12"), ("!custom 12", "12"),
    ("!custom yes", "yes"), ("!!set {a, b}", {"a": None, "b": None}), ("!custom {a: 1}", {"a": 1}),
    # misc strings
    ("<<", "<<"), ("= x", "= x"), ("us-west", "us-west"), ("yes-please", "yes-please"),
]


def value_of(text: str) -> object:
    try:
        document = load_documents(f"v: {text}\n")[0]
    except yaml.YAMLError:
        return ERROR
    return document["v"]


def same(a: object, b: object) -> bool:
    """Equal as JSON values: same JSON type (True is not 1) and same value."""
    if a is ERROR or b is ERROR:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or (
        type(a) in (int, float) and type(b) in (int, float) and a == b and type(a) is type(b)
    )


@pytest.mark.parametrize(("text", "expected"), SCALARS, ids=[repr(t) for t, _ in SCALARS])
def test_scalar_resolves_as_in_kubernetes(text: str, expected: object) -> None:
    got = value_of(text)
    assert same(got, expected), f"{text!r}: got {got!r}, Kubernetes stores {expected!r}"


KEYS: list[tuple[str, object]] = [
    ("1", "1"), ("0x10", "16"), ("017", "15"), ("yes", "true"), ("off", "false"), ("1.5", "1.5"), ("1e3", "1000"),
    ("1e6", "1e+06"), ("0.00001", "1e-05"), ("0.1", "0.1"), ("123456.7", "123456.7"), ("1e39", ".inf"),
    ("-0.0", "-0"), (".nan", ".nan"), ("-.inf", "-.inf"), ("2026-11-22", "2026-11-22"), ("'1'", "1"),
    ("~", ERROR), ("''", ""), ("[a]", ERROR), ("{a: 1}", ERROR), ("18446744073709551615", ERROR),
]


@pytest.mark.parametrize(("text", "expected"), KEYS, ids=[repr(t) for t, _ in KEYS])
def test_keys_become_json_strings_as_in_sigs_k8s_yaml(text: str, expected: object) -> None:
    try:
        keys = list(load_documents(f"{text}: v\n")[0])
    except yaml.YAMLError:
        keys = [ERROR]
    assert keys == [expected]


DOCUMENTS: list[tuple[str, object]] = [
    ("a: 1\na: 2\n", [{"a": 2}]),  # duplicate keys: the last wins, no error (kubectl is not strict)
    ("a: 2\n<<: {a: 3}\n", [{"a": 3}]),  # a merge after a key overwrites it (go-yaml v2)
    ("<<: {a: 3}\na: 2\n", [{"a": 2}]),
    ("<<: [{a: 1, b: 1}, {a: 2, c: 2}]\n", [{"a": 1, "b": 1, "c": 2}]),  # the first merged mapping wins
    ("x: &a {p: 1}\nz: {<<: *a, q: 2}\n", [{"x": {"p": 1}, "z": {"p": 1, "q": 2}}]),
    ("x: &a [1]\nz: {<<: *a}\n", ERROR), ("<<: 3\n", ERROR), ("<<: ~\n", ERROR), ("<<: [{a: 1}, 3]\n", ERROR),
    ("'<<': {a: 1}\n", [{"<<": {"a": 1}}]), ("!!merge <<: {a: 1}\n", [{"a": 1}]),
    ("x: &a {p: *a}\n", ERROR), ("&a [*a]\n", ERROR), ("a: *b\n", ERROR),  # self-containing, unknown anchors
    ("a: &x 1\nb: *x\nc: &y [*x, *x]\nd: *y\n", [{"a": 1, "b": 1, "c": [1, 1], "d": [1, 1]}]),
    ("a: &x 1\nb: &x 2\nc: *x\n", [{"a": 1, "b": 2, "c": 2}]),  # a later anchor of one name replaces the first
    ("a: {~: 1}\na: 2\n", [{"a": 2}]),  # a null key is an error only if it reaches JSON
    # documents: cut at lines starting with ---, first YAML document of each piece only
    ("a: 1\n---\nb: 2\n", [{"a": 1}, {"b": 2}]), ("--- # c\na: 1\n---\n", [{"a": 1}]),
    ("# only a comment\n---\n---\na: 1\n", [None, {"a": 1}]), ("a: 1\n...\nb: [\n", [{"a": 1}]),
    ("a: 1\n--- foo\n", ERROR), ("--- {a: 1}\n", ERROR), ("a: 1\n----\n", ERROR), ("null\n", [None]),
    ("a: 1\r\n---\r\nb: 2\r\n", [{"a": 1}, {"b": 2}]), ("", []), ("- 1\n- yes\n", [[1, True]]),
    ("a:\n- 1\n- .inf\n", ERROR), ("a: .inf\na: 1\n", [{"a": 1}]), ('{"a": 1e3, "b": "x"}\n', [{"a": 1000, "b": "x"}]),
]


@pytest.mark.parametrize(("text", "expected"), DOCUMENTS, ids=[repr(t) for t, _ in DOCUMENTS])
def test_documents_as_kubectl_reads_them(text: str, expected: object) -> None:
    try:
        got: object = load_documents(text)
    except yaml.YAMLError:
        got = ERROR
    assert got == expected if expected is not ERROR else got is ERROR


def test_errors_carry_the_line_for_the_problem_message() -> None:
    text = "a: 1\n---\nb: 2\nc: .inf\n"
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        load_documents(text)
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line == 3
    assert "unsupported value: +Inf" in str(caught.value.problem)
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        load_documents("a: 1\nb: [1,\n---\n")
    assert caught.value.problem_mark is not None


def test_parse_reads_1e3_and_22_00_as_the_api_server_does() -> None:
    factory = """\
apiVersion: meshplane.io/v1alpha1
kind: AIFactory
metadata: {name: f}
spec:
  region: us-south
  country: US
  power: {firmMW: 1e3, flexibleMW: 0, curtailedMW: 0, pue: 1.2, pricePerMWh: 60, carbonGramsPerKWh: 300}
  acceleratorPools:
  - {model: nvidia-gb200, count: 10, wattsPerDevice: 1800, tokensPerSecondPerDevice: 3000, memoryGiB: 186}
  cordoned: no
"""
    manifests = parse_texts([("f.yaml", factory)])
    assert not manifests.problems
    assert manifests.factories[0].spec.power.firm_mw == 1000
    assert manifests.factories[0].spec.cordoned is False
    bad = parse_texts([("f.yaml", factory.replace("cordoned: no", "cordoned: .inf"))])
    assert [p.field for p in bad.problems] == ["line 10, column 13"]


# --------------------------------------------------------------------------- properties

_finite = st.floats(allow_nan=False, allow_infinity=False)
_keys = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).map(lambda k: "k" + k)
_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), _finite)


def _as_stored(value: object) -> object:
    """What the API server stores for a value: an integral float is an integer, written by
    encoding/json with its shortest digits (4.654355327654755e16 as 46543553276547550)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))
    return value


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, st.one_of(_json_scalars, st.lists(_json_scalars, max_size=3)), max_size=5))
def test_safe_dump_numbers_bools_nulls_read_back_as_json(data: dict[str, object]) -> None:
    """What yaml.safe_dump writes for None, bools, ints and floats (e.g. ``1.0e+21``) is
    read back as the same JSON value."""
    (got,) = load_documents(yaml.safe_dump(data))
    expected = {k: [_as_stored(x) for x in v] if isinstance(v, list) else _as_stored(v) for k, v in data.items()}
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_safe_dump_strings_read_back_unless_go_yaml_resolves_them(text: str) -> None:
    """yaml.safe_dump quotes the strings PyYAML would resolve; go-yaml resolves more
    (``1e3``, ``y``, ``0o17``, ``.5_5``, ``+.5``), which PyYAML then writes plain: those
    come back as numbers or booleans. Any other string comes back unchanged."""
    dumped = yaml.safe_dump({"k": text})
    (got,) = load_documents(dumped)
    if got["k"] != text:
        assert dumped.startswith("k: " + text), dumped  # written plain ...
        assert resolve_scalar("", text)[0] != "tag:yaml.org,2002:str"  # ... and resolved by go-yaml


@pytest.mark.parametrize(("text", "kubernetes"), [("1e3", 1000), ("y", True), ("n", False), ("0o17", 15), ("+.5", 0.5)])
def test_safe_dump_writes_some_strings_that_kubernetes_reads_as_other_types(text: str, kubernetes: object) -> None:
    """A hazard for anything that writes manifests with yaml.safe_dump: quote these."""
    assert yaml.safe_dump({"k": text}) == f"k: {text}\n"
    assert load_documents(yaml.safe_dump({"k": text})) == [{"k": kubernetes}]


_sign = st.sampled_from(["", "+", "-"])
_digits = st.text("0123456789", min_size=1, max_size=25)


@st.composite
def _go_numbers(draw: st.DrawFn) -> tuple[str, int | float, int | float] | None:
    """(text, go-yaml's value, the value the API server stores) of number texts, by Go's
    strconv rules; None for texts that are strings to go-yaml."""
    sign = draw(_sign)
    kind = draw(st.sampled_from(["dec", "hex", "oct", "bin", "float"]))
    if kind == "float":
        mantissa = draw(_digits) + draw(st.sampled_from(["", "."])) + draw(st.text("0123456789", max_size=5))
        exponent = draw(st.sampled_from(["", "e", "E"]))
        if exponent:
            mantissa += exponent + draw(_sign) + str(draw(st.integers(0, 330)))
        elif "." not in mantissa:
            return None  # an integer text
        value = float(sign + mantissa)
        return None if math.isinf(value) else (sign + mantissa, value, value)  # overflow: a string
    if kind == "dec":
        digits = draw(_digits.filter(lambda d: d == "0" or not d.startswith("0")))
        text, number = sign + digits, int(sign + digits)
    else:
        base = {"hex": 16, "oct": 8, "bin": 2}[kind]
        number = draw(st.integers(0, 2**70))
        body = format(number, {"hex": "x", "oct": "o", "bin": "b"}[kind])
        text, number = sign + "0" + {"hex": "x", "oct": "o", "bin": "b"}[kind] + body, int(sign + body, base)
    if -(2**63) <= number < 2**63:
        return text, number, number
    if not sign and number < 2**64:
        return text, number, float(number)  # ParseUint; the API server reads a float64
    if kind == "dec":
        return text, float(text), float(text)  # beyond int64 and uint64: the float syntax
    return None


@settings(max_examples=500, deadline=None)
@given(_go_numbers())
def test_numbers_resolve_as_go_strconv(case: tuple[str, int | float, int | float] | None) -> None:
    if case is None:
        return
    text, resolved, stored = case
    tag, value = resolve_scalar("", text)
    assert (tag, value) == ("tag:yaml.org,2002:" + ("int" if isinstance(resolved, int) else "float"), resolved)
    got = value_of(text)
    assert isinstance(got, (int, float)) and float(got) == float(stored)
    # Through JSON an integral float is an integer: the API server reads it as int64.
    assert isinstance(got, int) == (float(stored).is_integer() and abs(stored) < 1e21)


def test_float_keys_use_go_float32_formatting() -> None:
    # 0.1 as float32 is 0.100000001490116...; Go's shortest float32 form is "0.1".
    assert struct.unpack("<f", struct.pack("<f", 0.1))[0] != 0.1
    assert list(load_documents("0.1: x\n3.14159265358979: z\n")[0]) == ["0.1", "3.1415927"]
