package client_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
)

// labelled is what the orchestrators of TestVersionAndTags return: the
// version and tags they saw.
type labelled struct {
	Version string            `json:"version"`
	Tags    map[string]string `json:"tags"`
	Child   *labelled         `json:"child,omitempty"`
}

// TestVersionAndTags: a run's version and tags reach the orchestrator,
// its status (and the status JSON), the executions it continues as, and
// its sub-orchestrations (tags inherited, the call's winning; a version
// only when the call gives one). Invalid ones are refused before anything
// is stored.
func TestVersionAndTags(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddOrchestrator("Labels", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var gen int
			if err := ctx.GetInput(&gen); err != nil {
				return nil, err
			}
			if gen == 0 {
				ctx.ContinueAsNew(1)
				return nil, nil
			}
			var child labelled
			err := ctx.CallSubOrchestrator("Child", nil, jetflow.WithSubVersion("1.5"),
				jetflow.WithSubTags(map[string]string{"team": "child", "level": "2"})).Await(&child)
			return labelled{Version: ctx.Version(), Tags: ctx.Tags(), Child: &child}, err
		})
		return r.AddOrchestrator("Child", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return labelled{Version: ctx.Version(), Tags: ctx.Tags()}, nil
		})
	}})
	ctx := e.Context(30 * time.Second)
	c := e.Client
	tags := map[string]string{"team": "payments", "env": "test"}
	id, err := c.StartOrchestration(ctx, "Labels", client.WithInput(0), client.WithVersion("2.0.0"), client.WithTags(tags))
	require.NoError(t, err)
	tags["team"] = "changed after the call" // the option copied the map
	done, err := c.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, done.RuntimeStatus, "output %s", done.Output)
	require.Equal(t, "2.0.0", done.Version)
	require.Equal(t, map[string]string{"team": "payments", "env": "test"}, done.Tags)
	var out labelled
	require.NoError(t, json.Unmarshal(done.Output, &out))
	require.Equal(t, labelled{Version: "2.0.0", Tags: map[string]string{"team": "payments", "env": "test"},
		Child: &labelled{Version: "1.5", Tags: map[string]string{"team": "child", "env": "test", "level": "2"}}}, out,
		"the execution it continued as kept both; the child inherited the tags")
	b, err := json.Marshal(done)
	require.NoError(t, err)
	require.Contains(t, string(b), `"version":"2.0.0"`)
	require.Contains(t, string(b), `"tags":{"env":"test","team":"payments"}`)

	plain, err := c.StartOrchestration(ctx, "Child")
	require.NoError(t, err)
	st, err := c.WaitForCompletion(ctx, plain)
	require.NoError(t, err)
	b, err = json.Marshal(st)
	require.NoError(t, err)
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &keys))
	require.NotContains(t, keys, "version", "a run without a version keeps the Durable Functions shape")
	require.NotContains(t, keys, "tags")

	for name, opt := range map[string]client.StartOption{
		"long version":    client.WithVersion(strings.Repeat("v", jetflow.MaxVersionLength+1)),
		"control version": client.WithVersion("1.0\n"),
		"empty tag key":   client.WithTags(map[string]string{"": "x"}),
		"long tag value":  client.WithTags(map[string]string{"k": strings.Repeat("x", jetflow.MaxTagValueLength+1)}),
		"too many tags":   client.WithTags(manyTags(jetflow.MaxTags + 1)),
	} {
		_, err := c.StartOrchestration(ctx, "Child", client.WithInstanceID("bad"), opt)
		require.ErrorIs(t, err, jetflow.ErrInvalidOption, name)
	}
	_, err = c.GetStatus(ctx, "bad")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a refused start stores nothing")
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("k", i+1)] = "v"
	}
	return m
}
