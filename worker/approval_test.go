package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/stretchr/testify/require"
)

// approvalWithReminders is Durable Functions' "approval with reminders":
// wait for Approval or a 2 s reminder timer; after a reminder, send it and
// wait again. Every round leaves the wait that lost the WhenAny behind.
func approvalWithReminders(ctx *jetflow.OrchestrationContext) (any, error) {
	for i := 1; i <= 3; i++ {
		approval := ctx.WaitForExternalEvent("Approval")
		reminder := ctx.CreateTimer(2 * time.Second)
		var winner jetflow.Task
		if err := ctx.WhenAny(approval, reminder).Await(&winner); err != nil {
			return nil, err
		}
		if winner == approval {
			var approved bool
			if err := approval.Await(&approved); err != nil {
				return nil, err
			}
			return map[string]any{"approved": approved, "reminders": i - 1}, nil
		}
		if err := ctx.CallActivity("SendReminder", i).Await(nil); err != nil {
			return nil, err
		}
		if err := ctx.SetCustomStatus(fmt.Sprintf("reminded %d times", i)); err != nil {
			return nil, err
		}
	}
	return "gave up", nil
}

// TestApprovalAfterReminder raises Approval after the first reminder, on
// a real engine, and requires the loop to see it (defect 12 of issue 9:
// the event went to the abandoned first wait, and the loop gave up). The
// execution that waits is started by a client, as a sub-orchestration, and
// by a continue-as-new: each must start under the current replay rules.
func TestApprovalAfterReminder(t *testing.T) {
	t.Parallel()
	var reminders atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return errors.Join(
			r.AddActivity("SendReminder", func(*jetflow.ActivityContext) (any, error) { reminders.Add(1); return nil, nil }),
			r.AddOrchestrator("ApprovalWithReminders", approvalWithReminders),
			r.AddOrchestrator("ApprovalParent", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var out any
				err := ctx.CallSubOrchestrator("ApprovalWithReminders", nil,
					jetflow.WithSubInstanceID(ctx.InstanceID()+"-child")).Await(&out)
				return out, err
			}),
			r.AddOrchestrator("ApprovalContinued", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var round int
				if err := ctx.GetInput(&round); err != nil {
					return nil, err
				}
				if round == 0 {
					ctx.ContinueAsNew(1)
					return nil, nil
				}
				return approvalWithReminders(ctx)
			}),
		)
	}})

	for _, tt := range []struct {
		name         string
		orchestrator string
		waiter       func(id string) string // the instance that waits for Approval
	}{
		{name: "Started", orchestrator: "ApprovalWithReminders", waiter: func(id string) string { return id }},
		{name: "SubOrchestration", orchestrator: "ApprovalParent", waiter: func(id string) string { return id + "-child" }},
		{name: "ContinuedAsNew", orchestrator: "ApprovalContinued", waiter: func(id string) string { return id }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := e.Context(60 * time.Second)
			id, err := e.Client.StartOrchestration(ctx, tt.orchestrator, client.WithInstanceID("approval-"+tt.name))
			require.NoError(t, err)
			waiter := tt.waiter(id)
			waitCustom(t, e, waiter, `"reminded 1 times"`)
			require.NoError(t, e.Client.RaiseEvent(ctx, waiter, "Approval", true))

			st, err := e.Client.WaitForCompletion(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
			var out struct {
				Approved  bool `json:"approved"`
				Reminders int  `json:"reminders"`
			}
			require.NoError(t, json.Unmarshal(st.Output, &out), "output %s: the approval was lost", st.Output)
			require.True(t, out.Approved)
			require.GreaterOrEqual(t, out.Reminders, 1)

			started := lastStart(t, e, waiter)
			require.Equal(t, history.CurrentRules, started.Rules, "the waiting execution runs under the current rules")
		})
	}
}

// lastStart returns the ExecutionStarted of an instance's current
// execution, from its stored history.
func lastStart(t *testing.T, e *testengine.Engine, id string) history.Event {
	t.Helper()
	chunks, err := e.Storage.LoadHistory(context.Background(), id)
	require.NoError(t, err)
	var started *history.Event
	for _, c := range chunks {
		for i := range c.Events {
			if c.Events[i].Type == history.ExecutionStarted {
				started = &c.Events[i]
			}
		}
	}
	require.NotNil(t, started, "history of %s has no ExecutionStarted", id)
	return *started
}
