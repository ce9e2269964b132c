package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/decnet/ttp/abi"
	"github.com/decnet/ttp/store"
)

// The daemon's outbox for one upstream event: insert, publish what is unpublished, mark. The
// redelivery of the same event inserts nothing, and after the mark there is nothing to publish.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "ttp-store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "ttp.db")+"?sync=always")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	observed := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tag := abi.Tag{
		RuleID: "R0001", RuleVersion: "0123456789abcdef", TechniqueID: "T1082", Tactic: "discovery",
		Confidence: 0.8, Evidence: map[string]any{"command_text": "uname -a"},
		SourceKind: "command", SourceID: "s-1#0", Producer: "engine", CreatedAt: observed,
	}
	tag.TagUUID = abi.TagUUID(observed, tag.RuleID, tag.RuleVersion, tag.SourceKind, tag.SourceID,
		tag.TechniqueID, tag.SubTechniqueID, tag.Tactic)

	// The command's tag belongs to its upstream session's envelope.
	inserted, err := s.InsertTags(ctx, "session", "s-1", []abi.Tag{tag})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first delivery inserted:", len(inserted))

	again, _ := s.InsertTags(ctx, "session", "s-1", []abi.Tag{tag})
	fmt.Println("redelivery inserted:", len(again))

	pending, _ := s.Unpublished(ctx, "session", "s-1")
	fmt.Println("to publish:", pending[0].TagUUID, pending[0].TechniqueID)
	// ... publish, then:
	if err := s.MarkPublished(ctx, []string{pending[0].TagUUID}); err != nil {
		log.Fatal(err)
	}
	pending, _ = s.Unpublished(ctx, "session", "s-1")
	fmt.Println("left to publish:", len(pending))
	// Output:
	// first delivery inserted: 1
	// redelivery inserted: 0
	// to publish: 019ca945-0a00-881d-be2a-1ed5d2cb3b9e T1082
	// left to publish: 0
}
