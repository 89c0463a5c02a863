// Package jetflow is a durable orchestration engine in the style of Durable
// Functions, running on NATS JetStream.
//
// This root package is what application code uses to write orchestrations
// and activities: the [Registry], the orchestration and activity contexts,
// tasks and their options, [Status], and the errors and failure types to
// branch on. It does no I/O: storage, queues and timers live in the sibling
// packages (jetstream, dispatcher, worker), and the worker runs what is
// registered here through its executor.
//
// # Authoring
//
// An [Activity] is an ordinary function that does the real work (calls
// services, writes files). It runs at least once per call, so it should be
// idempotent. An [Orchestrator] coordinates activities, timers, external
// events and sub-orchestrations; its code is replayed from history every time
// it makes progress, so it must be deterministic (see below).
//
// Register both in a [Registry] before starting a worker:
//
//	r := jetflow.NewRegistry()
//	_ = r.AddActivity("SayHello", func(ctx *jetflow.ActivityContext) (any, error) {
//		var name string
//		if err := ctx.GetInput(&name); err != nil {
//			return nil, err
//		}
//		return "Hello " + name + "!", nil
//	})
//	_ = r.AddOrchestrator("HelloSequence", func(ctx *jetflow.OrchestrationContext) (any, error) {
//		var out []string
//		for _, city := range []string{"Tokyo", "Seattle", "London"} {
//			var s string
//			if err := ctx.CallActivity("SayHello", city).Await(&s); err != nil {
//				return nil, err
//			}
//			out = append(out, s)
//		}
//		return out, nil
//	})
//
// Inputs, outputs, event payloads and custom status values are JSON: values
// are encoded with [encoding/json] ([encoding/json.RawMessage] passes through
// unchanged) and decoded into the pointer given to GetInput or [Task.Await].
//
// # Tasks
//
// [OrchestrationContext.CallActivity], [OrchestrationContext.CreateTimer],
// [OrchestrationContext.WaitForExternalEvent] and
// [OrchestrationContext.CallSubOrchestrator] return a [Task] at once; the
// work happens elsewhere and [Task.Await] suspends the orchestrator until it
// is done. Start several tasks before awaiting to run them in parallel, and
// combine them with [OrchestrationContext.WhenAll] (fan-out/fan-in) or
// [OrchestrationContext.WhenAny] (first one wins, e.g. an event against a
// timer). A failed activity or sub-orchestration surfaces as a
// [*TaskFailedError]. Pass [WithRetry] to CallActivity to try a failing
// activity again after durable waits ([RetryPolicy]: attempts, first
// interval, backoff, cap).
//
// # Determinism rules
//
// The orchestrator function is run again from the start on every replay, and
// each replay must ask for the same actions (activities, timers,
// sub-orchestrations, in the same order, with the same names) as the history
// recorded. When it does not, the instance fails with a "NonDeterminism"
// error naming the step and both actions. So, inside an orchestrator:
//
//   - Do not read the clock: use [OrchestrationContext.Now], not time.Now or
//     time.Since; use [OrchestrationContext.CreateTimer], not time.Sleep or
//     time.After.
//   - Do not start goroutines and do not use channels or select: run things
//     in parallel with tasks and WhenAll / WhenAny. Await tasks only from the
//     orchestrator's own goroutine.
//   - Do not depend on map iteration order: sort the keys before calling
//     activities in a loop over a map.
//   - Do no I/O (network, files, databases, environment variables) and use no
//     random numbers or UUIDs made on the spot: put them in an activity,
//     whose result is recorded in history.
//   - Do not read mutable global state that may differ between replays.
//   - Log with [OrchestrationContext.Logger], which stays quiet while the
//     orchestrator replays, so each line appears once.
//   - Changing orchestrator code breaks instances that are in flight: deploy
//     a new orchestrator name, or let old instances finish first.
//
// A panic, or an error returned by the orchestrator, fails the instance;
// errors returned by Await can be handled like any Go error.
//
// # Replay
//
// For each turn the worker replays an instance's history and then the new
// messages through the orchestrator, and appends the events the
// orchestrator adds. Replay is pure: it does no I/O and reads no wall
// clock; the orchestrator's current time comes from the OrchestratorStarted
// events in history.
package jetflow
