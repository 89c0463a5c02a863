package jetflow

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
)

// goExecutor is the worker's executor of the Go orchestrators and
// activities of a registry: the replayer for turns, the registry for
// activity tasks.
type goExecutor struct {
	*replayer
}

func init() {
	executor.SetGo(func(registry any, logger *slog.Logger) executor.Executor {
		return goExecutor{newReplayer(registry.(*Registry), logger)}
	})
}

// RunActivity runs the task's activity, its SetProgress reports going to
// progress.
func (x goExecutor) RunActivity(ctx context.Context, t executor.Task, progress func(json.RawMessage) error) (json.RawMessage, *history.Failure) {
	if ctx == nil {
		ctx = context.Background()
	}
	if progress != nil {
		ctx = context.WithValue(ctx, progressKey{}, progressReporter(progress))
	}
	return x.registry.runActivity(ctx, t.Name, t.InstanceID, t.TaskID, t.Input)
}
