package sidecar

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// waiter is an SDK orchestrator that completes with the data of its
// first "Go" event.
func waiter(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
	for _, h := range events(r) {
		if ev := h.GetEventRaised(); ev != nil && ev.GetName() == "Go" {
			return []*pb.OrchestratorAction{completeWith(1, ev.GetInput().GetValue())}, wrapperspb.String(`"got it"`)
		}
	}
	return nil, wrapperspb.String(`"waiting"`)
}

// flaky is an SDK activity that fails its first call and succeeds after.
func flaky() actFunc {
	calls := make(chan struct{}, 1)
	return func(*pb.ActivityRequest) (*wrapperspb.StringValue, *pb.TaskFailureDetails) {
		select {
		case calls <- struct{}{}:
			return nil, &pb.TaskFailureDetails{ErrorType: "Error", ErrorMessage: "first call fails"}
		default:
			return wrapperspb.String(`"second time lucky"`), nil
		}
	}
}

// parent starts a Waiter as its sub-orchestration <id>-child and waits
// for it.
func parent(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
	if scheduled(r, 1) {
		return nil, nil
	}
	return []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CreateSubOrchestration{
		CreateSubOrchestration: &pb.CreateSubOrchestrationAction{InstanceId: r.GetInstanceId() + "-child", Name: "Waiter"}}}}, nil
}

// scheduledStart completes with the scheduled start time its
// ExecutionStarted carries (RFC 3339, or "none") and when it ran.
func scheduledStart(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
	at := "none"
	for _, h := range events(r) {
		if es := h.GetExecutionStarted(); es != nil && es.GetScheduledStartTimestamp() != nil {
			at = es.GetScheduledStartTimestamp().AsTime().Format(time.RFC3339)
		}
	}
	return []*pb.OrchestratorAction{completeWith(1, mustJSON([]string{at, time.Now().Format(time.RFC3339Nano)}))}, nil
}

// failOnTaskFailure is callOnce that fails the execution when its
// activity fails.
func failOnTaskFailure(act string) orchFunc {
	return func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		for _, h := range events(r) {
			if f := h.GetTaskFailed(); f != nil {
				return []*pb.OrchestratorAction{failWith(2, f.GetFailureDetails())}, nil
			}
		}
		return callOnce(act)(r)
	}
}

// TestClientRPCs drives every client RPC against one stream of SDK
// orchestrators.
func TestClientRPCs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Waiter", "Rewindable", "Scheduled", "Parent"}, []string{"Flaky"}))
	k.serve(map[string]orchFunc{"Waiter": waiter, "Rewindable": failOnTaskFailure("Flaky"), "Scheduled": scheduledStart, "Parent": parent},
		map[string]actFunc{"Flaky": flaky()})
	c := b.c
	state := func(t *testing.T, id string) *pb.OrchestrationState {
		t.Helper()
		got, err := c.GetInstance(ctxFor(t, 10*time.Second), &pb.GetInstanceRequest{InstanceId: id, GetInputsAndOutputs: true})
		require.NoError(t, err)
		require.True(t, got.GetExists())
		return got.GetOrchestrationState()
	}
	waitStatus := func(t *testing.T, id string, want pb.OrchestrationStatus) {
		t.Helper()
		testkit.WaitFor(t, 20*time.Second, id+" to be "+want.String(), func() bool { return state(t, id).GetOrchestrationStatus() == want })
	}
	start := func(t *testing.T, name, id, input string) {
		t.Helper()
		req := &pb.CreateInstanceRequest{Name: name, InstanceId: id}
		if input != "" {
			req.Input = wrapperspb.String(input)
		}
		_, err := c.StartInstance(ctxFor(t, 10*time.Second), req)
		require.NoError(t, err)
	}

	t.Run("start, get, wait, raise", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		got, err := c.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "nobody"})
		require.NoError(t, err)
		require.False(t, got.GetExists())
		got, err = c.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: "nobody"})
		require.NoError(t, err)
		require.False(t, got.GetExists())

		start(t, "Waiter", "rpc-raise", `{"n":1}`)
		_, err = c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "rpc-raise"})
		require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", err)
		got, err = c.WaitForInstanceStart(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-raise", GetInputsAndOutputs: true})
		require.NoError(t, err)
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING, got.GetOrchestrationState().GetOrchestrationStatus())
		require.JSONEq(t, `{"n":1}`, got.GetOrchestrationState().GetInput().GetValue())
		require.Equal(t, "Waiter", got.GetOrchestrationState().GetName())
		require.NotNil(t, got.GetOrchestrationState().GetCreatedTimestamp())

		short := ctxFor(t, 300*time.Millisecond)
		_, err = c.WaitForInstanceCompletion(short, &pb.GetInstanceRequest{InstanceId: "rpc-raise"})
		require.Equal(t, codes.DeadlineExceeded, status.Code(err), "bounded by the call's deadline: %v", err)

		_, err = c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "rpc-raise", Name: "Go", Input: wrapperspb.String(`"go!"`)})
		require.NoError(t, err)
		got, err = c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-raise", GetInputsAndOutputs: true})
		require.NoError(t, err)
		st := got.GetOrchestrationState()
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, st.GetOrchestrationStatus())
		require.Equal(t, `"go!"`, st.GetOutput().GetValue())
		require.Equal(t, `"got it"`, st.GetCustomStatus().GetValue())
		require.NotNil(t, st.GetCompletedTimestamp())

		_, err = c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "rpc-raise", Name: "Go"})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "to a finished instance: %v", err)
		_, err = c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "nobody", Name: "Go"})
		require.Equal(t, codes.NotFound, status.Code(err))
	})

	t.Run("scheduled start", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		at := time.Now().Add(2 * time.Second)
		want := at.UTC().Truncate(time.Second).Add(time.Second)
		_, err := c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Scheduled", InstanceId: "rpc-sched", ScheduledStartTimestamp: timestamppb.New(at)})
		require.NoError(t, err)
		st := state(t, "rpc-sched")
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_PENDING, st.GetOrchestrationStatus())
		require.Equal(t, want, st.GetScheduledStartTimestamp().AsTime(), "GetInstance reports the time, rounded up to the second")

		got, err := c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-sched", GetInputsAndOutputs: true})
		require.NoError(t, err)
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, got.GetOrchestrationState().GetOrchestrationStatus())
		var out []string
		require.NoError(t, json.Unmarshal([]byte(got.GetOrchestrationState().GetOutput().GetValue()), &out))
		require.Equal(t, want.Format(time.RFC3339), out[0], "the SDK sees the time in ExecutionStarted")
		ran, err := time.Parse(time.RFC3339Nano, out[1])
		require.NoError(t, err)
		require.False(t, ran.Before(at), "ran at %s, before %s", ran, at)
		require.Equal(t, want, got.GetOrchestrationState().GetScheduledStartTimestamp().AsTime())

		// A past time starts at once.
		_, err = c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Scheduled", InstanceId: "rpc-past", ScheduledStartTimestamp: timestamppb.New(time.Now().Add(-time.Hour))})
		require.NoError(t, err)
		got, err = c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-past", GetInputsAndOutputs: true})
		require.NoError(t, err)
		require.Contains(t, got.GetOrchestrationState().GetOutput().GetValue(), `"none"`)
		require.Nil(t, got.GetOrchestrationState().GetScheduledStartTimestamp())
	})

	t.Run("bad starts", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 10*time.Second)
		_, err := c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", Input: wrapperspb.String("{not json")})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		_, err = c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "a/b"})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		_, err = c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "bad-at", ScheduledStartTimestamp: &timestamppb.Timestamp{Seconds: 1 << 40}})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		require.ErrorContains(t, err, "scheduled start time")
		got, err := c.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "bad-at"})
		require.NoError(t, err)
		require.False(t, got.GetExists(), "a refused start creates nothing")
		_, err = c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "NobodyServes"})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	})

	t.Run("suspend, resume, terminate", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		start(t, "Waiter", "rpc-suspend", "")
		waitStatus(t, "rpc-suspend", pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING)
		_, err := c.SuspendInstance(ctx, &pb.SuspendRequest{InstanceId: "rpc-suspend", Reason: wrapperspb.String("a pause")})
		require.NoError(t, err)
		waitStatus(t, "rpc-suspend", pb.OrchestrationStatus_ORCHESTRATION_STATUS_SUSPENDED)
		_, err = c.ResumeInstance(ctx, &pb.ResumeRequest{InstanceId: "rpc-suspend"})
		require.NoError(t, err)
		waitStatus(t, "rpc-suspend", pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING)
		_, err = c.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "rpc-suspend", Output: wrapperspb.String("enough")})
		require.NoError(t, err)
		got, err := c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-suspend", GetInputsAndOutputs: true})
		require.NoError(t, err)
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED, got.GetOrchestrationState().GetOrchestrationStatus())
		require.Equal(t, `"enough"`, got.GetOrchestrationState().GetOutput().GetValue(), "a reason that is not JSON is a JSON string")
	})

	t.Run("recursive terminate and purge", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		start(t, "Parent", "rpc-tree", "")
		testkit.WaitFor(t, 20*time.Second, "the child to run", func() bool {
			got, err := c.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-tree-child"})
			require.NoError(t, err)
			// RUNNING is the enum's zero: an instance that does not exist
			// yet has it too.
			return got.GetExists() && got.GetOrchestrationState().GetOrchestrationStatus() == pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING
		})
		_, err := c.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "rpc-tree"}, Recursive: true})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "a running tree is not purged: %v", err)
		_, err = c.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "rpc-tree", Output: wrapperspb.String(`"all"`), Recursive: true})
		require.NoError(t, err)
		waitStatus(t, "rpc-tree", pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED)
		waitStatus(t, "rpc-tree-child", pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED)
		require.Equal(t, `"all"`, state(t, "rpc-tree-child").GetOutput().GetValue())

		p, err := c.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "rpc-tree"}, Recursive: true})
		require.NoError(t, err)
		require.EqualValues(t, 1, p.GetDeletedInstanceCount())
		for _, id := range []string{"rpc-tree", "rpc-tree-child"} {
			got, err := c.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: id})
			require.NoError(t, err)
			require.False(t, got.GetExists(), "%s is purged", id)
		}
	})

	t.Run("restart, query, purge", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		start(t, "Waiter", "rpc-q-1", `"one"`)
		_, err := c.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: "rpc-q-1"})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "a running instance: %v", err)
		_, err = c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "rpc-q-1", Name: "Go", Input: wrapperspb.String(`1`)})
		require.NoError(t, err)
		waitStatus(t, "rpc-q-1", pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED)
		again, err := c.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: "rpc-q-1", RestartWithNewInstanceId: true})
		require.NoError(t, err)
		require.NotEqual(t, "rpc-q-1", again.GetInstanceId())
		require.JSONEq(t, `"one"`, state(t, again.GetInstanceId()).GetInput().GetValue(), "restarted with its input")
		same, err := c.RestartInstance(ctx, &pb.RestartInstanceRequest{InstanceId: "rpc-q-1"})
		require.NoError(t, err)
		require.Equal(t, "rpc-q-1", same.GetInstanceId())
		waitStatus(t, "rpc-q-1", pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING)
		start(t, "Waiter", "rpc-q-2", "")
		_, err = c.TerminateInstance(ctx, &pb.TerminateRequest{InstanceId: "rpc-q-2"})
		require.NoError(t, err)
		waitStatus(t, "rpc-q-2", pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED)

		q, err := c.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("rpc-q-"),
			MaxInstanceCount: 1, FetchInputsAndOutputs: true}})
		require.NoError(t, err)
		require.Len(t, q.GetOrchestrationState(), 1)
		require.Equal(t, "rpc-q-1", q.GetOrchestrationState()[0].GetInstanceId())
		require.JSONEq(t, `"one"`, q.GetOrchestrationState()[0].GetInput().GetValue())
		q, err = c.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("rpc-q-"),
			MaxInstanceCount: 1, ContinuationToken: q.GetContinuationToken()}})
		require.NoError(t, err)
		require.Len(t, q.GetOrchestrationState(), 1)
		require.Equal(t, "rpc-q-2", q.GetOrchestrationState()[0].GetInstanceId())
		require.Nil(t, q.GetOrchestrationState()[0].GetInput())
		q, err = c.QueryInstances(ctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("rpc-q-"),
			RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED}}})
		require.NoError(t, err)
		require.Len(t, q.GetOrchestrationState(), 1)
		require.Equal(t, "rpc-q-2", q.GetOrchestrationState()[0].GetInstanceId())

		p, err := c.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "rpc-q-2"}})
		require.NoError(t, err)
		require.EqualValues(t, 1, p.GetDeletedInstanceCount())
		got, err := c.GetInstance(ctx, &pb.GetInstanceRequest{InstanceId: "rpc-q-2"})
		require.NoError(t, err)
		require.False(t, got.GetExists())
		_, err = c.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceId{InstanceId: "rpc-q-1"}})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "a running instance is not purged: %v", err)
		p, err = c.PurgeInstances(ctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_PurgeInstanceFilter{PurgeInstanceFilter: &pb.PurgeInstanceFilter{
			RuntimeStatus: []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED}}}})
		require.NoError(t, err)
		require.GreaterOrEqual(t, p.GetDeletedInstanceCount(), int32(0))
	})

	t.Run("rewind", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 30*time.Second)
		start(t, "Rewindable", "rpc-rewind", `"r"`)
		waitStatus(t, "rpc-rewind", pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED)
		require.Equal(t, "first call fails", state(t, "rpc-rewind").GetFailureDetails().GetErrorMessage())
		_, err := c.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: "rpc-rewind", Reason: wrapperspb.String("try again")})
		require.NoError(t, err)
		// Failed until the rewind's turn runs; then the SDK, given the
		// rewound history, waits for the activity again, which succeeds.
		waitStatus(t, "rpc-rewind", pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED)
		require.Equal(t, `"second time lucky"`, state(t, "rpc-rewind").GetOutput().GetValue())
		_, err = c.RewindInstance(ctx, &pb.RewindInstanceRequest{InstanceId: "rpc-rewind"})
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
	})

	t.Run("unimplemented", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 10*time.Second)
		_, err := c.SignalEntity(ctx, &pb.SignalEntityRequest{})
		require.Equal(t, codes.Unimplemented, status.Code(err))
		require.ErrorContains(t, err, "entities are not supported by jetflow")
		_, err = c.CreateTaskHub(ctx, &pb.CreateTaskHubRequest{})
		require.Equal(t, codes.Unimplemented, status.Code(err))
	})
	_ = jetflow.StatusCompleted
}

// TestKey: a sidecar with a key refuses calls and streams without it.
func TestKey(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{Key: "s3cret"})
	ctx := ctxFor(t, 10*time.Second)
	_, err := b.c.Hello(ctx, nil)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	st, err := b.c.GetWorkItems(ctx, &pb.GetWorkItemsRequest{})
	require.NoError(t, err)
	_, err = st.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	wrong := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
	_, err = b.c.StartInstance(wrong, &pb.CreateInstanceRequest{Name: "X"})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	for _, md := range [][]string{{"authorization", "Bearer s3cret"}, {"x-functions-key", "s3cret"}} {
		_, err = b.c.Hello(metadata.AppendToOutgoingContext(ctx, md...), nil)
		require.NoError(t, err, "%v", md)
	}
}
