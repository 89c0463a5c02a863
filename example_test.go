package jetflow_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/jetflow/jetflow"
)

// Register activities and orchestrators by name before starting a worker.
func ExampleRegistry() {
	r := jetflow.NewRegistry()
	if err := r.AddActivity("SayHello", func(ctx *jetflow.ActivityContext) (any, error) {
		var name string
		if err := ctx.GetInput(&name); err != nil {
			return nil, err
		}
		return "Hello " + name + "!", nil
	}); err != nil {
		panic(err)
	}
	if err := r.AddOrchestrator("HelloSequence", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			var s string
			if err := ctx.CallActivity("SayHello", city).Await(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}); err != nil {
		panic(err)
	}
	fmt.Println(r.OrchestratorNames(), r.ActivityNames())
	// Output: [HelloSequence] [SayHello]
}

// Fan out to parallel activity calls and gather their results.
func ExampleOrchestrationContext_WhenAll() {
	fanOut := func(ctx *jetflow.OrchestrationContext) (any, error) {
		var files []string
		if err := ctx.GetInput(&files); err != nil {
			return nil, err
		}
		tasks := make([]jetflow.Task, len(files))
		for i, f := range files {
			tasks[i] = ctx.CallActivity("CountWords", f)
		}
		var counts []int
		if err := ctx.WhenAll(tasks...).Await(&counts); err != nil {
			return nil, err
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		return total, nil
	}
	_ = jetflow.NewRegistry().AddOrchestrator("CountAll", fanOut)
}

// Wait for a human's approval, escalating after a deadline.
func ExampleOrchestrationContext_WaitForExternalEvent() {
	approval := func(ctx *jetflow.OrchestrationContext) (any, error) {
		_ = ctx.SetCustomStatus("waiting for approval")
		var approved bool
		err := ctx.WaitForExternalEvent("Approval", jetflow.WithTimeout(72*time.Hour)).Await(&approved)
		if errors.Is(err, jetflow.ErrTimeout) {
			ctx.Logger().Info("no answer; escalating")
			return nil, ctx.CallActivity("Escalate", ctx.InstanceID()).Await(nil)
		}
		if err != nil {
			return nil, err
		}
		return approved, nil
	}
	_ = jetflow.NewRegistry().AddOrchestrator("Approval", approval)
}
