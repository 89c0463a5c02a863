package jetflow

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	noop := func(*OrchestrationContext) (any, error) { return nil, nil }
	act := func(*ActivityContext) (any, error) { return nil, nil }

	r := NewRegistry()
	require.NoError(t, r.AddOrchestrator("b", noop))
	require.NoError(t, r.AddOrchestrator("a", noop))
	require.NoError(t, r.AddActivity("z", act))
	require.NoError(t, r.AddActivity("a", act), "activities and orchestrators have separate names")

	require.ErrorIs(t, r.AddOrchestrator("a", noop), ErrDuplicateName)
	require.ErrorIs(t, r.AddActivity("z", act), ErrDuplicateName)
	require.ErrorIs(t, r.AddOrchestrator("", noop), ErrInvalidName)
	require.ErrorIs(t, r.AddActivity("bad\nname", act), ErrInvalidName)
	require.Error(t, r.AddOrchestrator("nil", nil))
	require.Error(t, r.AddActivity("nil", nil))

	require.Equal(t, []string{"a", "b"}, r.OrchestratorNames())
	require.Equal(t, []string{"a", "z"}, r.ActivityNames())
	_, ok := r.Orchestrator("a")
	require.True(t, ok)
	_, ok = r.Orchestrator("A")
	require.False(t, ok)
	_, ok = r.Activity("z")
	require.True(t, ok)
	_, ok = r.Activity("nil")
	require.False(t, ok)

	// Concurrent reads are safe.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, _ = r.Activity("z")
			_ = r.OrchestratorNames()
		})
	}
	wg.Wait()
}

func TestRunActivity(t *testing.T) {
	t.Parallel()
	type ctxKey struct{}
	r := NewRegistry()
	require.NoError(t, r.AddActivity("Echo", func(ctx *ActivityContext) (any, error) {
		var in struct{ N int }
		in.N = -1
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		return map[string]any{
			"n": in.N, "name": ctx.Name(), "instance": ctx.InstanceID(), "task": ctx.TaskID(),
			"ctx": ctx.Context().Value(ctxKey{}),
		}, nil
	}))
	require.NoError(t, r.AddActivity("Nil", func(*ActivityContext) (any, error) { return nil, nil }))
	require.NoError(t, r.AddActivity("Err", func(*ActivityContext) (any, error) { return nil, errors.New("nope") }))
	require.NoError(t, r.AddActivity("Panic", func(*ActivityContext) (any, error) { panic("kaboom") }))
	require.NoError(t, r.AddActivity("PanicNil", func(*ActivityContext) (any, error) { panic(nil) }))
	require.NoError(t, r.AddActivity("Chan", func(*ActivityContext) (any, error) { return make(chan int), nil }))

	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	tests := []struct {
		name, activity string
		input          string
		want           string // result JSON
		wantType       string // failure type
		wantMsg        string
	}{
		{name: "Result", activity: "Echo", input: `{"N":7}`, want: `{"n":7,"name":"Echo","instance":"i1","task":3,"ctx":"v"}`},
		{name: "NullInput", activity: "Echo", input: `null`, want: `{"n":-1,"name":"Echo","instance":"i1","task":3,"ctx":"v"}`},
		{name: "NoInput", activity: "Echo", want: `{"n":-1,"name":"Echo","instance":"i1","task":3,"ctx":"v"}`},
		{name: "BadInput", activity: "Echo", input: `"x"`, wantType: "ActivityError", wantMsg: "invalid JSON: decoding input of activity \"Echo\""},
		{name: "Nil", activity: "Nil", want: `null`},
		{name: "Error", activity: "Err", wantType: "ActivityError", wantMsg: "nope"},
		{name: "Panic", activity: "Panic", wantType: "Panic", wantMsg: `activity "Panic" panicked: kaboom`},
		{name: "PanicNil", activity: "PanicNil", wantType: "Panic", wantMsg: `activity "PanicNil" panicked: panic called with nil argument`},
		{name: "NotRegistered", activity: "Missing", wantType: "ActivityNotRegistered", wantMsg: `activity "Missing" is not registered`},
		{name: "InvalidOutput", activity: "Chan", wantType: "InvalidOutput", wantMsg: `encoding the result of activity "Chan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in json.RawMessage
			if tt.input != "" {
				in = json.RawMessage(tt.input)
			}
			result, failure := r.runActivity(ctx, tt.activity, "i1", 3, in)
			if tt.wantType != "" {
				require.Nil(t, result)
				require.NotNil(t, failure)
				require.Equal(t, tt.wantType, failure.Type)
				require.Contains(t, failure.Message, tt.wantMsg)
				return
			}
			require.Nil(t, failure)
			require.JSONEq(t, tt.want, string(result))
		})
	}
}

func TestGetInputErrors(t *testing.T) {
	t.Parallel()
	a := &ActivityContext{name: "A", input: json.RawMessage(`{"x":1}`)}
	var n int
	require.ErrorIs(t, a.GetInput(&n), ErrInvalidInput)
	require.ErrorIs(t, a.GetInput(n), ErrInvalidInput, "not a pointer")
	require.NoError(t, a.GetInput(nil))
	m := map[string]int{"keep": 1}
	require.NoError(t, (&ActivityContext{input: json.RawMessage(" null ")}).GetInput(&m))
	require.Equal(t, map[string]int{"keep": 1}, m, "null leaves v alone")

	c := &OrchestrationContext{name: "O", input: json.RawMessage(`[1,2]`)}
	var s []int
	require.NoError(t, c.GetInput(&s))
	require.Equal(t, []int{1, 2}, s)
	require.ErrorIs(t, c.GetInput(&n), ErrInvalidInput)
}
