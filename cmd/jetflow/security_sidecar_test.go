package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/testkit"
)

// violationLog is a nats-server logger that keeps the permission
// violations the server reports, whoever caused them.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) keep(format string, v ...any) {
	if line := fmt.Sprintf(format, v...); strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

func (l *violationLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *violationLog) Noticef(format string, v ...any) { l.keep(format, v...) }
func (l *violationLog) Warnf(format string, v ...any)   { l.keep(format, v...) }
func (l *violationLog) Fatalf(format string, v ...any)  { l.keep(format, v...) }
func (l *violationLog) Errorf(format string, v ...any)  { l.keep(format, v...) }
func (l *violationLog) Debugf(format string, v ...any)  { l.keep(format, v...) }
func (l *violationLog) Tracef(format string, v ...any)  { l.keep(format, v...) }

// fakeSDK answers the orchestrator work items of a GetWorkItems stream as
// an SDK would: Waiter completes with the data of event "Go"; Parent
// starts a Waiter as its sub-orchestration <id>-child and waits for it.
func fakeSDK(t *testing.T, c pb.TaskHubSidecarServiceClient, st pb.TaskHubSidecarService_GetWorkItemsClient) {
	for {
		wi, err := st.Recv()
		if err != nil {
			return // the stream ended with the test
		}
		r := wi.GetOrchestratorRequest()
		if r == nil {
			continue // a health ping
		}
		var name, data string
		child, got := false, false
		for _, h := range append(append([]*pb.HistoryEvent(nil), r.GetPastEvents()...), r.GetNewEvents()...) {
			switch {
			case h.GetExecutionStarted() != nil:
				name = h.GetExecutionStarted().GetName()
			case h.GetEventRaised() != nil && h.GetEventRaised().GetName() == "Go":
				data, got = h.GetEventRaised().GetInput().GetValue(), true
			case h.GetSubOrchestrationInstanceCreated() != nil:
				child = true
			}
		}
		var actions []*pb.OrchestratorAction
		switch {
		case name == "Waiter" && got:
			actions = append(actions, &pb.OrchestratorAction{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{
				CompleteOrchestration: &pb.CompleteOrchestrationAction{OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
					Result: wrapperspb.String(data)}}})
		case name == "Parent" && !child:
			actions = append(actions, &pb.OrchestratorAction{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CreateSubOrchestration{
				CreateSubOrchestration: &pb.CreateSubOrchestrationAction{InstanceId: r.GetInstanceId() + "-child", Name: "Waiter"}}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: r.GetInstanceId(), CompletionToken: wi.GetCompletionToken(), Actions: actions})
		cancel()
		if err != nil && t.Context().Err() == nil {
			t.Errorf("completing a work item of %s: %v", r.GetInstanceId(), err)
		}
	}
}

// TestNATSRoleSidecar runs `jetflow sidecar` as the sidecar role of
// deploy/nats/roles.conf against a nats-server configured with that file:
// an SDK stream runs orchestrations through it, and every client RPC that
// writes (a scheduled start, an event, a recursive terminate, a recursive
// purge) or reads (get, wait, query) works without a single permission
// violation; the role still cannot create or delete streams.
func TestNATSRoleSidecar(t *testing.T) {
	t.Parallel()
	violations := &violationLog{}
	url := rolesServerLogging(t, violations).ClientURL()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	r := cli(t, rctx, append([]string{"list"}, roleArgs(url, "admin")...)...)
	require.Equal(t, 0, r.code, "the admin creates the hub: %s", r.stderr)

	sc := launch(ctx, append([]string{"sidecar", "--grpc", "127.0.0.1:0", "--orchestrators", "Waiter,Parent", "--log-level", "warn"},
		roleArgs(url, "sidecar")...)...)
	var addr string
	testkit.WaitFor(t, 20*time.Second, "the sidecar to print its address", func() bool {
		m := grpcAddrRE.FindStringSubmatch(sc.out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	c := dialSidecar(t, addr)
	_, err := c.Hello(rctx, &emptypb.Empty{})
	require.NoError(t, err)
	sctx, scancel := context.WithCancel(rctx)
	defer scancel()
	st, err := c.GetWorkItems(sctx, &pb.GetWorkItemsRequest{})
	require.NoError(t, err)
	first, err := st.Recv()
	require.NoError(t, err)
	require.NotNil(t, first.GetHealthPing(), "the stream is open")
	go fakeSDK(t, c, st)

	// A scheduled start, an event raised before it runs, a wait.
	at := time.Now().Add(1500 * time.Millisecond)
	_, err = c.StartInstance(rctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "sc-1", ScheduledStartTimestamp: timestamppb.New(at)})
	require.NoError(t, err, "sidecar: %s", &sc.errOut)
	_, err = c.RaiseEvent(rctx, &pb.RaiseEventRequest{InstanceId: "sc-1", Name: "Go", Input: wrapperspb.String(`"went"`)})
	require.NoError(t, err)
	got, err := c.WaitForInstanceCompletion(rctx, &pb.GetInstanceRequest{InstanceId: "sc-1", GetInputsAndOutputs: true})
	require.NoError(t, err)
	require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, got.GetOrchestrationState().GetOrchestrationStatus(), "sidecar: %s", &sc.errOut)
	require.Equal(t, `"went"`, got.GetOrchestrationState().GetOutput().GetValue())
	require.False(t, time.Now().Before(at))

	// A tree, terminated and purged recursively.
	_, err = c.StartInstance(rctx, &pb.CreateInstanceRequest{Name: "Parent", InstanceId: "sc-tree"})
	require.NoError(t, err)
	testkit.WaitFor(t, 20*time.Second, "the child to run", func() bool {
		got, err := c.GetInstance(rctx, &pb.GetInstanceRequest{InstanceId: "sc-tree-child"})
		require.NoError(t, err)
		// RUNNING is the enum's zero: a child that does not exist yet has it too.
		return got.GetExists() && got.GetOrchestrationState().GetOrchestrationStatus() == pb.OrchestrationStatus_ORCHESTRATION_STATUS_RUNNING
	})
	_, err = c.TerminateInstance(rctx, &pb.TerminateRequest{InstanceId: "sc-tree", Recursive: true})
	require.NoError(t, err)
	for _, id := range []string{"sc-tree", "sc-tree-child"} {
		got, err := c.WaitForInstanceCompletion(rctx, &pb.GetInstanceRequest{InstanceId: id})
		require.NoError(t, err)
		require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_TERMINATED, got.GetOrchestrationState().GetOrchestrationStatus(), id)
	}
	q, err := c.QueryInstances(rctx, &pb.QueryInstancesRequest{Query: &pb.InstanceQuery{InstanceIdPrefix: wrapperspb.String("sc-")}})
	require.NoError(t, err)
	require.Len(t, q.GetOrchestrationState(), 3)
	p, err := c.PurgeInstances(rctx, &pb.PurgeInstancesRequest{Request: &pb.PurgeInstancesRequest_InstanceBatch{
		InstanceBatch: &pb.InstanceBatch{InstanceIds: []string{"sc-1", "sc-tree"}}}, Recursive: true})
	require.NoError(t, err)
	require.EqualValues(t, 2, p.GetDeletedInstanceCount())
	for _, id := range []string{"sc-1", "sc-tree", "sc-tree-child"} {
		got, err := c.GetInstance(rctx, &pb.GetInstanceRequest{InstanceId: id})
		require.NoError(t, err)
		require.False(t, got.GetExists(), "%s is purged", id)
	}
	require.Empty(t, violations.String(), "the sidecar role allows all of it")

	// What the role does not allow.
	_, js, v := connectAs(t, url, "sidecar")
	requireRefused(t, v, "$JS.API.STREAM.DELETE.jetflow-orch", func(ctx context.Context) error { return js.DeleteStream(ctx, "jetflow-orch") })
	requireRefused(t, v, "$JS.API.STREAM.CREATE.mine", func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "mine", Subjects: []string{"mine.>"}})
		return err
	})

	scancel()
	cancel() // SIGTERM
	select {
	case code := <-sc.code:
		require.Equal(t, 0, code, "stderr: %s", &sc.errOut)
	case <-time.After(30 * time.Second):
		t.Fatal("the sidecar did not stop")
	}
}
