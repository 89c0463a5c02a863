package sidecar

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// bundle is a test's engine, sidecar and gRPC client.
type bundle struct {
	e   *testengine.Engine
	s   *Server
	c   pb.TaskHubSidecarServiceClient
	url string
}

// setup runs an engine (with the Go orchestrators and activities of
// register, on one Go worker) and a sidecar on it, serving gRPC on
// 127.0.0.1.
func setup(t testing.TB, register func(r *jetflow.Registry) error, cfg Config) *bundle {
	t.Helper()
	e := testengine.New(t, testengine.Options{Register: register})
	b := &bundle{e: e}
	b.s, b.url = startSidecar(t, e, e.Store, cfg)
	b.c = dial(t, b.url)
	return b
}

// startSidecar runs a sidecar on store until the test ends.
func startSidecar(t testing.TB, e *testengine.Engine, store *jetstream.Store, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = e.Logger()
	}
	s, err := New(store, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s, lis.Addr().String()
}

func dial(t testing.TB, addr string) pb.TaskHubSidecarServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewTaskHubSidecarServiceClient(conn)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sdk is a fake SDK worker: one GetWorkItems stream.
type sdk struct {
	t      testing.TB
	c      pb.TaskHubSidecarServiceClient
	cancel context.CancelFunc
	items  chan *pb.WorkItem // work items, pings left out
	pings  chan struct{}
	ended  chan error // the stream's end
}

// connect opens a stream with req.
func connect(t testing.TB, c pb.TaskHubSidecarServiceClient, req *pb.GetWorkItemsRequest) *sdk {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	_, err := c.Hello(ctx, nil)
	require.NoError(t, err)
	st, err := c.GetWorkItems(ctx, req)
	require.NoError(t, err)
	k := &sdk{t: t, c: c, cancel: cancel, items: make(chan *pb.WorkItem, 100), pings: make(chan struct{}, 100), ended: make(chan error, 1)}
	go func() {
		for {
			wi, err := st.Recv()
			if err != nil {
				k.ended <- err
				return
			}
			if wi.GetHealthPing() != nil {
				select {
				case k.pings <- struct{}{}:
				default:
				}
				continue
			}
			k.items <- wi
		}
	}()
	select { // the first ping: the stream is open, its names registered
	case <-k.pings:
	case err := <-k.ended:
		t.Fatalf("the stream ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no first health ping within 10s")
	}
	return k
}

// filters makes a request announcing names.
func filters(orchs, acts []string) *pb.GetWorkItemsRequest {
	f := &pb.WorkItemFilters{}
	for _, o := range orchs {
		f.Orchestrations = append(f.Orchestrations, &pb.OrchestrationFilter{Name: o})
	}
	for _, a := range acts {
		f.Activities = append(f.Activities, &pb.ActivityFilter{Name: a})
	}
	return &pb.GetWorkItemsRequest{WorkItemFilters: f}
}

// next returns the next work item.
func (k *sdk) next(d time.Duration) *pb.WorkItem {
	k.t.Helper()
	select {
	case wi := <-k.items:
		return wi
	case err := <-k.ended:
		k.t.Fatalf("the stream ended: %v", err)
	case <-time.After(d):
		k.t.Fatalf("no work item within %s", d)
	}
	return nil
}

// orchFunc decides a turn as an SDK would: the actions not yet in history.
type orchFunc func(r *pb.OrchestratorRequest) (actions []*pb.OrchestratorAction, custom *wrapperspb.StringValue)

// actFunc runs an activity.
type actFunc func(r *pb.ActivityRequest) (result *wrapperspb.StringValue, failure *pb.TaskFailureDetails)

// serve answers every work item with orchs and acts until the test ends.
func (k *sdk) serve(orchs map[string]orchFunc, acts map[string]actFunc) {
	go func() {
		for {
			var wi *pb.WorkItem
			select {
			case wi = <-k.items:
			case <-k.ended:
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if r := wi.GetOrchestratorRequest(); r != nil {
				actions, custom := orchs[nameOf(r)](r)
				_, _ = k.c.CompleteOrchestratorTask(ctx, &pb.OrchestratorResponse{InstanceId: r.GetInstanceId(), Actions: actions,
					CustomStatus: custom, CompletionToken: wi.GetCompletionToken()})
			} else if r := wi.GetActivityRequest(); r != nil {
				res, f := acts[r.GetName()](r)
				_, _ = k.c.CompleteActivityTask(ctx, &pb.ActivityResponse{InstanceId: r.GetOrchestrationInstance().GetInstanceId(),
					TaskId: r.GetTaskId(), Result: res, FailureDetails: f, CompletionToken: wi.GetCompletionToken()})
			}
			cancel()
		}
	}()
}

// nameOf is the orchestrator of a request.
func nameOf(r *pb.OrchestratorRequest) string {
	for _, h := range append(append([]*pb.HistoryEvent(nil), r.GetPastEvents()...), r.GetNewEvents()...) {
		if es := h.GetExecutionStarted(); es != nil {
			return es.GetName()
		}
	}
	return ""
}

// events returns a request's past and new events.
func events(r *pb.OrchestratorRequest) []*pb.HistoryEvent {
	return append(append([]*pb.HistoryEvent(nil), r.GetPastEvents()...), r.GetNewEvents()...)
}

// scheduled reports whether history has a scheduling event of id.
func scheduled(r *pb.OrchestratorRequest, id int32) bool {
	for _, h := range events(r) {
		if h.GetEventId() == id && (h.GetTaskScheduled() != nil || h.GetTimerCreated() != nil || h.GetSubOrchestrationInstanceCreated() != nil) {
			return true
		}
	}
	return false
}

// results returns the results of completed tasks, by task id.
func results(r *pb.OrchestratorRequest) map[int32]string {
	out := map[int32]string{}
	for _, h := range events(r) {
		if c := h.GetTaskCompleted(); c != nil {
			out[c.GetTaskScheduledId()] = c.GetResult().GetValue()
		}
		if c := h.GetSubOrchestrationInstanceCompleted(); c != nil {
			out[c.GetTaskScheduledId()] = c.GetResult().GetValue()
		}
	}
	return out
}

func input(r *pb.OrchestratorRequest) string {
	for _, h := range events(r) {
		if es := h.GetExecutionStarted(); es != nil {
			return es.GetInput().GetValue()
		}
	}
	return ""
}

func callActivity(id int32, name, in string) *pb.OrchestratorAction {
	a := &pb.ScheduleTaskAction{Name: name}
	if in != "" {
		a.Input = wrapperspb.String(in)
	}
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_ScheduleTask{ScheduleTask: a}}
}

func completeWith(id int32, out string) *pb.OrchestratorAction {
	c := &pb.CompleteOrchestrationAction{OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED}
	if out != "" {
		c.Result = wrapperspb.String(out)
	}
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: c}}
}

func failWith(id int32, f *pb.TaskFailureDetails) *pb.OrchestratorAction {
	return &pb.OrchestratorAction{Id: id, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{CompleteOrchestration: &pb.CompleteOrchestrationAction{
		OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_FAILED, FailureDetails: f}}}
}

// sequence is an SDK orchestrator that calls activity act once per item
// of cities (ids from 1, as the JavaScript SDK numbers them), setting its
// custom status to the city of the call before it, and completes with the
// results as a JSON array.
func sequence(act string, cities ...string) orchFunc {
	return func(r *pb.OrchestratorRequest) ([]*pb.OrchestratorAction, *wrapperspb.StringValue) {
		res := results(r)
		var custom *wrapperspb.StringValue
		for i := range cities {
			id := int32(i + 1)
			out, done := res[id]
			if !done {
				if scheduled(r, id) {
					return nil, custom
				}
				return []*pb.OrchestratorAction{callActivity(id, act, mustJSON(cities[i]))}, custom
			}
			custom = wrapperspb.String(mustJSON(cities[i]))
			_ = out
		}
		var outs []json.RawMessage
		for i := range cities {
			outs = append(outs, json.RawMessage(res[int32(i+1)]))
		}
		return []*pb.OrchestratorAction{completeWith(int32(len(cities)+1), mustJSON(outs))}, custom
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hello is an SDK activity: "Hello <input>!".
func hello(r *pb.ActivityRequest) (*wrapperspb.StringValue, *pb.TaskFailureDetails) {
	var name string
	if err := json.Unmarshal([]byte(r.GetInput().GetValue()), &name); err != nil {
		return nil, &pb.TaskFailureDetails{ErrorType: "TypeError", ErrorMessage: err.Error()}
	}
	return wrapperspb.String(mustJSON("Hello " + name + "!")), nil
}

// workerConfig is a sidecar worker configuration with an ack wait of d.
func workerConfig(d time.Duration) worker.Config { return worker.Config{AckWait: d} }

// waiterHub returns a client of a sidecar of its own, with an SDK stream
// that serves the orchestrator Waiter.
func waiterHub(t testing.TB) pb.TaskHubSidecarServiceClient {
	t.Helper()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"Waiter"}, nil))
	k.serve(map[string]orchFunc{"Waiter": waiter}, nil)
	return b.c
}
