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

// Execute replays a turn; it never fails (see executor.Executor).
func (x goExecutor) Execute(_ context.Context, instanceID string, past, newEvents []history.Event) (*executor.TurnResult, error) {
	return x.replayer.Execute(instanceID, past, newEvents), nil
}

// Release unwinds the replays the executor keeps between turns (see
// executor.Releaser); a later turn replays from the start.
func (x goExecutor) Release() { x.sessions.release() }

// RunActivity runs the task's activity, its SetProgress reports going to
// progress; it never fails (the activity's error is its failure).
func (x goExecutor) RunActivity(ctx context.Context, t executor.Task, progress func(json.RawMessage) error) (json.RawMessage, *history.Failure, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if progress != nil {
		ctx = context.WithValue(ctx, progressKey{}, progressReporter(progress))
	}
	result, failure := x.registry.runActivity(ctx, t.Name, t.InstanceID, t.TaskID, t.Input)
	return result, failure, nil
}
