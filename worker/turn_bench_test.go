package worker_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
)

// BenchmarkTurn is one orchestration turn end to end, on the embedded
// server with fsync on every write and one worker: an event raised to an
// idle instance, its turn (the cached history, the orchestrator resumed,
// the next history chunk and the status written), and the new custom
// status seen by a watch. A fresh instance every 50 turns keeps the
// histories short. The allocations are the whole process's: client,
// worker and server.
func BenchmarkTurn(b *testing.B) {
	e := testengine.New(b, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Loop", func(ctx *jetflow.OrchestrationContext) (any, error) {
			for i := 1; ; i++ {
				if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
					return nil, err
				}
				if err := ctx.SetCustomStatus(i); err != nil {
					return nil, err
				}
			}
		})
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const perInstance = 50
	var (
		id      string
		updates <-chan client.Update
	)
	// await waits for the instance's custom status to be want.
	await := func(want string) {
		for u := range updates {
			if string(u.CustomStatus) == want {
				return
			}
		}
		b.Fatalf("%s: the watch ended before status %s", id, want)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%perInstance == 0 {
			b.StopTimer()
			id = fmt.Sprintf("turn-%d", i)
			updates = watch(b, ctx, e, id)
			if _, err := e.Client.StartOrchestration(ctx, "Loop", client.WithInstanceID(id)); err != nil {
				b.Fatal(err)
			}
			for u := range updates { // its first turn is done: it waits
				if u.RuntimeStatus == jetflow.StatusRunning {
					break
				}
			}
			b.StartTimer()
		}
		if err := e.Client.RaiseEvent(ctx, id, "go", nil); err != nil {
			b.Fatal(err)
		}
		await(strconv.Itoa(i%perInstance + 1))
		i++
	}
}

// watch follows an instance's status until the benchmark ends.
func watch(b *testing.B, ctx context.Context, e *testengine.Engine, id string) <-chan client.Update {
	b.Helper()
	wctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	updates, err := e.Client.WatchStatus(wctx, id, 0)
	if err != nil {
		b.Fatal(err)
	}
	return updates
}
