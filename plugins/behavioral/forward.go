package main

import (
	"strconv"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

// The forward kind (abi/EVENTS.md, "forward"): the SSH port forwarding (direct-tcpip
// channels) a client asked of the honeypot during one session, summed by the producer.
var (
	forwardKind  = manifest.Source(abi.KindForward)
	fFwdRequests = forwardKind.Field("payload.requests")
	fFwdData     = forwardKind.Field("payload.data_events")
	fFwdBytes    = forwardKind.Field("payload.data_bytes")
	fFwdDistinct = forwardKind.Field("payload.distinct_destinations")
	fFwdPorts    = forwardKind.Field("payload.dst_ports")

	// R0100
	kRequests     = manifest.Evidence("requests")
	kDataEvents   = manifest.Evidence("data_events")
	kDataBytes    = manifest.Evidence("data_bytes")
	kDestinations = manifest.Evidence("distinct_destinations")
	kPorts        = manifest.Evidence("dst_ports")
)

// forwarding is what Tag reads of a forward event before the detectors run.
type forwarding struct {
	requests, dataEvents, dataBytes, distinct int64
	ports                                     []string // distinct destination ports, as evidence strings
}

func (f *forwarding) load(ev *sdk.Event) {
	f.requests, _ = ev.Int(fFwdRequests)
	f.dataEvents, _ = ev.Int(fFwdData)
	f.dataBytes, _ = ev.Int(fFwdBytes)
	f.distinct, _ = ev.Int(fFwdDistinct)
	f.ports = f.ports[:0]
	for _, p := range ev.Numbers(fFwdPorts) {
		if len(f.ports) == maxDistinct {
			break
		}
		f.ports = append(f.ports, strconv.FormatInt(int64(p), 10))
	}
}

// ---- R0100 SSH port forwarding -------------------------------------------------------------

// sshForward fires on a session whose client opened direct-tcpip channels through the
// honeypot: at least min_requests requests make it a relay (the emits entries of T1090,
// proxy), and at least min_data_events payloads sent down them a tunnel (the entries of
// T1572, protocol tunnelling). Entries of other techniques are emitted when either holds.
type sshForward struct {
	minRequests, minData int64
}

func newSSHForward(c *conf) detector {
	return &sshForward{minRequests: c.intMin("min_requests", 1, 1), minData: c.intMin("min_data_events", 1, 1)}
}

func (f *sshForward) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	fw := &s.fwd
	relay, tunnel := fw.requests >= f.minRequests, fw.dataEvents >= f.minData
	if !relay && !tunnel {
		return
	}
	var set uint64
	for e, em := range r.Emits {
		if e >= 64 {
			break
		}
		switch {
		case em.TechniqueID == "T1090" && !relay, em.TechniqueID == "T1572" && !tunnel:
			continue
		}
		set |= 1 << e
	}
	emit(r, out, set, func(d *sdk.Draft) {
		d.Int(kRequests, fw.requests).Int(kDataEvents, fw.dataEvents).Int(kDataBytes, fw.dataBytes).
			Int(kDestinations, fw.distinct)
		if len(fw.ports) > 0 {
			d.Strings(kPorts, fw.ports)
		}
	})
}
