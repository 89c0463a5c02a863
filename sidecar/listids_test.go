package sidecar

import (
	"testing"
	"time"

	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestListInstanceIds: the SDK clients' listInstanceIds pages through
// instance ids by runtime status and completed time; bad filters are
// refused.
func TestListInstanceIds(t *testing.T) {
	t.Parallel()
	c := waiterHub(t)
	ctx := ctxFor(t, 30*time.Second)
	began := time.Now()
	for _, id := range []string{"ids-a", "ids-b", "ids-c"} {
		_, err := c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "Waiter", InstanceId: id})
		require.NoError(t, err)
	}
	for _, id := range []string{"ids-a", "ids-c"} {
		_, err := c.RaiseEvent(ctx, &pb.RaiseEventRequest{InstanceId: id, Name: "Go", Input: wrapperspb.String(`1`)})
		require.NoError(t, err)
		_, err = c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: id})
		require.NoError(t, err)
	}
	list := func(req *pb.ListInstanceIdsRequest) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			resp, err := c.ListInstanceIds(ctx, req)
			require.NoError(t, err)
			ids = append(ids, resp.GetInstanceIds()...)
			if resp.GetLastInstanceKey() == nil {
				return ids
			}
			req.LastInstanceKey = resp.GetLastInstanceKey()
		}
	}
	completed := []pb.OrchestrationStatus{pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED}
	require.Equal(t, []string{"ids-a", "ids-b", "ids-c"}, list(&pb.ListInstanceIdsRequest{PageSize: 2}), "every id, over two pages")
	require.Equal(t, []string{"ids-a", "ids-c"}, list(&pb.ListInstanceIdsRequest{RuntimeStatus: completed}))
	require.Equal(t, []string{"ids-a", "ids-c"}, list(&pb.ListInstanceIdsRequest{CompletedTimeFrom: timestamppb.New(began)}),
		"finished since the start: not the one still running")
	require.Empty(t, list(&pb.ListInstanceIdsRequest{CompletedTimeFrom: timestamppb.New(time.Now().Add(time.Hour))}))
	require.Empty(t, list(&pb.ListInstanceIdsRequest{CompletedTimeTo: timestamppb.New(began.Add(-time.Hour))}))

	for what, req := range map[string]*pb.ListInstanceIdsRequest{
		"a negative page size": {PageSize: -1},
		"an unknown status":    {RuntimeStatus: []pb.OrchestrationStatus{99}},
		"an empty time range":  {CompletedTimeFrom: timestamppb.New(began), CompletedTimeTo: timestamppb.New(began.Add(-time.Hour))},
	} {
		_, err := c.ListInstanceIds(ctx, req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%s: %v", what, err)
	}
}
