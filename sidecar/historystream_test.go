package sidecar

import (
	"errors"
	"io"
	"testing"
	"time"

	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestStreamInstanceHistory: the SDK clients' getOrchestrationHistory
// reads an instance's current execution, or the one named, as a work item
// would carry it; unknown instances and executions are NotFound.
func TestStreamInstanceHistory(t *testing.T) {
	t.Parallel()
	c := waiterHub(t)
	ctx := ctxFor(t, 30*time.Second)
	read := func(id, exec string) ([]*pb.HistoryEvent, error) {
		req := &pb.StreamInstanceHistoryRequest{InstanceId: id}
		if exec != "" {
			req.ExecutionId = wrapperspb.String(exec)
		}
		st, err := c.StreamInstanceHistory(ctx, req)
		require.NoError(t, err)
		var events []*pb.HistoryEvent
		for {
			chunk, err := st.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return events, nil
				}
				return events, err
			}
			events = append(events, chunk.GetEvents()...)
		}
	}

	_, err := c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: "hist-1", Input: wrapperspb.String(`"in"`)})
	require.NoError(t, err)
	_, err = c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: "hist-1", Name: "Go", Input: wrapperspb.String(`"go!"`)})
	require.NoError(t, err)
	got, err := c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "hist-1"})
	require.NoError(t, err)
	require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, got.GetOrchestrationState().GetOrchestrationStatus())

	events, err := read("hist-1", "")
	require.NoError(t, err)
	var kinds []string
	var exec string
	for _, e := range events {
		switch {
		case e.GetExecutionStarted() != nil:
			kinds = append(kinds, "started")
			require.Equal(t, "Waiter", e.GetExecutionStarted().GetName())
			require.Equal(t, `"in"`, e.GetExecutionStarted().GetInput().GetValue())
			exec = e.GetExecutionStarted().GetOrchestrationInstance().GetExecutionId().GetValue()
		case e.GetEventRaised() != nil:
			kinds = append(kinds, "raised")
			require.Equal(t, `"go!"`, e.GetEventRaised().GetInput().GetValue())
		case e.GetExecutionCompleted() != nil:
			kinds = append(kinds, "completed")
			require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, e.GetExecutionCompleted().GetOrchestrationStatus())
		}
		require.NotNil(t, e.GetTimestamp())
	}
	require.Equal(t, []string{"started", "raised", "completed"}, kinds)
	require.NotEmpty(t, exec)

	named, err := read("hist-1", exec)
	require.NoError(t, err)
	require.Len(t, named, len(events), "the execution by its id")

	_, err = read("hist-1", "no-such-execution")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = read("nobody", "")
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = read("a/b", "")
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

// TestHistoryChunks: a history streams in chunks of at most the limit,
// in order, an event over the limit alone in its chunk.
func TestHistoryChunks(t *testing.T) {
	t.Parallel()
	var events []*pb.HistoryEvent
	for i := range 10 {
		events = append(events, &pb.HistoryEvent{EventId: int32(i), EventType: &pb.HistoryEvent_EventRaised{
			EventRaised: &pb.EventRaisedEvent{Name: "e", Input: wrapperspb.String(string(make([]byte, 100)))}}})
	}
	events[7].GetEventRaised().Input = wrapperspb.String(string(make([]byte, 1000)))
	one := proto.Size(events[1]) // events 1 to 9 but 7 are this size (0 is smaller: its id is not encoded)
	chunks := historyChunks(events, 3*one)
	var sizes []int
	var ids []int32
	for _, c := range chunks {
		sizes = append(sizes, len(c.GetEvents()))
		for _, e := range c.GetEvents() {
			ids = append(ids, e.GetEventId())
		}
	}
	require.Equal(t, []int{3, 3, 1, 1, 2}, sizes)
	require.Equal(t, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ids)
	require.Empty(t, historyChunks(nil, one))
}
