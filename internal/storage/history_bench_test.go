package storage_test

import (
	"fmt"
	"testing"
)

// BenchmarkLoadHistory reads the history of an E1_HelloSequence that has
// finished (four chunks) from an embedded server: what a turn whose
// instance is not in the sticky cache pays before it replays.
func BenchmarkLoadHistory(b *testing.B) {
	s := setup(b)
	ctx := b.Context()
	const id = "bench-load"
	var prev uint64
	for c := 1; c <= 4; c++ {
		rev, err := s.store.AppendChunk(ctx, id, uint32(c), prev, events(c, 3), nil)
		if err != nil {
			b.Fatal(err)
		}
		prev = rev
	}
	b.ReportAllocs()
	for b.Loop() {
		chunks, err := s.store.LoadHistory(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if len(chunks) != 4 {
			b.Fatal(fmt.Sprintf("%d chunks, want 4", len(chunks)))
		}
	}
}
