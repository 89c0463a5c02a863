package sidecar

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/stretchr/testify/require"
)

// BenchmarkHelloSequenceOverGRPC runs E1_HelloSequence (three activities,
// four turns) with its orchestrator and activity in a fake SDK over real
// gRPC, 64 instances at a time, and reports instances per second: the
// commit protocol's cost plus the sidecar's round trips. Compare with
// `go test ./samples -bench HelloSequence` (the same on Go code).
func BenchmarkHelloSequenceOverGRPC(b *testing.B) {
	bb := setup(b, nil, Config{MaxItemsPerStream: 64})
	k := connect(b, bb.c, filters([]string{"E1_HelloSequence"}, []string{"E1_SayHello"}))
	k.serve(map[string]orchFunc{"E1_HelloSequence": sequence("E1_SayHello", "Tokyo", "Seattle", "London")},
		map[string]actFunc{"E1_SayHello": hello})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range b.N {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("bench-%d-%d", b.N, i)
			_, err := bb.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "E1_HelloSequence", InstanceId: id})
			require.NoError(b, err)
			st, err := bb.e.Client.WaitForCompletion(ctx, id)
			require.NoError(b, err)
			require.Equal(b, jetflow.StatusCompleted, st.RuntimeStatus)
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "orch/s")
}
