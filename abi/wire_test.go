package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The vectors in testdata/wire were written by an independent encoder (gen.py, Python), so
// that this implementation and any other check themselves against the same bytes.

type recordVector struct {
	Name      string          `json:"name"`
	Note      string          `json:"note"`
	Event     json.RawMessage `json:"event"`
	KindIndex int             `json:"kind_index"`
	Paths     []string        `json:"paths"`
	RecordHex string          `json:"record_hex"`
	Values    []struct {
		Tag   byte            `json:"tag"`
		Value json.RawMessage `json:"value"`
	} `json:"values"`
}

type fill struct {
	Byte  string `json:"byte"`
	Count int    `json:"count"`
}

type replyVector struct {
	Name     string `json:"name"`
	ReplyHex string `json:"reply_hex"`
	Fill     *fill  `json:"fill"`
	Limits   struct {
		Emits        []int `json:"emits"`
		EvidenceKeys int   `json:"evidence_keys"`
	} `json:"limits"`
	Want struct {
		Drafts []struct {
			Rule     int     `json:"rule"`
			Emit     int     `json:"emit"`
			Scale    float64 `json:"scale"`
			Evidence []struct {
				Key   int             `json:"key"`
				Type  string          `json:"type"`
				Value json.RawMessage `json:"value"`
				Fill  *fill           `json:"fill"`
			} `json:"evidence"`
		} `json:"drafts"`
		Error   string  `json:"error"`
		Message *string `json:"message"`
	} `json:"want"`
}

func loadVectors[T any](t testing.TB, name string) []T {
	t.Helper()
	data, err := os.ReadFile("testdata/wire/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []T
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fill) bytes(t testing.TB) []byte {
	return bytes.Repeat(unhex(t, f.Byte), f.Count)
}

func (v *replyVector) data(t testing.TB) []byte {
	b := unhex(t, v.ReplyHex)
	if v.Fill != nil {
		b = append(b, v.Fill.bytes(t)...)
	}
	return b
}

func (v *replyVector) limits() ReplyLimits {
	return ReplyLimits{Emits: v.Limits.Emits, EvidenceKeys: v.Limits.EvidenceKeys}
}

func unmarshal(t testing.TB, raw json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("vector value %s: %v", raw, err)
	}
}

func number(t testing.TB, n json.Number) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sameFloat is bit equality, so NaNs (and which NaN) count.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

var canonicalNaN = math.Float64frombits(0x7FF8000000000001)

func TestRecordVectors(t *testing.T) {
	tags := map[byte]bool{}
	for _, v := range loadVectors[recordVector](t, "records.json") {
		t.Run(v.Name, func(t *testing.T) {
			ev, err := DecodeEvent(v.Event)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			paths := make([]Path, len(v.Paths))
			for i, s := range v.Paths {
				if paths[i], err = ParsePath(s); err != nil {
					t.Fatal(err)
				}
			}
			want := unhex(t, v.RecordHex)
			got := AppendRecord(nil, v.KindIndex, paths, &ev)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendRecord:\n got %x\nwant %x", got, want)
			}
			// AppendRecord appends: a buffer's earlier bytes stay.
			if got := AppendRecord([]byte("xy"), v.KindIndex, paths, &ev); !bytes.Equal(got[2:], want) || string(got[:2]) != "xy" {
				t.Errorf("AppendRecord on a non-empty buffer = %x", got)
			}

			var r Record
			if err := r.Reset(want); err != nil {
				t.Fatalf("Reset: %v", err)
			}
			if r.KindIndex() != v.KindIndex || r.Fields != len(v.Paths) || len(v.Values) != len(v.Paths) {
				t.Fatalf("kind %d fields %d, want %d %d", r.KindIndex(), r.Fields, v.KindIndex, len(v.Paths))
			}
			for i, val := range v.Values {
				tags[val.Tag] = true
				checkField(t, &r, i, v.Paths[i], val.Tag, val.Value)
			}
			// Out of range reads are harmless zero values.
			for _, i := range []int{-1, r.Fields, r.Fields + 7} {
				if r.Type(i) != TypeNull || r.String(i) != "" || r.Len(i) != 0 || !math.IsNaN(r.Float(i)) || !math.IsNaN(r.NumberAt(i, 0)) {
					t.Errorf("field %d out of range reads a value", i)
				}
				if _, ok := r.Int(i); ok {
					t.Errorf("Int(%d) ok", i)
				}
				if _, ok := r.Bool(i); ok {
					t.Errorf("Bool(%d) ok", i)
				}
			}
		})
	}
	for tag := TypeNull; tag <= TypePairs; tag++ {
		if !tags[tag] {
			t.Errorf("no vector covers type tag %d", tag)
		}
	}
}

// checkField reads field i through every accessor and compares with the vector's value.
func checkField(t *testing.T, r *Record, i int, path string, tag byte, raw json.RawMessage) {
	t.Helper()
	if got := r.Type(i); got != tag {
		t.Fatalf("%s: Type = %d, want %d", path, got, tag)
	}
	// Accessors of another type return their zero value.
	if tag != TypeString && r.String(i) != "" {
		t.Errorf("%s: String of a %d = %q", path, tag, r.String(i))
	}
	if _, ok := r.Bool(i); ok != (tag == TypeBool) {
		t.Errorf("%s: Bool ok = %v", path, ok)
	}
	if _, ok := r.Int(i); ok != (tag == TypeInt || tag == TypeFloat) {
		t.Errorf("%s: Int ok = %v", path, ok)
	}
	if tag != TypeInt && tag != TypeFloat && !math.IsNaN(r.Float(i)) {
		t.Errorf("%s: Float of a %d = %v", path, tag, r.Float(i))
	}
	isList := tag == TypeStringList || tag == TypeNumberList || tag == TypePairs
	if !isList && r.Len(i) != 0 {
		t.Errorf("%s: Len of a %d = %d", path, tag, r.Len(i))
	}
	if tag != TypeNumberList && !math.IsNaN(r.NumberAt(i, 0)) {
		t.Errorf("%s: NumberAt of a %d is a number", path, tag)
	}
	if tag != TypeStringList && tag != TypePairs {
		r.Strings(i, func(int, string) bool { t.Errorf("%s: Strings visits a %d", path, tag); return false })
		if r.StringAt(i, 0) != "" {
			t.Errorf("%s: StringAt of a %d", path, tag)
		}
	}

	switch tag {
	case TypeNull:
	case TypeBool:
		var want bool
		unmarshal(t, raw, &want)
		if got, ok := r.Bool(i); !ok || got != want {
			t.Errorf("%s: Bool = %v %v, want %v", path, got, ok, want)
		}
	case TypeInt:
		var n json.Number
		unmarshal(t, raw, &n)
		want, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := r.Int(i); !ok || got != want {
			t.Errorf("%s: Int = %d %v, want %d", path, got, ok, want)
		}
		if got := r.Float(i); got != float64(want) {
			t.Errorf("%s: Float = %v, want %d", path, got, want)
		}
	case TypeFloat:
		var n json.Number
		unmarshal(t, raw, &n)
		want := number(t, n)
		if got := r.Float(i); !sameFloat(got, want) {
			t.Errorf("%s: Float = %v, want %v", path, got, want)
		}
		if got, ok := r.Int(i); !ok || got != int64(want) {
			t.Errorf("%s: Int = %d %v, want %d", path, got, ok, int64(want))
		}
	case TypeString:
		var want string
		unmarshal(t, raw, &want)
		if got := r.String(i); got != want {
			t.Errorf("%s: String = %q, want %q", path, got, want)
		}
	case TypeStringList, TypePairs:
		var want []string
		if tag == TypePairs {
			var pairs [][2]string
			unmarshal(t, raw, &pairs)
			for _, p := range pairs {
				want = append(want, p[0], p[1])
			}
			if r.Len(i) != len(pairs) {
				t.Errorf("%s: Len = %d, want %d pairs", path, r.Len(i), len(pairs))
			}
		} else {
			unmarshal(t, raw, &want)
			if r.Len(i) != len(want) {
				t.Errorf("%s: Len = %d, want %d", path, r.Len(i), len(want))
			}
		}
		var got []string
		r.Strings(i, func(j int, s string) bool {
			if j != len(got) {
				t.Errorf("%s: Strings index %d after %d entries", path, j, len(got))
			}
			got = append(got, s)
			return true
		})
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: Strings = %q, want %q", path, got, want)
		}
		for j, s := range want {
			if g := r.StringAt(i, j); g != s {
				t.Errorf("%s: StringAt(%d) = %q, want %q", path, j, g, s)
			}
		}
		if r.StringAt(i, len(want)) != "" || r.StringAt(i, -1) != "" {
			t.Errorf("%s: StringAt out of range is not empty", path)
		}
		// Strings stops when f returns false.
		n := 0
		r.Strings(i, func(int, string) bool { n++; return false })
		if len(want) > 0 && n != 1 {
			t.Errorf("%s: Strings went on after false: %d calls", path, n)
		}
	case TypeNumberList:
		var want []*json.Number
		unmarshal(t, raw, &want)
		if r.Len(i) != len(want) {
			t.Fatalf("%s: Len = %d, want %d", path, r.Len(i), len(want))
		}
		for j, w := range want {
			exp := canonicalNaN // null in the vector: a missing element
			if w != nil {
				exp = number(t, *w)
			}
			if got := r.NumberAt(i, j); !sameFloat(got, exp) {
				t.Errorf("%s: NumberAt(%d) = %v (%#x), want %v (%#x)", path, j, got, math.Float64bits(got), exp, math.Float64bits(exp))
			}
		}
		if !math.IsNaN(r.NumberAt(i, -1)) || !math.IsNaN(r.NumberAt(i, len(want))) {
			t.Errorf("%s: NumberAt out of range is a number", path)
		}
	default:
		t.Fatalf("%s: vector with tag %d", path, tag)
	}
}

func TestRecordResetMalformed(t *testing.T) {
	hdr := func(n uint16) []byte { return binary.LittleEndian.AppendUint16([]byte{1, 0}, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u32 := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", []byte{1, 0, 0}},
		{"version 0", []byte{0, 0, 0, 0}},
		{"version 2", []byte{2, 0, 0, 0}},
		{"fewer fields than declared", hdr(2)},
		{"trailing bytes", cat(hdr(1), []byte{TypeNull, 0})},
		{"unknown tag", cat(hdr(1), []byte{8})},
		{"bool without byte", cat(hdr(1), []byte{TypeBool})},
		{"int short", cat(hdr(1), []byte{TypeInt, 1, 2, 3, 4, 5, 6, 7})},
		{"float short", cat(hdr(1), []byte{TypeFloat, 0})},
		{"string length short", cat(hdr(1), []byte{TypeString, 1, 0})},
		{"string past end", cat(hdr(1), []byte{TypeString}, u32(4), []byte("abc"))},
		{"string length 4 GiB", cat(hdr(1), []byte{TypeString}, u32(math.MaxUint32))},
		{"string list count huge", cat(hdr(1), []byte{TypeStringList}, u32(math.MaxUint32))},
		{"string list entry past end", cat(hdr(1), []byte{TypeStringList}, u32(1), u32(2), []byte("a"))},
		{"string list missing entry", cat(hdr(1), []byte{TypeStringList}, u32(2), u32(1), []byte("a"))},
		{"number list count huge", cat(hdr(1), []byte{TypeNumberList}, u32(math.MaxUint32))},
		{"number list short", cat(hdr(1), []byte{TypeNumberList}, u32(2), make([]byte, 15))},
		{"pairs missing value", cat(hdr(1), []byte{TypePairs}, u32(1), u32(1), []byte("k"))},
		{"pairs count huge", cat(hdr(1), []byte{TypePairs}, u32(math.MaxUint32/2+1))},
	}
	for _, tt := range tests {
		var r Record
		if err := r.Reset(tt.data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Reset = %v, want ErrMalformed", tt.name, err)
		}
	}
	// A record stays readable after a malformed one is refused, once it is Reset again.
	var r Record
	good := cat(hdr(1), []byte{TypeString}, u32(2), []byte("ok"))
	if err := r.Reset(good); err != nil {
		t.Fatal(err)
	}
	if err := r.Reset(tests[4].data); err == nil {
		t.Fatal("accepted a truncated record")
	}
	if err := r.Reset(good); err != nil || r.String(0) != "ok" {
		t.Fatalf("reuse after an error: %v %q", err, r.String(0))
	}
}

func TestReplyVectors(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range loadVectors[replyVector](t, "replies.json") {
		t.Run(v.Name, func(t *testing.T) {
			data := v.data(t)
			prefix := []ReplyDraft{{Rule: 99}}
			got, err := DecodeReply(data, v.limits(), prefix)
			if len(got) < 1 || got[0].Rule != 99 {
				t.Fatalf("DecodeReply dropped the drafts it was given to append to")
			}
			got = got[1:]
			switch v.Want.Error {
			case "malformed":
				seen["malformed"] = true
				if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrGuest) {
					t.Fatalf("DecodeReply = %v, want ErrMalformed", err)
				}
				return
			case "guest":
				seen["guest"] = true
				if !errors.Is(err, ErrGuest) || errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeReply = %v, want ErrGuest", err)
				}
				if v.Want.Message != nil {
					if msg, _ := strings.CutPrefix(err.Error(), ErrGuest.Error()+": "); msg != *v.Want.Message {
						t.Errorf("message %q, want %q", msg, *v.Want.Message)
					}
					var b ReplyBuilder
					b.Reset()
					b.Error(*v.Want.Message)
					if !bytes.Equal(b.Bytes(), data) {
						t.Errorf("ReplyBuilder.Error:\n got %x\nwant %x", b.Bytes(), data)
					}
				}
				return
			case "":
				seen["ok"] = true
			default:
				t.Fatalf("unknown want.error %q", v.Want.Error)
			}
			if err != nil {
				t.Fatalf("DecodeReply: %v", err)
			}
			want := make([]ReplyDraft, len(v.Want.Drafts))
			for i, d := range v.Want.Drafts {
				want[i] = ReplyDraft{Rule: d.Rule, Emit: d.Emit, Scale: d.Scale}
				for _, e := range d.Evidence {
					want[i].Evidence = append(want[i].Evidence, ReplyEvidence{Key: e.Key, Value: evidenceValue(t, e.Type, e.Value, e.Fill)})
				}
			}
			if !sameDrafts(got, want) {
				t.Fatalf("DecodeReply:\n got %+v\nwant %+v", got, want)
			}
			// The builder writes the same bytes, and they decode to the same drafts.
			var b ReplyBuilder
			b.Reset()
			buildDrafts(&b, want)
			if !bytes.Equal(b.Bytes(), data) {
				t.Errorf("ReplyBuilder:\n got %x\nwant %x", b.Bytes(), data)
			}
			again, err := DecodeReply(b.Bytes(), v.limits(), nil)
			if err != nil || !sameDrafts(again, want) {
				t.Errorf("built reply decodes to %+v, %v", again, err)
			}
		})
	}
	for _, k := range []string{"ok", "guest", "malformed"} {
		if !seen[k] {
			t.Errorf("no %s vector", k)
		}
	}
}

func evidenceValue(t *testing.T, typ string, raw json.RawMessage, f *fill) any {
	switch typ {
	case "string":
		if f != nil {
			return string(f.bytes(t))
		}
		var s string
		unmarshal(t, raw, &s)
		return s
	case "int":
		var n json.Number
		unmarshal(t, raw, &n)
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return i
	case "float":
		var n json.Number
		unmarshal(t, raw, &n)
		return number(t, n)
	case "bool":
		var b bool
		unmarshal(t, raw, &b)
		return b
	case "strings":
		out := []string{}
		unmarshal(t, raw, &out)
		return out
	case "numbers":
		var ns []json.Number
		unmarshal(t, raw, &ns)
		out := make([]float64, len(ns))
		for i, n := range ns {
			out[i] = number(t, n)
		}
		return out
	}
	t.Fatalf("unknown evidence type %q", typ)
	return nil
}

// buildDrafts re-encodes decoded drafts. It uses ReplyBuilder's methods wherever they write
// the value exactly; they cannot write a number list, a null, an int beyond 2^53 or an
// integral float (EvidenceNumber writes an integral float64 as an int), so those go through
// the builder's internals.
func buildDrafts(b *ReplyBuilder, drafts []ReplyDraft) {
	for _, d := range drafts {
		b.Draft(d.Rule, d.Emit, d.Scale)
		for _, e := range d.Evidence {
			switch x := e.Value.(type) {
			case string:
				b.EvidenceString(e.Key, x)
			case bool:
				b.EvidenceBool(e.Key, x)
			case []string:
				b.EvidenceStrings(e.Key, x)
			case int64:
				if x >= -1<<53 && x <= 1<<53 {
					b.EvidenceNumber(e.Key, float64(x))
				} else {
					b.evidence(e.Key)
					b.buf = appendValue(b.buf, x)
				}
			case float64:
				if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
					b.EvidenceNumber(e.Key, x)
				} else {
					b.evidence(e.Key)
					b.buf = binary.LittleEndian.AppendUint64(append(b.buf, TypeFloat), math.Float64bits(x))
				}
			default: // []float64, nil
				b.evidence(e.Key)
				b.buf = appendValue(b.buf, x)
			}
		}
	}
}

// sameDrafts compares drafts with floats by their bits (so NaN equals itself).
func sameDrafts(a, b []ReplyDraft) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Rule != y.Rule || x.Emit != y.Emit || !sameFloat(x.Scale, y.Scale) || len(x.Evidence) != len(y.Evidence) {
			return false
		}
		for j := range x.Evidence {
			if x.Evidence[j].Key != y.Evidence[j].Key || !sameValue(x.Evidence[j].Value, y.Evidence[j].Value) {
				return false
			}
		}
	}
	return true
}

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && sameFloat(x, y)
	case []float64:
		y, ok := b.([]float64)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameFloat(x[i], y[i]) {
				return false
			}
		}
		return true
	case []string:
		y, ok := b.([]string)
		return ok && len(x) == len(y) && (len(x) == 0 || reflect.DeepEqual(x, y))
	}
	return reflect.DeepEqual(a, b)
}

func TestReplyBuilder(t *testing.T) {
	lim := ReplyLimits{Emits: []int{1, 2}, EvidenceKeys: 5}
	var b ReplyBuilder
	for round := 0; round < 2; round++ { // the second round reuses the buffer
		b.Reset()
		b.Draft(1, 1, 0.6)
		b.EvidenceString(0, "wget")
		b.EvidenceNumber(1, 3)    // integral: written as an int
		b.EvidenceNumber(2, 0.25) // written as a float
		b.EvidenceBool(3, true)
		b.EvidenceStrings(4, []string{"a", ""})
		b.Draft(0, 0, 1)
		got, err := DecodeReply(b.Bytes(), lim, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []ReplyDraft{
			{Rule: 1, Emit: 1, Scale: 0.6, Evidence: []ReplyEvidence{{0, "wget"}, {1, int64(3)}, {2, 0.25}, {3, true}, {4, []string{"a", ""}}}},
			{Rule: 0, Emit: 0, Scale: 1},
		}
		if !sameDrafts(got, want) {
			t.Fatalf("round %d: got %+v", round, got)
		}
	}
	// An error reply replaces whatever was built; Reset starts an OK reply again.
	b.Error("boom")
	if _, err := DecodeReply(b.Bytes(), lim, nil); !errors.Is(err, ErrGuest) || !strings.HasSuffix(err.Error(), ": boom") {
		t.Fatalf("error reply decodes to %v", err)
	}
	b.Reset()
	if got, err := DecodeReply(b.Bytes(), lim, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty reply decodes to %v, %v", got, err)
	}
	// Evidence before any draft has no draft to belong to: the reply is undecodable.
	b.Reset()
	b.EvidenceString(0, "orphan")
	if got, err := DecodeReply(b.Bytes(), lim, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("evidence before a draft decodes to %v, %v", got, err)
	}
}

func TestWireDoesNotAllocate(t *testing.T) {
	vectors := loadVectors[recordVector](t, "records.json")
	var recs [][]byte
	for _, v := range vectors {
		recs = append(recs, unhex(t, v.RecordHex))
	}
	var r Record
	var sink float64
	var n int
	walk := func() {
		for _, data := range recs {
			if err := r.Reset(data); err != nil {
				panic(err)
			}
			for i := 0; i < r.Fields; i++ {
				_ = r.Type(i)
				n += len(r.String(i))
				x, _ := r.Int(i)
				b, _ := r.Bool(i)
				if b {
					n++
				}
				sink += r.Float(i) + float64(x)
				for j := 0; j < r.Len(i); j++ {
					n += len(r.StringAt(i, j))
					sink += r.NumberAt(i, j)
				}
				r.Strings(i, func(j int, s string) bool { n += len(s); return true })
			}
		}
	}
	walk() // warm-up: the record's offsets grow to the widest record
	if allocs := testing.AllocsPerRun(100, walk); allocs != 0 {
		t.Errorf("Record.Reset and accessors: %v allocations per run", allocs)
	}

	var b ReplyBuilder
	list := []string{"uname -a", "id"}
	build := func() {
		b.Reset()
		b.Draft(0, 1, 0.5)
		b.EvidenceString(0, "wget")
		b.EvidenceNumber(1, 140)
		b.EvidenceNumber(2, 0.25)
		b.EvidenceBool(3, true)
		b.EvidenceStrings(4, list)
		b.Draft(2, 0, 1)
		n += len(b.Bytes())
	}
	build()
	if allocs := testing.AllocsPerRun(100, build); allocs != 0 {
		t.Errorf("ReplyBuilder: %v allocations per reply in steady state", allocs)
	}
	_, _ = sink, n
}

// reencode writes r back from what its accessors return. For a record that Reset accepted it
// must give the input again, except that a bool's byte reads back as 0 or 1.
func reencode(r *Record) []byte {
	out := binary.LittleEndian.AppendUint16([]byte{recordVersion, byte(r.KindIndex())}, uint16(r.Fields))
	for i := 0; i < r.Fields; i++ {
		tag := r.Type(i)
		out = append(out, tag)
		switch tag {
		case TypeBool:
			v, _ := r.Bool(i)
			out = append(out, map[bool]byte{false: 0, true: 1}[v])
		case TypeInt:
			v, _ := r.Int(i)
			out = binary.LittleEndian.AppendUint64(out, uint64(v))
		case TypeFloat:
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(r.Float(i)))
		case TypeString:
			out = appendString(out, r.String(i))
		case TypeStringList, TypePairs:
			out = binary.LittleEndian.AppendUint32(out, uint32(r.Len(i)))
			r.Strings(i, func(_ int, s string) bool { out = appendString(out, s); return true })
		case TypeNumberList:
			out = binary.LittleEndian.AppendUint32(out, uint32(r.Len(i)))
			for j := 0; j < r.Len(i); j++ {
				out = binary.LittleEndian.AppendUint64(out, math.Float64bits(r.NumberAt(i, j)))
			}
		}
	}
	return out
}

func FuzzRecordReset(f *testing.F) {
	for _, v := range loadVectors[recordVector](f, "records.json") {
		f.Add(unhex(f, v.RecordHex))
	}
	f.Add([]byte{1, 0, 1, 0, TypePairs, 1, 0, 0, 0})
	f.Add([]byte{1, 0, 2, 0, TypeBool, 7, TypeNumberList, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := r.Reset(data); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Reset error %v does not wrap ErrMalformed", err)
			}
			return
		}
		want := bytes.Clone(data)
		for i := -1; i <= r.Fields; i++ {
			tag := r.Type(i)
			if tag > TypePairs {
				t.Fatalf("field %d: tag %d", i, tag)
			}
			if tag == TypeBool && want[r.offs[i]+1] > 1 {
				want[r.offs[i]+1] = 1
			}
			_ = r.String(i)
			_, _ = r.Int(i)
			_ = r.Float(i)
			_, _ = r.Bool(i)
			n := r.Len(i)
			if n < 0 || n > len(data) {
				t.Fatalf("field %d: Len %d in %d bytes", i, n, len(data))
			}
			var seen []string
			r.Strings(i, func(j int, s string) bool { seen = append(seen, s); return true })
			for j := -1; j <= len(seen) && j < 300; j++ {
				if got := r.StringAt(i, j); j >= 0 && j < len(seen) && got != seen[j] {
					t.Fatalf("field %d: StringAt(%d) = %q, Strings saw %q", i, j, got, seen[j])
				}
			}
			for j := -1; j <= n && j < 300; j++ {
				_ = r.NumberAt(i, j)
			}
		}
		if got := reencode(&r); !bytes.Equal(got, want) {
			t.Fatalf("accessors read back\n%x\nfrom\n%x", got, want)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	for _, v := range loadVectors[replyVector](f, "replies.json") {
		if v.Fill != nil {
			continue // the 1 MiB cases
		}
		emits := make([]byte, len(v.Limits.Emits))
		for i, n := range v.Limits.Emits {
			emits[i] = byte(n)
		}
		f.Add(unhex(f, v.ReplyHex), emits, uint8(v.Limits.EvidenceKeys))
	}
	f.Fuzz(func(t *testing.T, data, emits []byte, keys uint8) {
		lim := ReplyLimits{Emits: make([]int, len(emits)), EvidenceKeys: int(keys)}
		for i, n := range emits {
			lim.Emits[i] = int(n)
		}
		drafts, err := DecodeReply(data, lim, nil)
		switch {
		case errors.Is(err, ErrGuest):
			var b ReplyBuilder
			b.Reset()
			b.Error(string(data[8:]))
			_, err2 := DecodeReply(b.Bytes(), lim, nil)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("error reply rebuilt decodes to %v, want %v", err2, err)
			}
			return
		case err != nil:
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrGuest", err)
			}
			return
		}
		for _, d := range drafts {
			if d.Rule >= len(lim.Emits) || d.Emit >= lim.Emits[d.Rule] || !(d.Scale >= 0 && d.Scale <= 1) {
				t.Fatalf("accepted draft %+v outside %+v", d, lim)
			}
			for _, e := range d.Evidence {
				if e.Key >= lim.EvidenceKeys {
					t.Fatalf("accepted evidence key %d of %d", e.Key, lim.EvidenceKeys)
				}
			}
		}
		var b ReplyBuilder
		b.Reset()
		buildDrafts(&b, drafts)
		again, err := DecodeReply(b.Bytes(), lim, nil)
		if err != nil || !sameDrafts(again, drafts) {
			t.Fatalf("re-encoded reply decodes to %+v, %v; want %+v", again, err, drafts)
		}
	})
}

// projectionSourceID names the session event of EVENTS.md's Projection section.
const projectionSourceID = "cowrie-77b0"

// The examples in EVENTS.md are events the host accepts, and its Projection section shows the
// record AppendRecord writes.
func TestEventsDoc(t *testing.T) {
	doc, err := os.ReadFile("EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	blocks := strings.Split(string(doc), "```")
	var projEvent []byte
	var projHex string
	for i := 1; i < len(blocks); i += 2 {
		lang, body, _ := strings.Cut(blocks[i], "\n")
		switch lang {
		case "json":
			if !strings.Contains(body, `"source_kind"`) {
				continue
			}
			ev, err := DecodeEvent([]byte(body))
			if err != nil {
				t.Errorf("example %d: %v\n%s", i/2, err, body)
				continue
			}
			if ev.SourceID == projectionSourceID {
				projEvent = []byte(body)
			}
			kinds[ev.SourceKind] = true
		case "hex":
			projHex = strings.Join(strings.Fields(body), "")
		}
	}
	for _, k := range KnownKinds {
		if !kinds[k] {
			t.Errorf("EVENTS.md has no example %s event", k)
		}
	}
	if projEvent == nil || projHex == "" {
		t.Fatal("EVENTS.md: Projection example not found")
	}
	ev, err := DecodeEvent(projEvent)
	if err != nil {
		t.Fatal(err)
	}
	var paths []Path
	for _, s := range []string{"payload.commands[].text", "payload.command_times_ms", "payload.duration_ms", "payload.downloads[].sha256"} {
		paths = append(paths, MustParsePath(s))
	}
	got := AppendRecord(nil, 0, paths, &Expand(ev)[0])
	if hex.EncodeToString(got) != projHex {
		t.Errorf("EVENTS.md Projection record:\n doc %s\nhost %x", projHex, got)
	}
}

// FuzzSkipCommon: Reset's fast path agrees with skipValue wherever it answers, and answers
// for every well-formed value but pairs.
func FuzzSkipCommon(f *testing.F) {
	for _, v := range loadVectors[recordVector](f, "records.json") {
		f.Add(unhex(f, v.RecordHex)[recordHeader:])
	}
	f.Add([]byte{TypeStringList, 2, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 0, 0, 0})
	f.Add([]byte{TypeStringList, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Add([]byte{TypeNumberList, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		for p := 0; p <= len(data); p++ {
			fast := skipCommon(data, p)
			slow, err := skipValue(data, p)
			switch {
			case fast >= 0 && (err != nil || slow != fast):
				t.Fatalf("at %d: skipCommon %d, skipValue %d, %v", p, fast, slow, err)
			case fast < 0 && err == nil && data[p] != TypePairs:
				t.Fatalf("at %d: skipCommon refused a well-formed value of tag %d", p, data[p])
			}
		}
	})
}

// TestCursorsInlineForWasm: the list cursors exist to save a Go wasm guest a call per entry
// (each call and loop iteration costs a termination check there), which holds only while the
// compiler inlines their Next methods for GOARCH=wasm.
func TestCursorsInlineForWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	cmd := exec.Command("go", "build", "-gcflags=-m", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, fn := range []string{"(*StringList).Next", "(*NumberList).Next"} {
		if !strings.Contains(string(out), "can inline "+fn) {
			t.Errorf("%s is no longer inlined for wasm", fn)
		}
	}
}

// listPaths are "[]" paths of every shape the streamed projection must get right: a last
// segment, a nested field, a nested array, and a plain array path for contrast.
var listPaths = []string{
	"payload.commands[].text", "payload.commands[]", "payload.downloads[].url",
	"payload.a[].b.c", "payload.a[].b[].c", "payload.a[]", "payload.usernames",
}

// materialized encodes a record the way AppendRecord did before it streamed "[]" paths:
// Lookup builds the projected []any, appendValue encodes it.
func materialized(paths []Path, ev *Event) []byte {
	buf := []byte{recordVersion, 0}
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(paths)))
	for i := range paths {
		v, ok := paths[i].Lookup(ev)
		if !ok {
			buf = append(buf, TypeNull)
			continue
		}
		buf = appendValue(buf, v)
	}
	return buf
}

func TestAppendRecordStreamsLists(t *testing.T) {
	var paths []Path
	for _, p := range listPaths {
		paths = append(paths, MustParsePath(p))
	}
	for _, payload := range []string{
		`{"commands": [{"text": "uname -a"}, {"text": 3}, {"id": "x"}, "bare", null, {"text": true}]}`,
		`{"commands": [{"text": 1.5}, {"text": false}, {}], "downloads": [{"url": "http://a/b"}, 7]}`,
		`{"a": [{"b": {"c": "x"}}, {"b": [{"c": 1}, {"c": "y"}]}, {"b": {"c": 2}}, 3]}`,
		`{"a": [1, true, "s", null, 2.5e300]}`, `{"a": []}`, `{"a": {}}`, `{"a": null}`, `{"commands": "not a list"}`,
		`{"usernames": ["root", 0, false]}`, `{}`,
	} {
		ev, err := DecodeEvent([]byte(`{"source_kind": "session", "source_id": "s1", "payload": ` + payload + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := AppendRecord(nil, 0, paths, &ev), materialized(paths, &ev); !bytes.Equal(got, want) {
			t.Errorf("payload %s:\n got %x\nwant %x", payload, got, want)
		}
	}
}

// TestAppendRecordAllocs: encoding a record into a buffer with room allocates nothing, "[]"
// paths and numbers in string lists included (they used to cost a []any per path and a
// string per number).
func TestAppendRecordAllocs(t *testing.T) {
	var paths []Path
	for _, p := range []string{"payload.commands[].text", "payload.command_times_ms", "payload.downloads[].url", "payload.mixed", "payload.duration_ms"} {
		paths = append(paths, MustParsePath(p))
	}
	ev, err := DecodeEvent([]byte(`{"source_kind": "session", "source_id": "s1", "payload": {"commands": [{"text": "uname -a"}, {"text": "id"}],
		"command_times_ms": [0, 120.5], "downloads": [{"url": "http://a/b"}], "mixed": ["a", 1.5, true], "duration_ms": 1400}}`))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendRecord(buf[:0], 0, paths, &ev) }); n != 0 {
		t.Errorf("AppendRecord allocates %v times a record", n)
	}
}

// FuzzAppendRecord: for any event, the streamed projection of "[]" paths encodes exactly what
// the materialized one does.
func FuzzAppendRecord(f *testing.F) {
	f.Add(`{"commands": [{"text": "uname -a"}, "x", 3], "a": [{"b": [{"c": 1}]}]}`)
	f.Add(`{"downloads": [{"url": 1e400}], "a": [true, {"b": {"c": null}}]}`)
	var paths []Path
	for _, p := range listPaths {
		paths = append(paths, MustParsePath(p))
	}
	f.Fuzz(func(t *testing.T, payload string) {
		ev, err := DecodeEvent([]byte(`{"source_kind": "session", "source_id": "s1", "payload": ` + payload + `}`))
		if err != nil {
			return
		}
		if got, want := AppendRecord(nil, 0, paths, &ev), materialized(paths, &ev); !bytes.Equal(got, want) {
			t.Fatalf("payload %s:\n got %x\nwant %x", payload, got, want)
		}
	})
}
