package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Wire format of ABI v1 (abi/ABI.md is the normative text). All integers are little-endian.
//
// Why binary and not JSON: a guest decoding the event with encoding/json costs more than twenty
// times one reading this record (RATIONALE.md, "The ABI: a record read by index, not JSON",
// measured by wasm/reference_test.go). The guest therefore parses nothing: the host projects exactly the fields a plugin declared into a
// record the guest reads by index.

// ABIVersion is the major version of the plugin ABI this package speaks; a module marks it by
// exporting ttp_abi_v1.
const ABIVersion = 1

// Limits every host enforces.
const (
	MaxRecord         = 1 << 20 // largest record the host writes (beyond it the call is not made)
	MaxReply          = 1 << 20 // output cap: a larger reply is a failure of the call
	MaxFieldsPerKind  = 255
	MaxEvidenceKeys   = 255
	MaxRulesPerPlugin = 65535
)

// Type bytes of record fields and evidence values: the byte before each value that says what
// it is.
const (
	TypeNull       byte = 0
	TypeBool       byte = 1
	TypeInt        byte = 2 // int64
	TypeFloat      byte = 3 // float64
	TypeString     byte = 4 // u32 length + UTF-8 bytes
	TypeStringList byte = 5 // u32 count + count x (u32 length + bytes)
	TypeNumberList byte = 6 // u32 count + count x float64 (NaN where an element lacks the value)
	TypePairs      byte = 7 // u32 count + count x (key string, value string): an object of scalars
)

// Record header: version, source kind index (into the manifest's kinds), field count.
const (
	recordVersion = 1
	recordHeader  = 4
	replyVersion  = 1
	replyHeader   = 4
)

// Reply status byte.
const (
	replyOK    = 0
	replyError = 1
)

// ErrMalformed is wrapped by every decoder for input that does not follow the layout.
var ErrMalformed = errors.New("abi: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ---- Record: host encodes, guest reads ----

// AppendRecord appends to buf the record of ev for one projection: the values of paths, in
// order, each with its type tag. kindIndex is the position of ev's kind in the manifest.
// Scalar and "[]" fields allocate nothing beyond growing buf (TestAppendRecordAllocs); ".*"
// objects may, to sort their keys.
func AppendRecord(buf []byte, kindIndex int, paths []Path, ev *Event) []byte {
	buf = append(buf, recordVersion, byte(kindIndex))
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(paths)))
	for i := range paths {
		if paths[i].list {
			// Streamed from the array: Lookup would build a []any per path and event.
			arr, rest, ok := paths[i].lookupEach(ev)
			if !ok {
				buf = append(buf, TypeNull)
				continue
			}
			buf = appendList(buf, arr, rest)
			continue
		}
		v, ok := paths[i].Lookup(ev)
		if !ok {
			buf = append(buf, TypeNull)
			continue
		}
		buf = appendValue(buf, v)
	}
	return buf
}

// appendValue encodes one decoded JSON value with its type tag.
func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, TypeNull)
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		return append(buf, TypeBool, b)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			buf = append(buf, TypeInt)
			return binary.LittleEndian.AppendUint64(buf, uint64(int64(x)))
		}
		buf = append(buf, TypeFloat)
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
	case int64:
		buf = append(buf, TypeInt)
		return binary.LittleEndian.AppendUint64(buf, uint64(x))
	case int:
		buf = append(buf, TypeInt)
		return binary.LittleEndian.AppendUint64(buf, uint64(int64(x)))
	case string:
		buf = append(buf, TypeString)
		return appendString(buf, x)
	case []string:
		buf = append(buf, TypeStringList)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(x)))
		for _, s := range x {
			buf = appendString(buf, s)
		}
		return buf
	case []float64:
		buf = append(buf, TypeNumberList)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(x)))
		for _, f := range x {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
		}
		return buf
	case []any:
		return appendList(buf, x, nil)
	case map[string]any:
		buf = append(buf, TypePairs)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(x)))
		for _, k := range sortedKeys(x) {
			buf = appendString(buf, k)
			buf = appendScalarString(buf, x[k])
		}
		return buf
	}
	return append(buf, TypeNull)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion sort: objects of scalars are small, and this keeps the order deterministic
	// without importing sort into every guest.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// appendList encodes an array, each element projected through rest (a "[]" path's segments
// after the array; none for a plain array): a string list if any projected element is a
// string, else a number list. It writes the number list and starts over as a string list at
// the first string, so each element is projected once in the usual cases: all numbers, or a
// string first.
func appendList(buf []byte, arr []any, rest []pathSeg) []byte {
	start := len(buf)
	buf = append(buf, TypeNumberList)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(arr)))
	for _, el := range arr {
		f := math.NaN()
		switch n := project(el, rest).(type) {
		case string:
			return appendStringList(buf[:start], arr, rest)
		case float64:
			f = n
		case bool:
			if n {
				f = 1
			} else {
				f = 0
			}
		}
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
	}
	return buf
}

// appendStringList is appendList's string list: numbers in shortest form, booleans as
// true/false, other elements as "".
func appendStringList(buf []byte, arr []any, rest []pathSeg) []byte {
	buf = append(buf, TypeStringList)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(arr)))
	for _, el := range arr {
		buf = appendScalarString(buf, project(el, rest))
	}
	return buf
}

// appendScalarString writes a scalar as a string entry: strings as they are, numbers in Go's
// shortest form, booleans as true/false, anything else as "".
func appendScalarString(buf []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(buf, x)
	case float64:
		at := len(buf)
		buf = binary.LittleEndian.AppendUint32(buf, 0)
		buf = strconv.AppendFloat(buf, x, 'g', -1, 64)
		binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
		return buf
	case bool:
		return appendString(buf, strconv.FormatBool(x))
	}
	return appendString(buf, "")
}

func appendString(buf []byte, s string) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// Record is a decoded view of a record: field i is read by index without copying. It is
// valid only while the bytes it was read from are; a guest reuses one Record across calls.
type Record struct {
	data   []byte
	kind   int
	offs   []uint32 // offset of each field's tag byte
	Fields int
}

// Reset parses the record header and field offsets of data into r, reusing r's memory: no
// allocation once r has seen a record with as many fields.
func (r *Record) Reset(data []byte) error {
	if len(data) < recordHeader {
		return malformed("record: %d bytes, shorter than its header", len(data))
	}
	if data[0] != recordVersion {
		return malformed("record: version %d", data[0])
	}
	n := int(binary.LittleEndian.Uint16(data[2:4]))
	r.data, r.kind, r.Fields = data, int(data[1]), n
	if cap(r.offs) < n {
		r.offs = make([]uint32, n)
	}
	r.offs = r.offs[:n]
	p := recordHeader
	for i := 0; i < n; i++ {
		r.offs[i] = uint32(p)
		if end := skipCommon(data, p); end >= 0 {
			p = end
			continue
		}
		end, err := skipValue(data, p) // pairs, and the faults, which it names
		if err != nil {
			r.Fields = 0 // a failed Reset leaves an empty record, never a half-read one
			return fmt.Errorf("record field %d: %w", i, err)
		}
		p = end
	}
	if p != len(data) {
		r.Fields = 0
		return malformed("record: %d trailing bytes", len(data)-p)
	}
	return nil
}

// skipCommon returns the offset just past a well-formed value of every type but pairs, and -1
// for anything else. Reset tries it first: it calls nothing and loops only over the entries
// of a string list, and a Go wasm guest pays a termination check (an exit from the compiled
// code into the host's Go, measured at about 37 ns) at nearly every taken branch.
func skipCommon(data []byte, p int) int {
	if p >= len(data) {
		return -1
	}
	rest := uint64(len(data) - p - 1)
	switch data[p] {
	case TypeNull:
		return p + 1
	case TypeBool:
		if rest >= 1 {
			return p + 2
		}
	case TypeInt, TypeFloat:
		if rest >= 8 {
			return p + 9
		}
	case TypeString:
		if rest >= 4 {
			if l := uint64(binary.LittleEndian.Uint32(data[p+1:])); l <= rest-4 {
				return p + 5 + int(l)
			}
		}
	case TypeNumberList:
		if rest >= 4 {
			if l := 8 * uint64(binary.LittleEndian.Uint32(data[p+1:])); l <= rest-4 {
				return p + 5 + int(l)
			}
		}
	case TypeStringList:
		if rest < 4 {
			return -1
		}
		q, m := p+5, binary.LittleEndian.Uint32(data[p+1:])
		for ; m > 0 && len(data)-q >= 4; m-- {
			l := uint64(binary.LittleEndian.Uint32(data[q:]))
			if l > uint64(len(data)-q-4) {
				return -1
			}
			q += 4 + int(l)
		}
		if m == 0 {
			return q
		}
	}
	return -1
}

// skipValue returns the offset just past the value whose tag is at p, or an error naming
// what is wrong with it. Reset calls it for what skipCommon does not take (pairs and
// malformed values); the reply decoder for every value. Every bound is checked in uint64, so
// no length can overflow.
func skipValue(data []byte, p int) (int, error) {
	if p >= len(data) {
		return 0, malformed("truncated before a type tag")
	}
	tag := data[p]
	p++
	rest := uint64(len(data) - p)
	switch tag {
	case TypeNull:
		return p, nil
	case TypeBool:
		if rest < 1 {
			return 0, malformed("tag %d: truncated", tag)
		}
		return p + 1, nil
	case TypeInt, TypeFloat:
		if rest < 8 {
			return 0, malformed("tag %d: truncated", tag)
		}
		return p + 8, nil
	case TypeString:
		if rest < 4 {
			return 0, malformed("tag %d: truncated length", tag)
		}
		n := uint64(binary.LittleEndian.Uint32(data[p:]))
		if n > rest-4 {
			return 0, malformed("tag %d: truncated", tag)
		}
		return p + 4 + int(n), nil
	case TypeStringList, TypePairs:
		if rest < 4 {
			return 0, malformed("tag %d: truncated length", tag)
		}
		n := uint64(binary.LittleEndian.Uint32(data[p:]))
		p += 4
		if tag == TypePairs {
			n *= 2
		}
		if n > uint64(len(data)) {
			return 0, malformed("tag %d: %d entries in %d bytes", tag, n, len(data))
		}
		for ; n > 0; n-- {
			if len(data)-p < 4 {
				return 0, malformed("tag %d: truncated length", tag)
			}
			l := uint64(binary.LittleEndian.Uint32(data[p:]))
			p += 4
			if l > uint64(len(data)-p) {
				return 0, malformed("tag %d: truncated", tag)
			}
			p += int(l)
		}
		return p, nil
	case TypeNumberList:
		if rest < 4 {
			return 0, malformed("tag %d: truncated length", tag)
		}
		n := uint64(binary.LittleEndian.Uint32(data[p:]))
		if n > uint64(len(data)/8) {
			return 0, malformed("number list of %d in %d bytes", n, len(data))
		}
		if 8*n > rest-4 {
			return 0, malformed("tag %d: truncated", tag)
		}
		return p + 4 + int(8*n), nil
	}
	return 0, malformed("unknown type tag %d", tag)
}

// KindIndex is the position, in the manifest's kinds, of the event's source kind.
func (r *Record) KindIndex() int { return r.kind }

// Type returns the type tag of field i (TypeNull for an index out of range).
func (r *Record) Type(i int) byte {
	if i < 0 || i >= r.Fields {
		return TypeNull
	}
	return r.data[r.offs[i]]
}

// String returns field i as a string ("" unless it is a string). The string aliases the
// record's bytes: copy it to keep it past the call.
func (r *Record) String(i int) string {
	if r.Type(i) != TypeString {
		return ""
	}
	p := int(r.offs[i]) + 1
	n := int(binary.LittleEndian.Uint32(r.data[p:]))
	return bytesString(r.data[p+4 : p+4+n])
}

// Float returns field i as a float64 (int and float fields; NaN otherwise).
func (r *Record) Float(i int) float64 {
	switch r.Type(i) {
	case TypeFloat:
		return math.Float64frombits(binary.LittleEndian.Uint64(r.data[r.offs[i]+1:]))
	case TypeInt:
		return float64(int64(binary.LittleEndian.Uint64(r.data[r.offs[i]+1:])))
	}
	return math.NaN()
}

// Int returns field i as an int64 (floats truncated) and whether it is a number.
func (r *Record) Int(i int) (int64, bool) {
	switch r.Type(i) {
	case TypeInt:
		return int64(binary.LittleEndian.Uint64(r.data[r.offs[i]+1:])), true
	case TypeFloat:
		f := math.Float64frombits(binary.LittleEndian.Uint64(r.data[r.offs[i]+1:]))
		if f != f || math.IsInf(f, 0) {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// Bool returns field i as a bool and whether it is one.
func (r *Record) Bool(i int) (v, ok bool) {
	if r.Type(i) != TypeBool {
		return false, false
	}
	return r.data[r.offs[i]+1] != 0, true
}

// Len returns the number of entries of a list or pairs field (0 otherwise).
func (r *Record) Len(i int) int {
	switch r.Type(i) {
	case TypeStringList, TypeNumberList, TypePairs:
		return int(binary.LittleEndian.Uint32(r.data[r.offs[i]+1:]))
	}
	return 0
}

// Strings calls f with each entry of a string list field, in order, without allocating; f
// returns false to stop. For a pairs field f sees keys and values alternately.
func (r *Record) Strings(i int, f func(j int, s string) bool) {
	l := r.StringList(i)
	for j := 0; ; j++ {
		s, ok := l.Next()
		if !ok || !f(j, s) {
			return
		}
	}
}

// StringList is a cursor over the entries of a string list field (or, for a pairs field,
// its keys and values alternately). It exists beside Strings because a cursor needs no
// callback: a guest's loop over it compiles to straight code, where a callback costs an
// indirect call per entry, which a Go wasm guest pays dearly for. Next is kept small enough
// to inline.
type StringList struct {
	rest []byte // from the next entry's length to the field's end or beyond
	n    int
}

// StringList returns a cursor over field i, empty unless the field is a string list or
// pairs.
func (r *Record) StringList(i int) StringList {
	t := r.Type(i)
	if t != TypeStringList && t != TypePairs {
		return StringList{}
	}
	p := int(r.offs[i]) + 1
	n := int(binary.LittleEndian.Uint32(r.data[p:]))
	if t == TypePairs {
		n *= 2
	}
	return StringList{rest: r.data[p+4:], n: n}
}

// Len returns the number of entries not yet read.
func (l *StringList) Len() int { return l.n }

// Next returns the next entry and true, or "" and false at the end. The string aliases the
// record's bytes.
func (l *StringList) Next() (s string, ok bool) {
	if l.n > 0 {
		n := int(binary.LittleEndian.Uint32(l.rest))
		b := l.rest[4 : 4+n]
		s, ok = unsafe.String(unsafe.SliceData(b), n), true
		l.rest = l.rest[4+n:]
		l.n--
	}
	return s, ok
}

// NumberList is a cursor over the entries of a number list field, for the same reason as
// StringList.
type NumberList struct {
	rest []byte // the entries not yet read
}

// NumberList returns a cursor over field i, empty unless the field is a number list.
func (r *Record) NumberList(i int) NumberList {
	if r.Type(i) != TypeNumberList {
		return NumberList{}
	}
	p := int(r.offs[i]) + 1
	return NumberList{rest: r.data[p+4 : p+4+8*int(binary.LittleEndian.Uint32(r.data[p:]))]}
}

// Len returns the number of entries not yet read.
func (l *NumberList) Len() int { return len(l.rest) / 8 }

// Next returns the next entry (NaN where the element was not a number) and true, or 0 and
// false at the end.
func (l *NumberList) Next() (f float64, ok bool) {
	// Spelled out byte by byte: binary.LittleEndian.Uint64 costs this past the inliner's
	// budget when compiled for wasm, and a call per entry is what the cursor avoids.
	if r := l.rest; len(r) >= 8 {
		f = math.Float64frombits(uint64(r[0]) | uint64(r[1])<<8 | uint64(r[2])<<16 | uint64(r[3])<<24 | uint64(r[4])<<32 | uint64(r[5])<<40 | uint64(r[6])<<48 | uint64(r[7])<<56)
		l.rest, ok = r[8:], true
	}
	return
}

// StringAt returns entry j of a string list field ("" when out of range). It walks the list;
// use Strings to visit every entry.
func (r *Record) StringAt(i, j int) string {
	l := r.StringList(i)
	if j < 0 || j >= l.Len() {
		return ""
	}
	for ; j > 0; j-- {
		l.Next()
	}
	s, _ := l.Next()
	return s
}

// NumberAt returns entry j of a number list field (NaN when out of range or absent).
func (r *Record) NumberAt(i, j int) float64 {
	if r.Type(i) != TypeNumberList || j < 0 || j >= r.Len(i) {
		return math.NaN()
	}
	p := int(r.offs[i]) + 5 + 8*j
	return math.Float64frombits(binary.LittleEndian.Uint64(r.data[p:]))
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// ---- Reply: guest encodes, host decodes ----

// ReplyBuilder builds a reply in a reusable buffer; a guest keeps one and calls Reset per call.
type ReplyBuilder struct {
	buf    []byte
	n      uint32
	evPos  int // offset of the current draft's evidence count byte
	failed bool
}

// Reset starts a new, empty OK reply.
func (b *ReplyBuilder) Reset() {
	b.buf = append(b.buf[:0], replyVersion, replyOK, 0, 0, 0, 0, 0, 0)
	b.n, b.evPos, b.failed = 0, -1, false
}

// Draft starts a draft: the rule's index in the configured rules, the emits entry, and the
// scale in [0,1] applied to the entry's confidence.
func (b *ReplyBuilder) Draft(rule, emit int, scale float64) {
	b.buf = binary.LittleEndian.AppendUint16(b.buf, uint16(rule))
	b.buf = append(b.buf, byte(emit), 0)
	b.evPos = len(b.buf) - 1
	b.buf = binary.LittleEndian.AppendUint64(b.buf, math.Float64bits(scale))
	b.n++
	binary.LittleEndian.PutUint32(b.buf[4:8], b.n)
}

func (b *ReplyBuilder) evidence(key int) {
	if b.evPos < 0 {
		return
	}
	b.buf[b.evPos]++
	b.buf = append(b.buf, byte(key))
}

// EvidenceString adds evidence key (index into the manifest's evidence keys) = s to the
// current draft.
func (b *ReplyBuilder) EvidenceString(key int, s string) {
	b.evidence(key)
	b.buf = append(b.buf, TypeString)
	b.buf = appendString(b.buf, s)
}

// EvidenceNumber adds a numeric evidence value to the current draft.
func (b *ReplyBuilder) EvidenceNumber(key int, f float64) {
	b.evidence(key)
	b.buf = appendValue(b.buf, f)
}

// EvidenceBool adds a boolean evidence value to the current draft.
func (b *ReplyBuilder) EvidenceBool(key int, v bool) {
	b.evidence(key)
	b.buf = appendValue(b.buf, v)
}

// EvidenceStrings adds a string list evidence value to the current draft.
func (b *ReplyBuilder) EvidenceStrings(key int, list []string) {
	b.evidence(key)
	b.buf = appendValue(b.buf, list)
}

// Error turns the reply into an error reply carrying msg.
func (b *ReplyBuilder) Error(msg string) {
	b.buf = append(b.buf[:0], replyVersion, replyError, 0, 0)
	b.buf = appendString(b.buf, msg)
	b.failed = true
}

// Bytes returns the encoded reply.
func (b *ReplyBuilder) Bytes() []byte { return b.buf }

// ReplyDraft is one decoded draft of a reply, before the host resolves its indexes.
type ReplyDraft struct {
	Rule     int
	Emit     int
	Scale    float64
	Evidence []ReplyEvidence
}

// ReplyEvidence is one evidence entry: the key's index and its decoded value (string,
// float64, int64, bool, []string, []float64).
type ReplyEvidence struct {
	Key   int
	Value any
}

// ReplyLimits are what the host configured the plugin with; a reply that names anything
// outside them is undecodable.
type ReplyLimits struct {
	Emits        []int // number of emits entries of each configured rule
	EvidenceKeys int
}

// ErrGuest is wrapped by DecodeReply for an error reply: the plugin failed the call with a
// message of its own.
var ErrGuest = errors.New("plugin error")

// DecodeReply decodes and validates a reply, appending its drafts to out. A rule or emit or
// evidence key index out of range, a scale outside [0,1], unknown tags or trailing bytes make
// the reply undecodable (ErrMalformed); an error reply returns ErrGuest with the message.
func DecodeReply(data []byte, lim ReplyLimits, out []ReplyDraft) ([]ReplyDraft, error) {
	if len(data) > MaxReply {
		return out, malformed("reply: %d bytes over the %d-byte cap", len(data), MaxReply)
	}
	if len(data) < replyHeader {
		return out, malformed("reply: %d bytes, shorter than its header", len(data))
	}
	if data[0] != replyVersion {
		return out, malformed("reply: version %d", data[0])
	}
	switch data[1] {
	case replyError:
		if len(data) < 8 {
			return out, malformed("error reply: truncated")
		}
		n := int(binary.LittleEndian.Uint32(data[4:8]))
		if 8+n != len(data) {
			return out, malformed("error reply: message length %d in %d bytes", n, len(data)-8)
		}
		return out, fmt.Errorf("%w: %s", ErrGuest, data[8:])
	case replyOK:
	default:
		return out, malformed("reply: status %d", data[1])
	}
	if len(data) < 8 {
		return out, malformed("reply: truncated draft count")
	}
	n := int(binary.LittleEndian.Uint32(data[4:8]))
	p := 8
	if n > (len(data)-p)/12 {
		return out, malformed("reply: %d drafts in %d bytes", n, len(data))
	}
	for i := 0; i < n; i++ {
		if p+12 > len(data) {
			return out, malformed("draft %d: truncated", i)
		}
		d := ReplyDraft{
			Rule:  int(binary.LittleEndian.Uint16(data[p:])),
			Emit:  int(data[p+2]),
			Scale: math.Float64frombits(binary.LittleEndian.Uint64(data[p+4:])),
		}
		ne := int(data[p+3])
		p += 12
		if d.Rule >= len(lim.Emits) {
			return out, malformed("draft %d: rule index %d, plugin was configured with %d rules", i, d.Rule, len(lim.Emits))
		}
		if d.Emit >= lim.Emits[d.Rule] {
			return out, malformed("draft %d: emits index %d, rule has %d", i, d.Emit, lim.Emits[d.Rule])
		}
		if !(d.Scale >= 0 && d.Scale <= 1) {
			return out, malformed("draft %d: scale %v outside [0,1]", i, d.Scale)
		}
		for j := 0; j < ne; j++ {
			if p >= len(data) {
				return out, malformed("draft %d evidence %d: truncated", i, j)
			}
			key := int(data[p])
			if key >= lim.EvidenceKeys {
				return out, malformed("draft %d: evidence key index %d, plugin declared %d", i, key, lim.EvidenceKeys)
			}
			end, err := skipValue(data, p+1)
			if err != nil {
				return out, fmt.Errorf("draft %d evidence %d: %w", i, j, err)
			}
			v := decodeValue(data[p+1 : end])
			d.Evidence = append(d.Evidence, ReplyEvidence{Key: key, Value: v})
			p = end
		}
		out = append(out, d)
	}
	if p != len(data) {
		return out, malformed("reply: %d trailing bytes", len(data)-p)
	}
	return out, nil
}

// decodeValue decodes one tagged value already checked by skipValue.
func decodeValue(b []byte) any {
	switch b[0] {
	case TypeBool:
		return b[1] != 0
	case TypeInt:
		return int64(binary.LittleEndian.Uint64(b[1:]))
	case TypeFloat:
		return math.Float64frombits(binary.LittleEndian.Uint64(b[1:]))
	case TypeString:
		return string(b[5:])
	case TypeStringList, TypePairs:
		n := int(binary.LittleEndian.Uint32(b[1:]))
		if b[0] == TypePairs {
			n *= 2
		}
		out := make([]string, 0, n)
		p := 5
		for i := 0; i < n; i++ {
			l := int(binary.LittleEndian.Uint32(b[p:]))
			out = append(out, string(b[p+4:p+4+l]))
			p += 4 + l
		}
		return out
	case TypeNumberList:
		n := int(binary.LittleEndian.Uint32(b[1:]))
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[5+8*i:]))
		}
		return out
	}
	return nil
}
