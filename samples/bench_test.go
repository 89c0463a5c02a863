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
	natsjs "github.com/nats-io/nats.go/jetstream"
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
			before, err := e.Storage.StoredMessages(ctx)
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
			after, err := e.Storage.StoredMessages(ctx)
			if err != nil {
				b.Fatal(err)
			}
			total := float64(instances * b.N)
			orchPerSec := total / elapsed.Seconds()
			writesPerOrch := float64(after-before) / total
			ref := referenceWrites(b, e)
			b.ReportMetric(orchPerSec, "orch/s")
			b.ReportMetric(writesPerOrch, "writes/orch")
			b.ReportMetric(latency, "ms/instance")
			b.ReportMetric(ref, "ref-writes/s")
			// The share of the raw JetStream write rate, measured in the same
			// run, that the engine turns into orchestration writes: robust to
			// the shared machine's noise, unlike orch/s alone.
			b.ReportMetric(orchPerSec*writesPerOrch/ref, "of-ceiling")
		})
	}
}

// referenceWrites measures the raw JetStream ceiling on the engine's
// server: plain publishes of 200-byte messages from 64 goroutines spread
// over four streams (the engine writes to five), in writes per second.
func referenceWrites(b *testing.B, e *testengine.Engine) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := natsjs.New(e.Conn)
	if err != nil {
		b.Fatal(err)
	}
	const streams, publishers, perPublisher = 4, 64, 60
	for i := 0; i < streams; i++ {
		name := fmt.Sprintf("REF%d", i)
		if _, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
			b.Fatal(err)
		}
	}
	payload := make([]byte, 200)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subj := fmt.Sprintf("REF%d.x", p%streams)
			for i := 0; i < perPublisher; i++ {
				if _, err := js.Publish(ctx, subj, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(publishers*perPublisher) / time.Since(start).Seconds()
	for i := 0; i < streams; i++ {
		_ = js.DeleteStream(ctx, fmt.Sprintf("REF%d", i))
	}
	return rate
}

// runConcurrent starts n instances at once and waits for all of them.
func runConcurrent(b *testing.B, e *testengine.Engine, prefix string, n int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	updates, err := e.Storage.WatchStatuses(ctx, "", 0)
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
	startMany(ctx, b, e, "E1_HelloSequence", n, func(i int) string { return fmt.Sprintf("%s%d", prefix, i) })
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatal("timed out waiting for the instances")
	}
	return time.Since(start)
}

// startMany starts n instances of an orchestrator, 64 start calls at a
// time, with the ids id(0) … id(n-1).
func startMany(ctx context.Context, b *testing.B, e *testengine.Engine, name string, n int, id func(int) string) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := e.Client.StartOrchestration(ctx, name, client.WithInstanceID(id(i))); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
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
