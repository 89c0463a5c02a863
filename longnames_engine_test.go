package jetflow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
)

// TestLongNamesRun: every name the registry accepts can be served: the
// worker starts with a 100-character Cyrillic activity name (600 bytes
// encoded), a 256-character ASCII one and a 256-emoji orchestrator name
// (3072 bytes encoded), and an instance with the longest id runs them.
func TestLongNamesRun(t *testing.T) {
	t.Parallel()
	cyrillic := strings.Repeat("ж", 100)
	ascii := strings.Repeat("a", 256)
	orch := strings.Repeat("😀", 256)
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		for _, name := range []string{cyrillic, ascii} {
			if err := r.AddActivity(name, func(ctx *jetflow.ActivityContext) (any, error) {
				return len([]rune(ctx.Name())), nil
			}); err != nil {
				return err
			}
		}
		return r.AddOrchestrator(orch, func(ctx *jetflow.OrchestrationContext) (any, error) {
			var a, b int
			if err := ctx.CallActivity(cyrillic, nil).Await(&a); err != nil {
				return nil, err
			}
			if err := ctx.CreateTimer(time.Millisecond).Await(nil); err != nil {
				return nil, err
			}
			err := ctx.CallActivity(ascii, nil).Await(&b)
			return []int{a, b}, err
		})
	}})
	ctx := e.Context(60 * time.Second)
	id := strings.Repeat("🙂", jetflow.MaxInstanceIDLength)
	_, err := e.Client.StartOrchestration(ctx, orch, client.WithInstanceID(id))
	require.NoError(t, err)
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s", st.Output)
	require.JSONEq(t, `[100,256]`, string(st.Output))
}

// TestRetryHandlePanicFailsOrchestration: a RetryPolicy.Handle that panics
// is the orchestration's own failure, named as such, not an engine bug.
func TestRetryHandlePanicFailsOrchestration(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		if err := r.AddActivity("Fails", func(*jetflow.ActivityContext) (any, error) {
			return nil, errors.New("no luck")
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("Retries", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.CallActivity("Fails", nil, jetflow.WithRetry(jetflow.RetryPolicy{
				MaxAttempts: 3, FirstRetryInterval: time.Second,
				Handle: func(*jetflow.TaskFailedError) bool { panic("handle blew up") },
			})).Await(nil)
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Retries")
	require.NoError(t, err)
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	out := string(st.Output)
	require.NotContains(t, out, "executor panicked")
	require.Contains(t, out, "Handle")
	require.Contains(t, out, "handle blew up")
}
