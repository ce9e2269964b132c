// Command fields declares the reference lifter's manifest and fields but tests nothing: what
// the sdk costs a call (entry, record index, reply) for the same record, without the
// lifter's own code.
package main

import (
	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("reference", "1.0.0", "lifter:reference_")
	session  = manifest.Source(abi.KindSession)
	_        = session.Field("payload.commands[].text")
	_        = session.Field("payload.command_times_ms")
	_        = session.Field("payload.duration_ms")
	_        = session.Field("payload.login_failures")
	_        = session.Field("payload.login_success")
	_        = session.Field("payload.downloads[].url")
	_        = session.Field("payload.client_version")
	_        = session.Field("payload.usernames")
	_        = manifest.Evidence("score")
)

type lifter struct{}

func (lifter) Manifest() *sdk.Manifest               { return manifest }
func (lifter) Configure(r *sdk.Rule[struct{}]) error { return nil }

func (lifter) Tag(*sdk.Event, []*sdk.Rule[struct{}], *sdk.Drafts) {}

func init() { sdk.Register[struct{}](lifter{}) }

func main() {}
