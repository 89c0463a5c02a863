package jetflow

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
)

var update = flag.Bool("update", false, "rewrite the golden histories in testdata/")

// golden is a recorded history in testdata/.
type golden struct {
	// Orchestrator and InstanceID say what ran.
	Orchestrator string `json:"orchestrator"`
	InstanceID   string `json:"instanceId"`
	// CustomStatus is the custom status at the end of the history.
	CustomStatus json.RawMessage `json:"customStatus"`
	// CarryOver is executor.TurnResult.CarryOver of the last turn.
	CarryOver []history.Event `json:"carryOver,omitempty"`
	// History is the execution's history, turn after turn.
	History []history.Event `json:"history"`
}

// goldenRegistry holds the orchestrators of the golden histories. With old
// set, Greeter, Reminder and Batch are the versions that recorded the bad
// histories; without, they are the changed versions that must fail to
// replay them.
func goldenRegistry(t testing.TB, old bool) *Registry {
	t.Helper()
	r := NewRegistry()
	acts := map[string]Activity{
		"SayHello": func(ctx *ActivityContext) (any, error) {
			var name string
			err := ctx.GetInput(&name)
			return "Hello " + name + "!", err
		},
		"Shout": func(ctx *ActivityContext) (any, error) {
			var s string
			err := ctx.GetInput(&s)
			return strings.ToUpper(s), err
		},
		"Double": func(ctx *ActivityContext) (any, error) {
			var n int
			err := ctx.GetInput(&n)
			return 2 * n, err
		},
		"Notify": func(*ActivityContext) (any, error) { return nil, nil },
	}
	for name, a := range acts {
		require.NoError(t, r.AddActivity(name, a))
	}
	call := func(ctx *OrchestrationContext, name string, in, out any) error {
		return ctx.CallActivity(name, in).Await(out)
	}
	orchs := map[string]Orchestrator{
		"HelloSequence": func(ctx *OrchestrationContext) (any, error) {
			var out []string
			for i, city := range []string{"Tokyo", "Seattle", "London"} {
				if err := ctx.SetCustomStatus(map[string]any{"step": i, "city": city}); err != nil {
					return nil, err
				}
				var s string
				if err := call(ctx, "SayHello", city, &s); err != nil {
					return nil, err
				}
				out = append(out, s)
			}
			return out, nil
		},
		"FanOutFanIn": func(ctx *OrchestrationContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			tasks := make([]Task, n)
			for i := range tasks {
				tasks[i] = ctx.CallActivity("Double", i+1)
			}
			var results []int
			if err := ctx.WhenAll(tasks...).Await(&results); err != nil {
				return nil, err
			}
			sum := 0
			for _, v := range results {
				sum += v
			}
			return sum, ctx.SetCustomStatus(fmt.Sprintf("summed %d results", len(results)))
		},
		"Approval": func(ctx *OrchestrationContext) (any, error) {
			if err := ctx.SetCustomStatus("waiting for approval"); err != nil {
				return nil, err
			}
			var approved bool
			err := ctx.WaitForExternalEvent("Approval", WithTimeout(time.Hour)).Await(&approved)
			if errors.Is(err, ErrTimeout) {
				if err := call(ctx, "Notify", "escalated", nil); err != nil {
					return nil, err
				}
				err = ctx.WaitForExternalEvent("Approval").Await(&approved)
			}
			if err != nil {
				return nil, err
			}
			var note string
			if err := ctx.WaitForExternalEvent("Note").Await(&note); err != nil {
				return nil, err
			}
			if err := ctx.CreateTimer(time.Minute).Await(nil); err != nil {
				return nil, err
			}
			var greetings []string
			if err := ctx.CallSubOrchestrator("HelloSequence", nil).Await(&greetings); err != nil {
				return nil, err
			}
			_ = ctx.SetCustomStatus("done")
			return map[string]any{"approved": approved, "note": note, "greetings": greetings}, nil
		},
		// ApprovalReminders is Durable Functions' "approval with
		// reminders": wait for Approval or a reminder timer, and after each
		// reminder wait again. Each round leaves the losing wait behind.
		"ApprovalReminders": func(ctx *OrchestrationContext) (any, error) {
			for i := 1; i <= 3; i++ {
				approval := ctx.WaitForExternalEvent("Approval")
				reminder := ctx.CreateTimer(2 * time.Second)
				var winner Task
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
				if err := call(ctx, "Notify", fmt.Sprintf("reminder %d", i), nil); err != nil {
					return nil, err
				}
				if err := ctx.SetCustomStatus(fmt.Sprintf("reminded %d times", i)); err != nil {
					return nil, err
				}
			}
			return "gave up", nil
		},
		"Counter": func(ctx *OrchestrationContext) (any, error) {
			var count int
			if err := ctx.GetInput(&count); err != nil {
				return nil, err
			}
			var add int
			if err := ctx.WaitForExternalEvent("Add").Await(&add); err != nil {
				return nil, err
			}
			ctx.ContinueAsNew(count + add)
			return nil, nil
		},
		"Greeter": func(ctx *OrchestrationContext) (any, error) {
			var a, b string
			if err := call(ctx, "SayHello", "a", &a); err != nil {
				return nil, err
			}
			second := "Shout" // changed from "SayHello"
			if old {
				second = "SayHello"
			}
			err := call(ctx, second, "b", &b)
			return []string{a, b}, err
		},
		"Reminder": func(ctx *OrchestrationContext) (any, error) {
			if err := call(ctx, "Notify", "start", nil); err != nil {
				return nil, err
			}
			if old {
				if err := call(ctx, "Notify", "again", nil); err != nil {
					return nil, err
				}
			} else if err := ctx.CreateTimer(time.Hour).Await(nil); err != nil { // changed
				return nil, err
			}
			return nil, call(ctx, "Notify", "done", nil)
		},
		"Batch": func(ctx *OrchestrationContext) (any, error) {
			items := []int{1, 2} // changed from 1, 2, 3
			if old {
				items = append(items, 3)
			}
			sum := 0
			for _, it := range items {
				var v int
				if err := call(ctx, "Double", it, &v); err != nil {
					return nil, err
				}
				sum += v
			}
			return sum, nil
		},
	}
	for name, o := range orchs {
		require.NoError(t, r.AddOrchestrator(name, o))
	}
	return r
}

// goldenScenarios record the histories; they run only with -update.
var goldenScenarios = []struct {
	file string
	old  bool // record with the old versions
	run  func(s *sim)
}{
	{file: "hello_sequence.json", run: func(s *sim) {
		s.start("HelloSequence", nil)
		s.run()
	}},
	{file: "fan_out_fan_in.json", run: func(s *sim) {
		s.start("FanOutFanIn", 5)
		// Results come back in two batches, out of order.
		all := s.completions()
		s.turn(all[3], all[0])
		s.turn(all[4], all[2], all[1])
	}},
	{file: "approval.json", run: func(s *sim) {
		s.start("Approval", nil)
		s.turn(raised(s.t, "note", "looks fine")) // buffered: nobody waits for it yet
		s.turn(s.fire(0))                         // the approval wait times out
		s.turn(s.completions()...)                // Notify
		s.turn(raised(s.t, "APPROVAL", true))
		s.run() // the timer, then the sub-orchestration
	}},
	{file: "continue_as_new.json", run: func(s *sim) {
		s.start("Counter", 5)
		s.turn(raised(s.t, "Other", "kept"), raised(s.t, "add", 3), raised(s.t, "Add", 4))
	}},
	// Recorded before the rule for external events changed: raised after
	// the first reminder, the approval goes to the abandoned first wait,
	// and the loop gives up.
	{file: "approval_reminders_v0.json", run: func(s *sim) {
		startUnder(s, history.RulesOldestWaiter, "ApprovalReminders", nil)
		approvalAfterReminder(s)
	}},
	// The same turns under the current rule: the approval goes to the
	// current wait.
	{file: "approval_reminders.json", run: func(s *sim) {
		startUnder(s, history.CurrentRules, "ApprovalReminders", nil)
		approvalAfterReminder(s)
	}},
	{file: "bad_activity_changed.json", old: true, run: func(s *sim) {
		s.start("Greeter", nil)
		s.run()
	}},
	{file: "bad_timer_instead_of_activity.json", old: true, run: func(s *sim) {
		s.start("Reminder", nil)
		s.run()
	}},
	{file: "bad_fewer_steps.json", old: true, run: func(s *sim) {
		s.start("Batch", nil)
		s.run()
	}},
}

// startUnder begins the execution under the given replay rules.
func startUnder(s *sim, rules history.Rules, name string, input any) *executor.TurnResult {
	s.t.Helper()
	return s.turn(history.Event{
		Type: history.ExecutionStarted, Name: name, Input: mustJSON(s.t, input), ExecutionID: s.id + "#1", Rules: rules,
	})
}

// approvalAfterReminder drives ApprovalReminders: the first reminder
// fires and is sent, then Approval is raised, then the run goes on.
func approvalAfterReminder(s *sim) {
	s.t.Helper()
	s.turn(s.fire(0))          // the first reminder timer wins the WhenAny
	s.turn(s.completions()...) // Notify "reminder 1"; the second round waits
	s.turn(raised(s.t, "Approval", true))
	s.run()
}

func readGolden(t *testing.T, file string) golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err, "run go test -run TestGolden -update to create it")
	var g golden
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.History)
	return g
}

// TestGoldenReplay replays the recorded histories in testdata/ turn by
// turn, as a worker would, and requires each turn to add exactly the
// events recorded; the bad ones were recorded by older versions of their
// orchestrators and must fail with a NonDeterminism error naming the step
// and both actions.
func TestGoldenReplay(t *testing.T) {
	t.Parallel()
	if *update {
		for _, sc := range goldenScenarios {
			s := newSim(t, goldenRegistry(t, sc.old), strings.TrimSuffix(sc.file, ".json"))
			sc.run(s)
			g := golden{
				Orchestrator: s.hist[1].Name, InstanceID: s.id, CustomStatus: orNull(s.last.CustomStatus),
				CarryOver: s.last.CarryOver, History: s.hist,
			}
			b, err := json.MarshalIndent(g, "", "  ")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join("testdata", sc.file), append(b, '\n'), 0o644))
		}
	}

	x := newReplayer(goldenRegistry(t, false), nil)
	for _, file := range []string{
		"hello_sequence.json", "fan_out_fan_in.json", "approval.json", "continue_as_new.json",
		"approval_reminders_v0.json", "approval_reminders.json",
	} {
		t.Run(strings.TrimSuffix(file, ".json"), func(t *testing.T) {
			t.Parallel()
			g := readGolden(t, file)
			turns := splitTurns(g.History)
			require.NotEmpty(t, turns)
			var past []history.Event
			var res *executor.TurnResult
			for i, turn := range turns {
				res = x.Execute(g.InstanceID, past, turn.newEvents)
				require.Equal(t, eventsJSON(t, turn.added), eventsJSON(t, res.Events), "turn %d adds what history recorded", i)
				past = append(append(past, turn.newEvents...), turn.added...)
			}
			require.True(t, res.Done, "the golden histories are complete")
			require.JSONEq(t, string(g.CustomStatus), string(orNull(res.CustomStatus)))
			require.Equal(t, eventsJSON(t, g.CarryOver), eventsJSON(t, res.CarryOver))
		})
	}

	bad := []struct {
		file string
		want []string
	}{
		{"bad_activity_changed.json", []string{
			`nondeterministic orchestrator "Greeter": at step #1`,
			`history has TaskScheduled #1 "SayHello"`,
			`but the orchestrator asked for TaskScheduled #1 "Shout"`,
		}},
		{"bad_timer_instead_of_activity.json", []string{
			`nondeterministic orchestrator "Reminder": at step #1`,
			`history has TaskScheduled #1 "Notify"`,
			`but the orchestrator asked for TimerCreated #1 at 2026-03-01T10:00:02Z`,
		}},
		{"bad_fewer_steps.json", []string{
			`nondeterministic orchestrator "Batch": at step #2`,
			`history has TaskScheduled #2 "Double" but the orchestrator asked for nothing`,
		}},
	}
	for _, tt := range bad {
		t.Run(strings.TrimSuffix(tt.file, ".json"), func(t *testing.T) {
			t.Parallel()
			g := readGolden(t, tt.file)
			n := len(g.History)
			require.Equal(t, history.ExecutionCompleted, g.History[n-1].Type)
			require.Equal(t, history.StatusCompleted, g.History[n-1].Status, "the old version completed")
			// Replaying the whole history, as when a late message arrives.
			later := g.History[n-1].Time.Add(time.Minute)
			res := x.Execute(g.InstanceID, g.History[:n-1], []history.Event{{Type: history.OrchestratorStarted, Time: later}})
			require.True(t, res.Done)
			require.Len(t, res.Events, 1)
			requireFailed(t, res.Events[0], FailureNonDeterminism, tt.want...)
			require.Equal(t, later, res.Events[0].Time)
		})
	}
}

type goldenTurn struct {
	newEvents []history.Event // OrchestratorStarted and the messages
	added     []history.Event // what the turn added: scheduling events, ExecutionCompleted
}

// splitTurns cuts a history at each OrchestratorStarted, and each turn into
// its messages and the events Execute added.
func splitTurns(h []history.Event) []goldenTurn {
	var turns []goldenTurn
	for _, e := range h {
		if e.Type == history.OrchestratorStarted || len(turns) == 0 {
			turns = append(turns, goldenTurn{})
		}
		cur := &turns[len(turns)-1]
		if e.IsScheduling() || e.Type == history.ExecutionCompleted {
			cur.added = append(cur.added, e)
		} else {
			cur.newEvents = append(cur.newEvents, e)
		}
	}
	return turns
}

func eventsJSON(t testing.TB, evs []history.Event) string {
	t.Helper()
	if len(evs) == 0 {
		return "[]"
	}
	b, err := json.MarshalIndent(evs, "", "  ")
	require.NoError(t, err)
	return string(b)
}

// TestEventDeliveryRules checks which pending WaitForExternalEvent an
// event goes to under each replay rule (history.Rules on
// ExecutionStarted): the newest under the current rule, as Durable
// Functions does, the oldest for executions started under the old one.
func TestEventDeliveryRules(t *testing.T) {
	t.Parallel()
	reg := goldenRegistry(t, false)
	addOrchestrator(t, reg, "TwoWaits", func(ctx *OrchestrationContext) (any, error) {
		var first, second string
		w1 := ctx.WaitForExternalEvent("E")
		w2 := ctx.WaitForExternalEvent("e")
		if err := ctx.WhenAll(w1, w2).Await(nil); err != nil {
			return nil, err
		}
		if err := w1.Await(&first); err != nil {
			return nil, err
		}
		if err := w2.Await(&second); err != nil {
			return nil, err
		}
		// Events that arrived before anyone waited go out oldest first.
		if err := ctx.CallActivity("Notify", nil).Await(nil); err != nil {
			return nil, err
		}
		var a, b string
		if err := ctx.WaitForExternalEvent("B").Await(&a); err != nil {
			return nil, err
		}
		if err := ctx.WaitForExternalEvent("B").Await(&b); err != nil {
			return nil, err
		}
		return []string{first, second, a, b}, nil
	})

	t.Run("ApprovalAfterReminder", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, reg, "reminders")
		startUnder(s, history.CurrentRules, "ApprovalReminders", nil)
		approvalAfterReminder(s)
		requireCompleted(t, s.final(), `{"approved":true,"reminders":1}`)
		require.Equal(t, `"reminded 1 times"`, string(s.last.CustomStatus))
	})
	t.Run("ApprovalAfterReminderOldRule", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, reg, "reminders-v0")
		startUnder(s, history.RulesOldestWaiter, "ApprovalReminders", nil)
		approvalAfterReminder(s)
		requireCompleted(t, s.final(), `"gave up"`)
	})
	for _, tt := range []struct {
		rules history.Rules
		want  string
	}{
		{history.RulesOldestWaiter, `["1st","2nd","b1","b2"]`},
		{history.RulesNewestWaiter, `["2nd","1st","b1","b2"]`},
	} {
		t.Run(fmt.Sprintf("TwoWaitsRules%d", tt.rules), func(t *testing.T) {
			t.Parallel()
			s := newSim(t, reg, fmt.Sprintf("two-%d", tt.rules))
			startUnder(s, tt.rules, "TwoWaits", nil)
			s.turn(raised(t, "e", "1st"), raised(t, "B", "b1"))
			s.turn(raised(t, "E", "2nd"), raised(t, "b", "b2"))
			s.run()
			requireCompleted(t, s.final(), tt.want)
		})
	}
	t.Run("UnknownRules", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, reg, "future")
		res := startUnder(s, history.CurrentRules+1, "ApprovalReminders", nil)
		require.True(t, res.Done)
		requireFailed(t, s.final(), FailureInvalidHistory,
			fmt.Sprintf("replay rules %d", history.CurrentRules+1), "upgrade")
	})
}

// TestGoldenRulesMatter replays the history recorded under the old rule
// as if it had started under the current one: it diverges, which is why
// an execution keeps the rule it started with.
func TestGoldenRulesMatter(t *testing.T) {
	t.Parallel()
	g := readGolden(t, "approval_reminders_v0.json")
	require.Equal(t, history.RulesOldestWaiter, g.History[1].Rules)
	g.History[1].Rules = history.CurrentRules
	n := len(g.History)
	x := newReplayer(goldenRegistry(t, false), nil)
	res := x.Execute(g.InstanceID, g.History[:n-1], nil)
	require.True(t, res.Done)
	requireFailed(t, res.Events[0], FailureNonDeterminism,
		`history has TaskScheduled #3 "Notify" but the orchestrator asked for nothing`)
}
