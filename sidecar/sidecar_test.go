package sidecar

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestHelloSequenceOverGRPC runs E1_HelloSequence in a fake SDK (its
// orchestrator and activity over one stream) and follows its custom
// status through the Go client's status watch: Tokyo, Seattle, London.
func TestHelloSequenceOverGRPC(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, Config{})
	k := connect(t, b.c, filters([]string{"E1_HelloSequence"}, []string{"E1_SayHello"}))
	k.serve(map[string]orchFunc{"E1_HelloSequence": sequence("E1_SayHello", "Tokyo", "Seattle", "London")},
		map[string]actFunc{"E1_SayHello": hello})
	ctx := ctxFor(t, 30*time.Second)

	resp, err := b.c.StartInstance(ctx, &pb.CreateInstanceRequest{Name: "E1_HelloSequence", InstanceId: "seq-1", Input: wrapperspb.String("")})
	require.NoError(t, err)
	require.Equal(t, "seq-1", resp.GetInstanceId())
	updates, err := b.e.Client.WatchStatus(ctx, "seq-1", 0)
	require.NoError(t, err)
	var customs []string
	for u := range updates {
		if c := string(u.Status.CustomStatus); c != "" && c != "null" && (len(customs) == 0 || customs[len(customs)-1] != c) {
			customs = append(customs, c)
		}
		if u.Status.Finished() {
			require.Equal(t, jetflow.StatusCompleted, u.Status.RuntimeStatus)
			require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(u.Status.Output))
			require.Equal(t, "null", orNull(u.Status.Input), `"" is no input`)
		}
	}
	require.Equal(t, []string{`"Tokyo"`, `"Seattle"`, `"London"`}, customs)

	got, err := b.c.WaitForInstanceCompletion(ctx, &pb.GetInstanceRequest{InstanceId: "seq-1", GetInputsAndOutputs: true})
	require.NoError(t, err)
	require.True(t, got.GetExists())
	st := got.GetOrchestrationState()
	require.Equal(t, pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED, st.GetOrchestrationStatus())
	require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, st.GetOutput().GetValue())
	require.Equal(t, `"London"`, st.GetCustomStatus().GetValue())
	require.Nil(t, st.GetInput())

	chunks, err := b.e.Storage.LoadHistory(ctx, "seq-1")
	require.NoError(t, err)
	var ids []int32
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.TaskScheduled {
				ids = append(ids, e.ID)
			}
		}
	}
	require.Equal(t, []int32{1, 2, 3}, ids, "task ids as the SDK numbered them, from 1")
}

func orNull(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	return string(b)
}

var _ = testkit.WaitFor
