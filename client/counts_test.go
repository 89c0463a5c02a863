package client_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/stretchr/testify/require"
)

// TestInstanceCounts counts statuses written straight to the bucket, small
// and large (the index keeps only some fields of those), and follows a
// change and a deletion.
func TestInstanceCounts(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	big := json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)
	var sts []jetflow.Status
	add := func(id, name string, rs jetflow.RuntimeStatus, input json.RawMessage) {
		sts = append(sts, jetflow.Status{InstanceID: id, Name: name, RuntimeStatus: rs, Input: input})
	}
	add("a1", "A", jetflow.StatusRunning, nil)
	add("a2", "A", jetflow.StatusRunning, big)
	add("a3", "A", jetflow.StatusCompleted, nil)
	add("b1", "B", jetflow.StatusPending, big)
	putStatuses(t, e.Storage, sts)
	counts, err := e.Client.InstanceCounts(t.Context())
	require.NoError(t, err)
	require.Equal(t, []client.InstanceCount{
		{Orchestrator: "A", RuntimeStatus: jetflow.StatusCompleted, Count: 1},
		{Orchestrator: "A", RuntimeStatus: jetflow.StatusRunning, Count: 2},
		{Orchestrator: "B", RuntimeStatus: jetflow.StatusPending, Count: 1},
	}, counts)

	se, err := e.Storage.GetStatus(t.Context(), "a2")
	require.NoError(t, err)
	se.Status.RuntimeStatus = jetflow.StatusFailed
	_, err = e.Storage.PutStatus(t.Context(), "a2", &se.Status, se.Revision)
	require.NoError(t, err)
	se, err = e.Storage.GetStatus(t.Context(), "b1")
	require.NoError(t, err)
	require.NoError(t, e.Storage.DeleteStatus(t.Context(), "b1", se.Revision))
	counts, err = e.Client.InstanceCounts(t.Context())
	require.NoError(t, err)
	require.Equal(t, []client.InstanceCount{
		{Orchestrator: "A", RuntimeStatus: jetflow.StatusCompleted, Count: 1},
		{Orchestrator: "A", RuntimeStatus: jetflow.StatusFailed, Count: 1},
		{Orchestrator: "A", RuntimeStatus: jetflow.StatusRunning, Count: 1},
	}, counts)
}
