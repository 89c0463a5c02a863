package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats.go"
)

// The whole flow on an embedded server: a worker runs an orchestrator that
// calls an activity, and the client starts an instance and waits for it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An embedded nats-server storing its streams in a temporary directory.
	dir, err := os.MkdirTemp("", "jetflow-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := embedded.Run(embedded.Config{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.WaitForShutdown()
	defer srv.Shutdown()

	// The hub's streams and buckets.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	store, err := jetstream.Open(ctx, nc, jetstream.Config{})
	if err != nil {
		log.Fatal(err)
	}

	// A worker with one activity and one orchestrator.
	reg := jetflow.NewRegistry()
	err = reg.AddActivity("Greet", func(ctx *jetflow.ActivityContext) (any, error) {
		var name string
		if err := ctx.GetInput(&name); err != nil {
			return nil, err
		}
		return "Hello " + name + "!", nil
	})
	if err != nil {
		log.Fatal(err)
	}
	err = reg.AddOrchestrator("Greeter", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var name, greeting string
		if err := ctx.GetInput(&name); err != nil {
			return nil, err
		}
		err := ctx.CallActivity("Greet", name).Await(&greeting)
		return greeting, err
	})
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(store, reg, worker.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx)

	// Start an instance and wait for its result.
	c := client.New(store)
	id, err := c.StartOrchestration(ctx, "Greeter", client.WithInstanceID("greeting-1"), client.WithInput("Gopher"))
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.InstanceID, st.RuntimeStatus, string(st.Output))
	// Output: greeting-1 Completed "Hello Gopher!"
}
