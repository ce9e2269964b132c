// Command bare is a lifter that reads nothing and returns nothing: the cost of a call.
package main

import (
	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/sdk"
)

var (
	manifest = sdk.NewManifest("bare", "1.0.0", "lifter:reference_")
	_        = manifest.Source(abi.KindSession)
)

type lifter struct{}

func (lifter) Manifest() *sdk.Manifest                            { return manifest }
func (lifter) Configure(*sdk.Rule[struct{}]) error                { return nil }
func (lifter) Tag(*sdk.Event, []*sdk.Rule[struct{}], *sdk.Drafts) {}
func init()                                                       { sdk.Register[struct{}](lifter{}) }
func main()                                                       {}
