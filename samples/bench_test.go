package samples_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
)

// BenchmarkHelloSequence measures E1_HelloSequence on the embedded server:
// orchestrations per second with 300 instances started at once, the end to
// end latency of one instance alone, and the JetStream writes (stored
// messages) per orchestration. "fsync=always" is the `jetflow dev`
// default; "fsync=interval" is the server's periodic fsync.
//
//	go test ./samples -run '^$' -bench HelloSequence -benchtime 3x
func BenchmarkHelloSequence(b *testing.B) {
	for _, mode := range []struct {
		name     string
		interval time.Duration
	}{{"fsync=always", 0}, {"fsync=interval", 2 * time.Minute}} {
		b.Run(mode.name, func(b *testing.B) {
			e := testengine.New(b, testengine.Options{
				SyncInterval: mode.interval,
				Register:     func(r *jetflow.Registry) error { return samples.Register(r, samples.Options{}) },
			})
			ctx := context.Background()
			latency := benchLatency(b, e) // warms up too
			before, err := e.Store.StoredMessages(ctx)
			if err != nil {
				b.Fatal(err)
			}
			const instances = 300
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				elapsed += runConcurrent(b, e, fmt.Sprintf("b%d-", i), instances)
			}
			b.StopTimer()
			after, err := e.Store.StoredMessages(ctx)
			if err != nil {
				b.Fatal(err)
			}
			total := float64(instances * b.N)
			b.ReportMetric(total/elapsed.Seconds(), "orch/s")
			b.ReportMetric(float64(after-before)/total, "writes/orch")
			b.ReportMetric(latency, "ms/instance")
		})
	}
}

// runConcurrent starts n instances at once and waits for all of them.
func runConcurrent(b *testing.B, e *testengine.Engine, prefix string, n int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	updates, err := e.Store.WatchAllStatuses(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		finished := map[string]bool{}
		for u := range updates {
			if len(u.Status.InstanceID) > len(prefix) && u.Status.InstanceID[:len(prefix)] == prefix && u.Status.Finished() {
				if u.Status.RuntimeStatus != jetflow.StatusCompleted {
					b.Errorf("%s: %s %s", u.Status.InstanceID, u.Status.RuntimeStatus, u.Status.Output)
				}
				finished[u.Status.InstanceID] = true
				if len(finished) == n {
					return
				}
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(fmt.Sprintf("%s%d", prefix, i))); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatal("timed out waiting for the instances")
	}
	return time.Since(start)
}

// benchLatency returns the mean end-to-end time of one instance running
// alone, in milliseconds: from the start call until its Completed status
// is seen.
func benchLatency(b *testing.B, e *testengine.Engine) float64 {
	const runs = 20
	var total time.Duration
	for i := 0; i < runs; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		id := fmt.Sprintf("lat-%d", i)
		ch, err := e.Client.WatchStatus(ctx, id, 0)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(id)); err != nil {
			b.Fatal(err)
		}
		for u := range ch {
			if u.Finished() {
				break
			}
		}
		if i > 0 { // the first run warms up
			total += time.Since(start)
		}
		cancel()
	}
	return float64(total.Microseconds()) / 1000 / (runs - 1)
}
