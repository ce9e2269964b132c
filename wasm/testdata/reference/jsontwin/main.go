// Command jsontwin is the reference lifter decoding its input as JSON with encoding/json,
// the design the ABI replaces. ttp_tag receives the whole event as JSON (the benchmark sends
// it raw) and answers with an ordinary reply.
package main

import (
	"encoding/json"
	"sort"
	"strings"
	"unsafe"

	"github.com/decnet/ttp/abi"
)

var (
	in      []byte
	reply   abi.ReplyBuilder
	gaps    []float64
	desc    []byte
	confRep = []byte("{}")
)

//go:wasmexport ttp_abi_v1
func marker() {}

//go:wasmexport ttp_alloc
func alloc(n int32) int32 {
	in = make([]byte, n)
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

func ptrlen(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&b[0])))<<32 | int64(len(b))
}

//go:wasmexport ttp_describe
func describe() int64 {
	desc, _ = json.Marshal(abi.Manifest{ABI: 1, Name: "jsontwin", Version: "1.0.0", RuleKinds: []string{"lifter:reference_"},
		Kinds: []abi.KindFields{{SourceKind: "session", Fields: []string{"payload.duration_ms"}}}, EvidenceKeys: []string{"score"}})
	return ptrlen(desc)
}

//go:wasmexport ttp_configure
func configure(ptr, n int32) int64 { return ptrlen(confRep) }

type event struct {
	Payload struct {
		Commands      []struct{ Text string } `json:"commands"`
		CommandTimes  []float64               `json:"command_times_ms"`
		DurationMS    float64                 `json:"duration_ms"`
		LoginFailures int                     `json:"login_failures"`
		LoginSuccess  bool                    `json:"login_success"`
		Downloads     []struct{ URL string }  `json:"downloads"`
		ClientVersion string                  `json:"client_version"`
		Usernames     []string                `json:"usernames"`
	} `json:"payload"`
}

//go:wasmexport ttp_tag
func tag(ptr, n int32) int64 {
	reply.Reset()
	var ev event
	if err := json.Unmarshal(in[:n], &ev); err != nil {
		reply.Error(err.Error())
		return ptrlen(reply.Bytes())
	}
	p := &ev.Payload
	score := 0
	if len(p.Commands) > 5 {
		score++
	}
	gaps = gaps[:0]
	for i := 1; i < len(p.CommandTimes); i++ {
		gaps = append(gaps, p.CommandTimes[i]-p.CommandTimes[i-1])
	}
	if len(gaps) > 0 {
		sort.Float64s(gaps)
		if gaps[len(gaps)/2] < 400 {
			score++
		}
	}
	download, chmod := false, false
	for _, c := range p.Commands {
		download = download || strings.Contains(c.Text, "wget") || strings.Contains(c.Text, "curl")
		chmod = chmod || strings.Contains(c.Text, "chmod +x")
	}
	if download {
		score++
	}
	if chmod {
		score++
	}
	if p.DurationMS > 0 && p.DurationMS < 10000 {
		score++
	}
	if p.LoginFailures > 3 && p.LoginSuccess {
		score++
	}
	if strings.Contains(p.ClientVersion, "Go") || strings.Contains(p.ClientVersion, "libssh") {
		score++
	}
	if len(p.Downloads) > 0 && len(p.Usernames) > 0 {
		score++
	}
	if score >= 5 {
		reply.Draft(0, 0, 1)
		reply.EvidenceNumber(0, float64(score))
	}
	return ptrlen(reply.Bytes())
}

func main() {}
