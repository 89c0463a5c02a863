package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// upper is an SDK activity returning its input in capitals.
func upper(r *pb.ActivityRequest) (*wrapperspb.StringValue, *pb.TaskFailureDetails) {
	return wrapperspb.String(strings.ToUpper(r.GetInput().GetValue())), nil
}

// callOnce is an SDK orchestrator calling activity act once with its own
// input and completing with the result.
func callOnce(act string) orchFunc {
	return func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		if out, ok := results(r)[1]; ok {
			return []*pb.OrchestratorAction{completeWith(2, out)}, nil
		}
		if scheduled(r, 1) {
			return nil, nil
		}
		return []*pb.OrchestratorAction{callActivity(1, act, input(r))}, nil
	}
}

func waitDone(t *testing.T, b *bundle, id string) *jetflow.Status {
	t.Helper()
	st, err := b.e.Client.WaitForCompletion(ctxFor(t, 30*time.Second), id)
	require.NoError(t, err)
	return st
}

// TestAcrossLanguages: a Go orchestrator calls an activity an SDK serves,
// and an SDK orchestrator calls a Go activity, routed by name.
func TestAcrossLanguages(t *testing.T) {
	t.Parallel()
	b := setup(t, func(r *jetflow.Registry) error {
		if err := r.AddActivity("GoUpper", func(ctx *jetflow.ActivityContext) (any, error) {
			var s string
			err := ctx.GetInput(&s)
			return strings.ToUpper(s), err
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("GoCallsSDK", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var s string
			err := ctx.CallActivity("SDKUpper", "from go").Await(&s)
			return s, err
		})
	}, Config{})
	k := connect(t, b.c, filters([]string{"SDKCallsGo"}, []string{"SDKUpper"}))
	k.serve(map[string]orchFunc{"SDKCallsGo": callOnce("GoUpper")}, map[string]actFunc{"SDKUpper": upper})
	ctx := ctxFor(t, 30*time.Second)

	id, err := b.e.Client.StartOrchestration(ctx, "GoCallsSDK")
	require.NoError(t, err)
	st := waitDone(t, b, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s", st.Output)
	require.JSONEq(t, `"FROM GO"`, string(st.Output))

	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "SDKCallsGo", Input: wrapperspb.String(`"from sdk"`)})
	require.NoError(t, err)
	st = waitDone(t, b, resp.GetInstanceId())
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s", st.Output)
	require.JSONEq(t, `"FROM SDK"`, string(st.Output))
}

// TestStreamDroppedMidItem: a stream that ends holding an item hands it
// back at once; another stream runs it; the first stream's late answer is
// refused, and a repeated answer of the second is a harmless duplicate.
func TestStreamDroppedMidItem(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	orch := connect(t, b.c, filters([]string{"Once"}, nil))
	orch.serve(map[string]orchFunc{"Once": callOnce("Slow")}, nil)
	first := connect(t, b.c, filters(nil, []string{"Slow"}))
	ctx := ctxFor(t, 30*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Once", Input: wrapperspb.String(`"x"`)})
	require.NoError(t, err)

	heldItem := first.next(10 * time.Second)
	held := heldItem.GetActivityRequest()
	require.NotNil(t, held)
	second := connect(t, b.c, filters(nil, []string{"Slow"}))
	began := time.Now()
	first.cancel() // the SDK process dies holding the item
	wi := second.next(10 * time.Second)
	require.Less(t, time.Since(began), 8*time.Second, "handed back at once, not after the ack wait")
	r := wi.GetActivityRequest()
	require.Equal(t, held.GetTaskId(), r.GetTaskId())
	answer := &pb.ActivityResponse{InstanceId: resp.GetInstanceId(), TaskId: r.GetTaskId(), Result: wrapperspb.String(`"done"`),
		CompletionToken: wi.GetCompletionToken()}
	_, err = b.c.CompleteActivityTask(ctx, answer)
	require.NoError(t, err)
	_, err = b.c.CompleteActivityTask(ctx, answer)
	require.NoError(t, err, "a duplicate completion is deduplicated")
	st := waitDone(t, b, resp.GetInstanceId())
	require.JSONEq(t, `"done"`, string(st.Output))

	// The first stream's item was handed back: its answer comes too late.
	_, err = b.c.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: resp.GetInstanceId(), TaskId: held.GetTaskId(),
		Result: wrapperspb.String(`"late"`), CompletionToken: heldItem.GetCompletionToken()})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Equal(t, 1, taskCompletions(t, b, resp.GetInstanceId()), "the result is applied once")
}

// taskCompletions counts an instance's TaskCompleted events.
func taskCompletions(t *testing.T, b *bundle, id string) int {
	chunks, err := b.e.Storage.LoadHistory(ctxFor(t, 10*time.Second), id)
	require.NoError(t, err)
	n := 0
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.TaskCompleted {
				n++
			}
		}
	}
	return n
}

// TestAbandon: an abandoned orchestration item comes back and runs; a
// completion by instance id (no token, as older SDKs send) is matched.
func TestAbandon(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Done"}, nil))
	ctx := ctxFor(t, 30*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Done", InstanceId: "ab-1"})
	require.NoError(t, err)
	wi := k.next(10 * time.Second)
	_, err = b.c.AbandonTaskOrchestratorWorkItem(ctx, &pb.AbandonOrchestrationTaskRequest{CompletionToken: wi.GetCompletionToken()})
	require.NoError(t, err)
	_, err = b.c.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: "ab-1", CompletionToken: wi.GetCompletionToken(),
		Actions: []*pb.OrchestratorAction{completeWith(1, `"too late"`)}})
	require.Equal(t, codes.NotFound, status.Code(err), "an abandoned item takes no answer: %v", err)
	_, err = b.c.AbandonTaskOrchestratorWorkItem(ctx, &pb.AbandonOrchestrationTaskRequest{CompletionToken: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))

	again := k.next(15 * time.Second) // after the failed turn's retry delay
	require.Equal(t, resp.GetInstanceId(), again.GetOrchestratorRequest().GetInstanceId())
	require.NotEqual(t, wi.GetCompletionToken(), again.GetCompletionToken())
	_, err = b.c.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: "ab-1", // no token
		Actions: []*pb.OrchestratorAction{completeWith(1, `"ok"`)}})
	require.NoError(t, err)
	st := waitDone(t, b, "ab-1")
	require.JSONEq(t, `"ok"`, string(st.Output))
}

// TestHealthPings: an idle stream gets a ping every PingInterval.
func TestHealthPings(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{PingInterval: 300 * time.Millisecond})
	k := connect(t, b.c, &pb.GetWorkItemsRequest{})
	for range 3 {
		testkit.Receive(t, k.pings, 5*time.Second, "a health ping")
	}
	_, err := New(b.e.Store, Config{PingInterval: time.Minute})
	require.ErrorContains(t, err, "PingInterval")
}

// TestFirstPingBeforeWork: a stream's first message is a health ping,
// even when work for its names is waiting as it opens (an SDK, or our
// harness, reads it as "open and registered"; it used to race the items,
// and each item sent put it a whole PingInterval off).
func TestFirstPingBeforeWork(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	orch := connect(t, b.c, filters([]string{"FanOut"}, nil))
	orch.serve(map[string]orchFunc{"FanOut": fanOut("Work", 6)}, nil)
	req := filters(nil, []string{"Work"})
	req.MaxConcurrentActivityWorkItems = 1
	busy := connect(t, b.c, req) // takes one task and keeps it: the others wait
	ctx := ctxFor(t, 30*time.Second)
	_, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "FanOut"})
	require.NoError(t, err)
	busy.next(10 * time.Second)
	for range 5 {
		sctx, cancel := context.WithCancel(ctx)
		st, err := b.c.GetWorkItems(sctx, filters(nil, []string{"Work"}))
		require.NoError(t, err)
		wi, err := st.Recv()
		require.NoError(t, err)
		require.NotNil(t, wi.GetHealthPing(), "the first message is a ping, not %T", wi.GetRequest())
		cancel()
	}
}

// fanOut is an SDK orchestrator calling act n times at once.
func fanOut(act string, n int) orchFunc {
	return func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		if len(results(r)) == n {
			return []*pb.OrchestratorAction{completeWith(int32(n+1), "")}, nil
		}
		if scheduled(r, 1) {
			return nil, nil
		}
		var acts []*pb.OrchestratorAction
		for i := range n {
			acts = append(acts, callActivity(int32(i+1), act, mustJSON(i)))
		}
		return acts, nil
	}
}

// TestInFlightBound: a stream holds at most what it asked for; the rest
// goes to another stream.
func TestInFlightBound(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{MaxItemsPerStream: 4})
	orch := connect(t, b.c, filters([]string{"FanOut"}, nil))
	orch.serve(map[string]orchFunc{"FanOut": fanOut("Work", 6)}, nil)
	req := filters(nil, []string{"Work"})
	req.MaxConcurrentActivityWorkItems = 2
	small := connect(t, b.c, req)
	ctx := ctxFor(t, 30*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "FanOut"})
	require.NoError(t, err)
	var held []*pb.WorkItem
	held = append(held, small.next(10*time.Second), small.next(10*time.Second))
	big := connect(t, b.c, filters(nil, []string{"Work"})) // bounded by MaxItemsPerStream: 4
	for range 4 {
		held = append(held, big.next(10*time.Second))
	}
	// Six items out, two on the small stream: it took no more than it
	// asked for, and the big one no more than the sidecar's bound.
	b.s.mu.Lock()
	counts := map[int]int{}
	for st := range b.s.streams {
		if st.serves(activity, "Work") {
			counts[st.max[activity]] = st.inflight[activity]
		}
	}
	b.s.mu.Unlock()
	require.Equal(t, map[int]int{2: 2, 4: 4}, counts)
	for _, wi := range held {
		r := wi.GetActivityRequest()
		_, err := b.c.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: resp.GetInstanceId(), TaskId: r.GetTaskId(),
			CompletionToken: wi.GetCompletionToken()})
		require.NoError(t, err)
	}
	require.Equal(t, jetflow.StatusCompleted, waitDone(t, b, resp.GetInstanceId()).RuntimeStatus)
}

// TestSidecarCrashDuringActivity: a sidecar process that dies (its NATS
// connection gone, its streams cut) while an SDK runs an activity loses
// nothing: after the ack wait another sidecar's SDK runs it, and the
// result is applied once.
func TestSidecarCrashDuringActivity(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	orch := connect(t, b.c, filters([]string{"Once"}, nil))
	orch.serve(map[string]orchFunc{"Once": callOnce("Crashy")}, nil)

	nc, err := nats.Connect(b.e.Server.ClientURL())
	require.NoError(t, err)
	store, err := jetstream.Open(context.Background(), nc, jetstream.Config{})
	require.NoError(t, err)
	ackWait := 2 * time.Second
	doomed, url := startSidecar(t, b.e, store, Config{Worker: workerConfig(ackWait)})
	victim := connect(t, dial(t, url), filters(nil, []string{"Crashy"}))
	ctx := ctxFor(t, 60*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Once", Input: wrapperspb.String(`"a"`)})
	require.NoError(t, err)
	victim.next(10 * time.Second)
	nc.Close() // the process dies: no ack, no hand-back over NATS
	doomed.grpc.Stop()

	_, url2 := startSidecar(t, b.e, b.e.Store, Config{Worker: workerConfig(ackWait)})
	survivor := connect(t, dial(t, url2), filters(nil, []string{"Crashy"}))
	survivor.serve(nil, map[string]actFunc{"Crashy": upper})
	st := waitDone(t, b, resp.GetInstanceId())
	require.JSONEq(t, `"A"`, string(st.Output))
	require.Equal(t, 1, taskCompletions(t, b, resp.GetInstanceId()))
}

// TestLeasesKeptWhileOut: an item out to an SDK for longer than the ack
// wait is not redelivered: its leases are kept alive.
func TestLeasesKeptWhileOut(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, Config{Worker: workerConfig(time.Second)})
	orch := connect(t, e.c, filters([]string{"Once"}, nil))
	orch.serve(map[string]orchFunc{"Once": callOnce("Long")}, nil)
	k := connect(t, e.c, filters(nil, []string{"Long"}))
	ctx := ctxFor(t, 30*time.Second)
	resp, err := e.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Once", Input: wrapperspb.String(`"l"`)})
	require.NoError(t, err)
	wi := k.next(10 * time.Second)
	held := time.Now()
	// Hold the item for three ack waits; a redelivery would reach this
	// stream (it has room) as a second item.
	testkit.WaitFor(t, 10*time.Second, "three ack waits to pass", func() bool { return time.Since(held) > 3*time.Second })
	select {
	case again := <-k.items:
		t.Fatalf("the task was delivered again while out: %v", again)
	default:
	}
	r := wi.GetActivityRequest()
	_, err = e.c.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: resp.GetInstanceId(), TaskId: r.GetTaskId(),
		Result: wrapperspb.String(`"kept"`), CompletionToken: wi.GetCompletionToken()})
	require.NoError(t, err)
	require.JSONEq(t, `"kept"`, string(waitDone(t, e, resp.GetInstanceId()).Output))
}

// TestShutdownIsUnavailable: a stopping sidecar ends its streams with
// UNAVAILABLE (never CANCELLED) and hands its items back.
func TestShutdownIsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Done"}, nil))
	ctx := ctxFor(t, 30*time.Second)
	_, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Done", InstanceId: "sd-1"})
	require.NoError(t, err)
	wi := k.next(10 * time.Second)
	require.NoError(t, b.s.Stop(ctx))
	err = testkit.Receive(t, k.ended, 10*time.Second, "the stream's end")
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = b.c.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: "sd-1", CompletionToken: wi.GetCompletionToken()})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	st, err := b.e.Client.GetStatus(ctx, "sd-1")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, st.RuntimeStatus, "nothing committed")
}

// TestUnsupportedActionsFailClearly: an entity action fails the execution
// with a message saying entities are not supported; a stream whose
// filters name entities is refused.
func TestUnsupportedActionsFailClearly(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Entity"}, nil))
	k.serve(map[string]orchFunc{"Entity": func(*pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		return []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_SendEntityMessage{SendEntityMessage: &pb.SendEntityMessageAction{}}}}, nil
	}}, nil)
	ctx := ctxFor(t, 30*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Entity"})
	require.NoError(t, err)
	got, err := b.c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: resp.GetInstanceId()})
	require.NoError(t, err)
	require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED, got.GetOrchestrationState().GetOrchestrationStatus())
	f := got.GetOrchestrationState().GetFailureDetails()
	require.Equal(t, FailureUnsupported, f.GetErrorType())
	require.Contains(t, f.GetErrorMessage(), "entities are not supported")

	req := &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{Entities: []*pb.EntityFilter{{Name: "counter"}}}}
	st, err := b.c.GetWorkItems(ctx, req)
	require.NoError(t, err)
	_, err = st.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "entities are not supported")
}

// TestFailureDetailsRoundTrip: an SDK activity's failure (type, message,
// stack, inner failure) reaches the SDK orchestrator in history as it was
// sent and a Go orchestrator as a TaskFailedError; the orchestrator's own
// failure is returned by GetInstance with its stack and inner failure.
func TestFailureDetailsRoundTrip(t *testing.T) {
	t.Parallel()
	var goErr error
	b := setup(t, func(r *jetflow.Registry) error {
		return r.AddOrchestrator("GoCatches", func(ctx *jetflow.OrchestrationContext) (any, error) {
			goErr = ctx.CallActivity("Boom", nil).Await(nil)
			return "caught", nil
		})
	}, Config{})
	inner := &pb.TaskFailureDetails{ErrorType: "RangeError", ErrorMessage: "too far", StackTrace: wrapperspb.String("at inner (x.js:1)")}
	boom := &pb.TaskFailureDetails{ErrorType: "TypeError", ErrorMessage: "boom", StackTrace: wrapperspb.String("at boom (x.js:2)"), InnerFailure: inner}
	seen := make(chan *pb.TaskFailureDetails, 1)
	k := connect(t, b.c, filters([]string{"Rethrows"}, []string{"Boom"}))
	k.serve(map[string]orchFunc{"Rethrows": func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		for _, h := range events(r) {
			if f := h.GetTaskFailed(); f != nil {
				select {
				case seen <- f.GetFailureDetails():
				default:
				}
				return []*pb.OrchestratorAction{failWith(2, &pb.TaskFailureDetails{ErrorType: "Error", ErrorMessage: "rethrown",
					StackTrace: wrapperspb.String("at orch (o.js:3)"), InnerFailure: f.GetFailureDetails()})}, nil
			}
		}
		if scheduled(r, 1) {
			return nil, nil
		}
		return []*pb.OrchestratorAction{callActivity(1, "Boom", "")}, nil
	}}, map[string]actFunc{"Boom": func(*pb.ActivityRequest) (*wrapperspb.StringValue, *pb.TaskFailureDetails) { return nil, boom }})
	ctx := ctxFor(t, 30*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Rethrows"})
	require.NoError(t, err)
	got, err := b.c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: resp.GetInstanceId()})
	require.NoError(t, err)
	f := got.GetOrchestrationState().GetFailureDetails()
	require.Equal(t, "rethrown", f.GetErrorMessage())
	require.Equal(t, "at orch (o.js:3)", f.GetStackTrace().GetValue())
	requireSameFailure(t, boom, f.GetInnerFailure())
	requireSameFailure(t, boom, testkit.Receive(t, seen, time.Second, "the failure in history"))

	id, err := b.e.Client.StartOrchestration(ctx, "GoCatches")
	require.NoError(t, err)
	require.JSONEq(t, `"caught"`, string(waitDone(t, b, id).Output))
	var tfe *jetflow.TaskFailedError
	require.True(t, errors.As(goErr, &tfe), "%v", goErr)
	require.Equal(t, "TypeError", tfe.Type)
	require.Equal(t, "boom", tfe.Message)
}

func requireSameFailure(t *testing.T, want, got *pb.TaskFailureDetails) {
	t.Helper()
	for want != nil {
		require.NotNil(t, got)
		require.Equal(t, want.GetErrorType(), got.GetErrorType())
		require.Equal(t, want.GetErrorMessage(), got.GetErrorMessage())
		require.Equal(t, want.GetStackTrace().GetValue(), got.GetStackTrace().GetValue())
		want, got = want.GetInnerFailure(), got.GetInnerFailure()
	}
	require.Nil(t, got)
}

// TestCustomStatusNotJSON: a custom status that is not JSON is stored as
// a JSON string.
func TestCustomStatusNotJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Plain"}, nil))
	k.serve(map[string]orchFunc{"Plain": func(*pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		return []*pb.OrchestratorAction{completeWith(1, "")}, wrapperspb.String("almost there")
	}}, nil)
	resp, err := b.c.StartInstance(ctxFor(t, 30*time.Second), &pb.CreateInstanceRequest{Name: "Plain"})
	require.NoError(t, err)
	st := waitDone(t, b, resp.GetInstanceId())
	require.Equal(t, `"almost there"`, string(st.CustomStatus))
}

// TestNamesLearnt: an SDK that sends no filters gets the instances started
// through the sidecar and the activities its orchestrators call, when no
// worker in the hub serves those names.
func TestNamesLearnt(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, &pb.GetWorkItemsRequest{})
	k.serve(map[string]orchFunc{"Anon": callOnce("AnonUpper")}, map[string]actFunc{"AnonUpper": upper})
	resp, err := b.c.StartInstance(ctxFor(t, 30*time.Second), &pb.CreateInstanceRequest{Name: "Anon", Input: wrapperspb.String(`"q"`)})
	require.NoError(t, err)
	require.JSONEq(t, `"Q"`, string(waitDone(t, b, resp.GetInstanceId()).Output))
	_, err = b.e.Client.StartOrchestration(ctxFor(t, 10*time.Second), "NobodyServesThis")
	require.ErrorIs(t, err, jetflow.ErrUnknownOrchestrator)
}

// TestEventSent: an SDK orchestrator's event to another instance is
// raised there once, and the SDK finds it in history as EventSent (with
// its action's id) on the next turn.
func TestEventSent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Sender", "Waiter"}, []string{"Work"}))
	k.serve(map[string]orchFunc{
		"Waiter": waiter,
		"Sender": func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
			if _, ok := results(r)[2]; ok {
				for _, h := range r.GetPastEvents() {
					if s := h.GetEventSent(); s != nil && h.GetEventId() == 1 && s.GetInstanceId() == "es-target" && s.GetName() == "Go" {
						return []*pb.OrchestratorAction{completeWith(3, `"sent"`)}, nil
					}
				}
				return []*pb.OrchestratorAction{failWith(3, &pb.TaskFailureDetails{ErrorMessage: "no EventSent #1 in history"})}, nil
			}
			if scheduled(r, 2) {
				return nil, nil
			}
			return []*pb.OrchestratorAction{
				{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_SendEvent{SendEvent: &pb.SendEventAction{
					Instance: &pb.OrchestrationInstance{InstanceId: "es-target"}, Name: "Go", Data: wrapperspb.String(`{"from":"sender"}`)}}},
				callActivity(2, "Work", ""),
			}, nil
		},
	}, map[string]actFunc{"Work": upper})
	ctx := ctxFor(t, 30*time.Second)
	_, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "es-target"})
	require.NoError(t, err)
	_, err = b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Sender", InstanceId: "es-sender"})
	require.NoError(t, err)
	require.JSONEq(t, `"sent"`, string(waitDone(t, b, "es-sender").Output))
	require.JSONEq(t, `{"from":"sender"}`, string(waitDone(t, b, "es-target").Output))
	chunks, err := b.e.Storage.LoadHistory(ctx, "es-target")
	require.NoError(t, err)
	raised := 0
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.EventRaised {
				raised++
			}
		}
	}
	require.Equal(t, 1, raised)
}

// TestRepeatedActionIDFails: an SDK that numbers two actions alike fails
// its execution instead of writing a history with two events of one id.
func TestRepeatedActionIDFails(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Twice"}, nil))
	k.serve(map[string]orchFunc{"Twice": func(*pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		return []*pb.OrchestratorAction{callActivity(1, "A", ""), callActivity(1, "B", "")}, nil
	}}, nil)
	resp, err := b.c.StartInstance(ctxFor(t, 30*time.Second), &pb.CreateInstanceRequest{Name: "Twice"})
	require.NoError(t, err)
	st := waitDone(t, b, resp.GetInstanceId())
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	require.Contains(t, string(st.Output), "already used")
	chunks, err := b.e.Storage.LoadHistory(ctxFor(t, 10*time.Second), resp.GetInstanceId())
	require.NoError(t, err)
	for _, c := range chunks {
		for _, e := range c.Events {
			require.NotEqual(t, history.TaskScheduled, e.Type, "nothing of the turn was kept")
		}
	}
}

// TestWorkFollowsTheSDK: a sidecar consumes a name only while a stream
// takes it, so when the SDK worker moves to another sidecar, every
// instance runs there; none waits on the sidecar it left.
func TestWorkFollowsTheSDK(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	first := connect(t, b.c, filters([]string{"Once"}, []string{"Up"}))
	first.serve(map[string]orchFunc{"Once": callOnce("Up")}, map[string]actFunc{"Up": upper})
	ctx := ctxFor(t, 60*time.Second)
	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Once", Input: wrapperspb.String(`"a"`)})
	require.NoError(t, err)
	require.JSONEq(t, `"A"`, string(waitDone(t, b, resp.GetInstanceId()).Output))

	first.cancel() // the SDK worker moves to another sidecar
	testkit.WaitFor(t, 10*time.Second, "the first sidecar to stop consuming the names", func() bool {
		b.s.mu.Lock()
		defer b.s.mu.Unlock()
		return len(b.s.served[orchestration])+len(b.s.served[activity]) == 0
	})
	_, url := startSidecar(t, b.e, b.e.Store, Config{})
	other := dial(t, url)
	second := connect(t, other, filters([]string{"Once"}, []string{"Up"}))
	second.serve(map[string]orchFunc{"Once": callOnce("Up")}, map[string]actFunc{"Up": upper})
	var ids []string
	for i := range 8 {
		resp, err := other.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Once", Input: wrapperspb.String(mustJSON(fmt.Sprint("x", i)))})
		require.NoError(t, err)
		ids = append(ids, resp.GetInstanceId())
	}
	for i, id := range ids {
		require.JSONEq(t, mustJSON(fmt.Sprint("X", i)), string(waitDone(t, b, id).Output))
	}
}

// TestVersionsAndTags: a start's version and tags reach the SDK in
// ExecutionStarted and come back in the instance's state; an activity
// call's reach the activity and stay in history; a continue-as-new with a
// new version starts the next execution with it; an action with an
// invalid version fails the instance with a message that names it, and
// an invalid start stores nothing.
func TestVersionsAndTags(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"V", "BadV"}, []string{"A"}))
	var mu sync.Mutex
	var seen []string // what the SDK got, in order
	saw := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, s)
	}
	k.serve(map[string]orchFunc{
		"V": func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
			var es *pb.ExecutionStartedEvent
			for _, h := range events(r) {
				if h.GetExecutionStarted() != nil {
					es = h.GetExecutionStarted()
				}
			}
			v := es.GetVersion().GetValue()
			if v == "3" {
				return []*pb.OrchestratorAction{completeWith(1, strconv.Quote(v+" "+es.GetTags()["team"]))}, nil
			}
			if res, ok := results(r)[1]; ok {
				saw("execution " + v + " " + es.GetTags()["team"])
				return []*pb.OrchestratorAction{{Id: 2, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{
					CompleteOrchestration: &pb.CompleteOrchestrationAction{OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
						Result: wrapperspb.String(res), NewVersion: wrapperspb.String("3")}}}}, nil
			}
			a := callActivity(1, "A", "")
			a.GetScheduleTask().Version, a.GetScheduleTask().Tags = wrapperspb.String("a1"), map[string]string{"k": "v"}
			return []*pb.OrchestratorAction{a}, nil
		},
		"BadV": func(*pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
			a := callActivity(1, "A", "")
			a.GetScheduleTask().Version = wrapperspb.String("1\x00")
			return []*pb.OrchestratorAction{a}, nil
		},
	}, map[string]actFunc{"A": func(r *pb.ActivityRequest) (*wrapperspb.StringValue, *pb.TaskFailureDetails) {
		saw("activity " + r.GetVersion().GetValue() + " " + r.GetTags()["k"])
		return wrapperspb.String(`"done"`), nil
	}})
	ctx := ctxFor(t, 30*time.Second)
	_, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "v", Name: "V", Version: wrapperspb.String("2"),
		Tags: map[string]string{"team": "sdk"}})
	require.NoError(t, err)
	got, err := b.c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "v", GetInputsAndOutputs: true})
	require.NoError(t, err)
	st := got.GetOrchestrationState()
	require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, st.GetOrchestrationStatus(), "%v", st.GetFailureDetails())
	require.Equal(t, `"3 sdk"`, st.GetOutput().GetValue(), "the next execution has the new version and keeps the tags")
	require.Equal(t, "3", st.GetVersion().GetValue())
	require.Equal(t, map[string]string{"team": "sdk"}, st.GetTags())
	mu.Lock()
	require.Equal(t, []string{"activity a1 v", "execution 2 sdk"}, seen)
	mu.Unlock()
	chunks, err := b.e.Storage.LoadHistory(ctx, "v")
	require.NoError(t, err)
	var calls int
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.TaskScheduled {
				calls++
				require.Equal(t, "a1", e.Version)
				require.Equal(t, map[string]string{"k": "v"}, e.Tags)
			}
		}
	}
	require.Equal(t, 1, calls)

	_, err = b.c.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad-v", Name: "BadV"})
	require.NoError(t, err)
	done := waitDone(t, b, "bad-v")
	require.Equal(t, jetflow.StatusFailed, done.RuntimeStatus)
	require.Contains(t, string(done.Output), "action 1: invalid option: version")

	_, err = b.c.StartInstance(ctx, &pb.CreateInstanceRequest{InstanceId: "bad-tags", Name: "V", Tags: map[string]string{"": "x"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "empty key")
	_, err = b.e.Client.GetStatus(ctx, "bad-tags")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound)
}
