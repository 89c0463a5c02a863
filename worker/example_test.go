package worker_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats.go"
)

// A worker binary for your own orchestrations: register them, connect to
// the hub's NATS and run until SIGTERM. Start as many as you like.
func Example_customWorker() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r := jetflow.NewRegistry()
	r.AddActivity("Greet", func(ctx *jetflow.ActivityContext) (any, error) { return "hello", nil })
	r.AddOrchestrator("Greeting", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var s string
		err := ctx.CallActivity("Greet", nil).Await(&s)
		return s, err
	})
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	store, err := jetstream.Open(ctx, nc, jetstream.Config{}) // hub "jetflow"
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(store, r, worker.Config{})
	if err != nil {
		log.Fatal(err)
	}
	// Until SIGTERM; then finish what runs and hand back the rest.
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
