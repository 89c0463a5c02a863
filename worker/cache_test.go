package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
)

// TestStickyCacheBytes: the sticky cache keeps idle instances within
// Config.CacheBytes as well as Config.CacheSize; an instance evicted for
// its bytes is read from history at its next turn, and still finishes.
func TestStickyCacheBytes(t *testing.T) {
	t.Parallel()
	const input = 8 << 10 // each instance's history holds its 8 KiB input
	for _, tc := range []struct {
		name       string
		cacheBytes int64
		cached     int // instances the cache keeps of three
	}{
		{name: "default", cached: 3},
		{name: "room for two", cacheBytes: 20 << 10, cached: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testengine.New(t, testengine.Options{
				Worker: worker.Config{CacheBytes: tc.cacheBytes},
				Register: func(r *jetflow.Registry) error {
					return r.AddOrchestrator("Holder", func(ctx *jetflow.OrchestrationContext) (any, error) {
						var in string
						if err := ctx.GetInput(&in); err != nil {
							return nil, err
						}
						return len(in), ctx.WaitForExternalEvent("go").Await(nil)
					})
				},
			})
			w := e.Workers[0]
			ctx := e.Context(time.Minute)
			var ids []string
			for range 3 {
				id, err := e.Client.StartOrchestration(ctx, "Holder", client.WithInput(strings.Repeat("x", input)))
				require.NoError(t, err)
				ids = append(ids, id)
			}
			testkit.WaitFor(t, 30*time.Second, "the three to wait, idle", func() bool {
				for _, id := range ids {
					st, err := e.Client.GetStatus(ctx, id)
					if err != nil || st.RuntimeStatus != jetflow.StatusRunning {
						return false
					}
				}
				return w.Stats().Cached == tc.cached
			})
			s := w.Stats()
			if tc.cacheBytes > 0 {
				require.LessOrEqual(t, s.CachedBytes, tc.cacheBytes)
			}
			require.Greater(t, s.CachedBytes, int64(tc.cached*input), "each history is counted with its input")
			loads := s.Loads
			for _, id := range ids {
				require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", nil))
				st, err := e.Client.WaitForCompletion(ctx, id)
				require.NoError(t, err)
				require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
			}
			evicted := int64(3 - tc.cached)
			require.GreaterOrEqual(t, w.Stats().Loads-loads, evicted, "an evicted instance is read again")
			if evicted == 0 {
				require.Equal(t, loads, w.Stats().Loads, "every turn found its instance in the cache")
			}
		})
	}
}
