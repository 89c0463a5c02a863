package jetflow_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
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

// Execute is the seam between orchestrator code and the worker: feed it the
// history and the new messages, and append what it returns. This loop plays
// the worker's part, running activities in process.
func ExampleExecutor_Execute() {
	r := jetflow.NewRegistry()
	_ = r.AddActivity("SayHello", func(ctx *jetflow.ActivityContext) (any, error) {
		var name string
		err := ctx.GetInput(&name)
		return "Hello " + name + "!", err
	})
	_ = r.AddOrchestrator("Hello", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var s string
		err := ctx.CallActivity("SayHello", "world").Await(&s)
		return s, err
	})
	x := jetflow.NewExecutor(r, nil)

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var past []history.Event
	msgs := []history.Event{{Type: history.ExecutionStarted, Name: "Hello", Time: now}}
	for {
		turn := append([]history.Event{{Type: history.OrchestratorStarted, Time: now}}, msgs...)
		res := x.Execute("hello-1", past, turn)
		past = append(append(past, turn...), res.Events...)
		msgs = nil
		for _, e := range res.Events {
			fmt.Println(e.Describe())
			if e.Type == history.TaskScheduled {
				out, failure := r.RunActivity(context.Background(), e.Name, "hello-1", e.ID, e.Input)
				done := history.Event{Type: history.TaskCompleted, TaskID: e.ID, Result: out, Time: now}
				if failure != nil {
					done = history.Event{Type: history.TaskFailed, TaskID: e.ID, Failure: failure, Time: now}
				}
				msgs = append(msgs, done)
			}
			if e.Type == history.ExecutionCompleted {
				fmt.Println("output:", string(e.Result))
			}
		}
		if res.Done {
			break
		}
		now = now.Add(time.Second)
	}
	// Output:
	// TaskScheduled #0 "SayHello"
	// ExecutionCompleted
	// output: "Hello world!"
}
