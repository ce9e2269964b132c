package cowrie

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// FuzzFastDecode holds line.fast to encoding/json: on every line that json.Unmarshal accepts
// and fast reads, both decode the same value. (fast may give a line back to encoding/json at
// any time; that is the fallback, not a difference.)
func FuzzFastDecode(f *testing.F) {
	if sample, err := os.Open("../../testdata/cowrie/sample.json"); err == nil {
		sc := bufio.NewScanner(sample)
		sc.Buffer(nil, MaxLine)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		sample.Close()
	}
	for _, s := range []string{
		`{"eventid":"a","EventID":"b"}`, `{"eventid":"a","eventid":null}`, `{"username":"a","username":null}`,
		`{"input":"caf\u00e9 \ud83d\ude00","data":"\xff"}`, `{"dst_port":"25"}`, `{"dst_port":""}`, `{"dst_port":1e400}`,
		`{"duration":"12.3","kexAlgs":["a",{"b":[1,2.5e-3,true,false,null]}]}`, `{"x":[1 2]}`, `{} `, `{"a":1}x`,
		`{"src_port":-0.5e+2}`, `{"width":01}`, `{"name":"\u0000"}`, `{"ſession":"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want, got line
		err := json.Unmarshal([]byte(s), &want)
		if !got.fast([]byte(s)) || err != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast and encoding/json differ on %q:\nfast %+v\njson %+v", s, got, want)
		}
	})
}

// TestFastReadsCowrie checks that the fast path reads every line of the sample (no fallback).
func TestFastReadsCowrie(t *testing.T) {
	sample, err := os.Open("../../testdata/cowrie/sample.json")
	if err != nil {
		t.Fatal(err)
	}
	defer sample.Close()
	sc := bufio.NewScanner(sample)
	n := 0
	for sc.Scan() {
		n++
		var l line
		if !l.fast(sc.Bytes()) {
			t.Errorf("line %d: fast path gave up: %s", n, sc.Text())
		}
	}
}
