package jetflow

import (
	"encoding/json"
	"errors"
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

// FuzzExecute replays mutated histories: Execute must not panic (not even
// the panic it recovers from as an "executor panicked" failure), must not
// hang, and must either go on (scheduling events only) or end the
// execution with a well-formed ExecutionCompleted, a failure saying what
// went wrong. For histories a worker could hold, replaying the history
// with what the turn added must reproduce the turn.
//
// An input is either JSON (a history, split after its last
// OrchestratorStarted into past and this turn's events) or the compact
// form of fuzzHistory, which the mutator explores better. The seeds in
// testdata/fuzz/FuzzExecute are the golden histories in both forms; write
// them again with go test -run TestFuzzExecuteSeeds -update.
func FuzzExecute(f *testing.F) {
	x := newReplayer(fuzzRegistry(f), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		past, newEvents, ok := fuzzHistory(data)
		if !ok {
			return
		}
		res := executeWithin(t, x, past, newEvents)
		checkTurn(t, res, payloadsValid(past, newEvents))
		again := executeWithin(t, x, past, newEvents)
		require.Equal(t, res, again, "Execute is deterministic")
		if !workerShaped(past, newEvents) {
			return
		}
		hist := append(append(append([]history.Event(nil), past...), newEvents...), res.Events...)
		if res.Done {
			if len(res.Events) == 0 {
				return
			}
			n := len(hist)
			replayed := executeWithin(t, x, hist[:n-1], nil)
			require.Equal(t, hist[n-1:], replayed.Events, "replaying the history ends it the same way:\n%s", dump(hist))
			return
		}
		replayed := executeWithin(t, x, hist, nil)
		require.Empty(t, replayed.Events, "replaying the history asks for nothing new:\n%s", dump(hist))
		require.Equal(t, string(res.CustomStatus), string(replayed.CustomStatus), "replaying the history gives the same custom status")
	})
}

// executeWithin runs Execute, failing the test if it does not return
// within a few seconds (a fuzz input that hangs would otherwise only stop
// at the test binary's timeout).
func executeWithin(t *testing.T, x *replayer, past, newEvents []history.Event) *executor.TurnResult {
	t.Helper()
	done := make(chan *executor.TurnResult, 1)
	go func() { done <- x.Execute("fuzz", past, newEvents) }()
	select {
	case res := <-done:
		require.NotNil(t, res)
		return res
	case <-time.After(10 * time.Second):
		t.Fatalf("Execute did not return within 10s\npast:\n%s\nnew:\n%s", dump(past), dump(newEvents))
		return nil
	}
}

// dump shows events one a line, as JSON where they encode (a fuzzed
// payload may not be JSON).
func dump(evs []history.Event) string {
	var b strings.Builder
	for _, e := range evs {
		j, err := json.Marshal(e)
		if err != nil {
			j = fmt.Appendf(nil, "%+v", e)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// knownFailures are the failure types an execution can end with.
var knownFailures = []string{
	FailureNonDeterminism, FailureOrchestratorError, FailureOrchestratorNotRegistered, FailureInvalidHistory,
	FailureInvalidInput, FailurePanic, FailureInvalidOutput,
}

// payloadsValid reports whether every input and result in the events is
// JSON (or empty), as the dispatcher and the executor write them.
func payloadsValid(lists ...[]history.Event) bool {
	for _, evs := range lists {
		for _, e := range evs {
			for _, p := range []json.RawMessage{e.Input, e.Result} {
				if len(p) > 0 && !json.Valid(p) {
					return false
				}
			}
		}
	}
	return true
}

// checkTurn checks the shape of a turn's result. With jsonIn, the
// history's payloads were JSON, and so must the execution's result be (a
// termination reason is passed on as it is).
func checkTurn(t *testing.T, res *executor.TurnResult, jsonIn bool) {
	t.Helper()
	for i, e := range res.Events {
		last := i == len(res.Events)-1
		if e.Type == history.ExecutionCompleted {
			require.True(t, last, "ExecutionCompleted ends the events:\n%s", dump(res.Events))
			continue
		}
		require.True(t, e.IsScheduling(), "a turn adds scheduling events and an ExecutionCompleted, not %s", e.Describe())
	}
	n := len(res.Events)
	ended := n > 0 && res.Events[n-1].Type == history.ExecutionCompleted
	require.Equal(t, ended, res.Done && n > 0, "Done is set when the turn ends the execution")
	if !ended {
		require.Empty(t, res.CarryOver)
		return
	}
	end := res.Events[n-1]
	switch end.Status {
	case history.StatusCompleted, history.StatusTerminated, history.StatusContinuedAsNew:
		require.Nil(t, end.Failure)
		require.True(t, !jsonIn || json.Valid(end.Result), "the result is JSON: %q", end.Result)
	case history.StatusFailed:
		require.NotNil(t, end.Failure)
		require.NotEqual(t, FailureExecutorError, end.Failure.Type, "the executor panicked: %s", end.Failure.Message)
		require.Contains(t, knownFailures, end.Failure.Type, end.Failure.Message)
		require.NotEmpty(t, strings.TrimSpace(end.Failure.Message))
	default:
		t.Fatalf("ExecutionCompleted with status %s", end.Status)
	}
	if end.Status != history.StatusContinuedAsNew {
		require.Empty(t, res.CarryOver)
	}
	if end.Status != history.StatusCompleted {
		require.Len(t, res.Events, 1, "an execution that did not complete schedules nothing more")
	}
}

// workerShaped reports whether a worker could hand Execute these events:
// one ExecutionStarted, first in its execution; no ExecutionCompleted (a
// finished execution is not run again); and scheduling events among the
// new events only after an ExecutionRewound there (the rewind's turn sends
// again what the failure left pending).
func workerShaped(past, newEvents []history.Event) bool {
	rewind := false
	for _, e := range newEvents {
		rewind = rewind || e.Type == history.ExecutionRewound
		if e.IsScheduling() && !rewind {
			return false
		}
	}
	all := append(append([]history.Event(nil), past...), newEvents...)
	starts := 0
	for i, e := range all {
		switch e.Type {
		case history.ExecutionCompleted:
			return false
		case history.ExecutionStarted:
			starts++
			for _, before := range all[:i] {
				if before.Type != history.OrchestratorStarted {
					return false
				}
			}
		}
	}
	return starts == 1
}

// fuzzRegistry has the golden orchestrators and one that mixes every kind
// of task.
func fuzzRegistry(t testing.TB) *Registry {
	r := goldenRegistry(t, false)
	require.NoError(t, r.AddActivity("Fail", func(*ActivityContext) (any, error) { return nil, errors.New("boom") }))
	require.NoError(t, r.AddOrchestrator("Mix", func(ctx *OrchestrationContext) (any, error) {
		var in any
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		ctx.Logger().Info("mixing", "now", ctx.Now(), "replaying", ctx.IsReplaying(), "name", ctx.Name())
		act := ctx.CallActivity("Double", 1, WithRetry(RetryPolicy{
			MaxAttempts: 3, FirstRetryInterval: time.Second,
			Handle: func(e *TaskFailedError) bool { return e.Message != "stop" },
		}))
		ev := ctx.WaitForExternalEvent("E", WithTimeout(time.Minute))
		sub := ctx.CallSubOrchestrator("HelloSequence", in)
		var winner Task
		if err := ctx.WhenAny(act, ev, sub).Await(&winner); err != nil {
			return nil, err
		}
		var v any
		werr := winner.Await(&v)
		if err := ctx.SetCustomStatus(map[string]any{"v": v, "err": fmt.Sprint(werr)}); err != nil {
			return nil, err
		}
		var all []any
		if err := ctx.WhenAll(act, ev, sub).Await(&all); errors.Is(err, ErrTimeout) {
			ctx.ContinueAsNew(all)
			return nil, nil
		}
		if s, _ := in.(string); s == "x" {
			panic("the input says so")
		}
		return all, werr
	}))
	return r
}

// The names and payloads an event of the compact form can carry.
var (
	fuzzNames = []string{
		"HelloSequence", "FanOutFanIn", "Approval", "Counter", "ApprovalReminders", "Mix", "Greeter", "Reminder", "Batch",
		"SayHello", "Double", "Notify", "Shout", "Fail", "APPROVAL", "Note", "note", "Add", "add", "Other", "E", "",
		"no such/name",
	}
	fuzzPayloads = []json.RawMessage{
		nil, json.RawMessage(`null`), json.RawMessage(`true`), json.RawMessage(`5`), json.RawMessage(`"Tokyo"`),
		json.RawMessage(`"looks fine"`), json.RawMessage(`"x"`), json.RawMessage(`[1,2]`), json.RawMessage(`{"a":1}`),
		json.RawMessage(`{`), json.RawMessage("\"\xff\""), json.RawMessage(`""`), json.RawMessage(`-1`),
		json.RawMessage(`"Hello Tokyo!"`), json.RawMessage(`["Hello Tokyo!","Hello Seattle!","Hello London!"]`),
	}
	fuzzStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

// fuzzEventSize is the number of bytes of one event of the compact form.
const fuzzEventSize = 5

// fuzzHistory decodes a fuzz input into the two halves of a turn. JSON
// (starting with '[') is a history split after its last
// OrchestratorStarted. Otherwise the first byte is where past ends (in
// events, capped), the second, if odd, puts OrchestratorStarted and
// ExecutionStarted of orchestrator fuzzNames[b>>1] before the events, and
// each following five bytes [k a b c d] are one event:
//
//	k: type: k%18 (0 and 17 are not types; neither is k itself when k >= 250)
//	a: ID and TaskID a%8 (-1 when a >= 0xf0); on ExecutionStarted, Rules a%3
//	b: name fuzzNames[b%len]; a Failure when b&0x80; the default
//	   sub-orchestration instance id when b&0x40
//	c: Input fuzzPayloads[c%len], Result fuzzPayloads[c/16%len],
//	   Status c%6 (0 and 5 are not statuses)
//	d: time: int8(d) seconds after the previous event; FireAt d%4 hours
//	   after that
func fuzzHistory(data []byte) (past, newEvents []history.Event, ok bool) {
	if len(data) > 0 && data[0] == '[' {
		var h []history.Event
		if json.Unmarshal(data, &h) != nil {
			return nil, nil, false
		}
		split := 0
		for i, e := range h {
			if e.Type == history.OrchestratorStarted {
				split = i
			}
		}
		return h[:split], h[split:], true
	}
	if len(data) < 2 {
		return nil, nil, false
	}
	split, prefix := int(data[0]), data[1]
	data = data[2:]
	var h []history.Event
	now := fuzzStart
	if prefix&1 == 1 {
		name := fuzzNames[int(prefix>>1)%len(fuzzNames)]
		h = append(h, history.Event{Type: history.OrchestratorStarted, Time: now},
			history.Event{Type: history.ExecutionStarted, Time: now, Name: name, ExecutionID: "fuzz#1"})
		split += 2
	}
	for len(data) >= fuzzEventSize {
		k, a, b, c, d := data[0], data[1], data[2], data[3], data[4]
		data = data[fuzzEventSize:]
		now = now.Add(time.Duration(int8(d)) * time.Second)
		e := history.Event{
			Type:   history.Type(k % 18),
			ID:     int32(a % 8),
			Time:   now,
			Name:   fuzzNames[int(b)%len(fuzzNames)],
			Input:  fuzzPayloads[int(c)%len(fuzzPayloads)],
			Result: fuzzPayloads[int(c/16)%len(fuzzPayloads)],
			Status: history.Status(c % 6),
			FireAt: now.Add(time.Duration(d%4) * time.Hour),
		}
		if k >= 250 {
			e.Type = history.Type(k)
		}
		if a >= 0xf0 {
			e.ID = -1
		}
		e.TaskID = e.ID
		if b&0x80 != 0 {
			e.Failure = &history.Failure{Message: "boom", Type: "ActivityError"}
		}
		if b&0x40 != 0 {
			e.InstanceID = fmt.Sprintf("fuzz:%d", e.ID)
		}
		if e.Type == history.ExecutionStarted {
			e.Rules, e.ExecutionID = history.Rules(a%3), "fuzz#1"
		}
		h = append(h, e)
	}
	split = min(split, len(h))
	return h[:split], h[split:], true
}

// fuzzEncode is the compact form of a history, as far as fuzzHistory can
// express it (names and payloads it has no index for become the first).
func fuzzEncode(h []history.Event, split int) []byte {
	index := func(n int, eq func(i int) bool) byte {
		for i := range n {
			if eq(i) {
				return byte(i)
			}
		}
		return 0
	}
	out := []byte{byte(min(split, 255)), 0}
	prev := fuzzStart
	for _, e := range h {
		id := e.ID
		if e.IsCompletion() {
			id = e.TaskID
		}
		a := byte(id % 8)
		if e.Type == history.ExecutionStarted {
			a = byte(e.Rules)
		}
		b := index(len(fuzzNames), func(i int) bool { return fuzzNames[i] == e.Name })
		if e.Failure != nil {
			b |= 0x80
		}
		if e.InstanceID != "" {
			b |= 0x40
		}
		payload := func(p json.RawMessage) byte {
			return index(len(fuzzPayloads), func(i int) bool { return string(fuzzPayloads[i]) == string(p) })
		}
		c := payload(e.Input)
		if e.Type == history.ExecutionCompleted {
			c = byte(e.Status)
		} else if len(e.Result) > 0 {
			c = payload(e.Result) * 16
		}
		delta := max(-128, min(127, int(e.Time.Sub(prev)/time.Second)))
		prev = prev.Add(time.Duration(delta) * time.Second)
		out = append(out, byte(e.Type), a, b, c, byte(int8(delta)))
	}
	return out
}

// mixScenarios drive the Mix orchestrator through its retries, timeouts
// and failures; their histories seed FuzzExecute.
var mixScenarios = map[string]func(s *sim){
	"retried": func(s *sim) {
		s.turn(history.Event{Type: history.TaskFailed, TaskID: 0, Failure: &history.Failure{Message: "boom", Type: "ActivityError"}})
		s.turn(s.fire(3))          // the retry's timer
		s.turn(s.completions()...) // the second attempt and the sub-orchestration
		s.turn(raised(s.t, "E", 5))
	},
	"not-retried": func(s *sim) {
		s.turn(history.Event{Type: history.TaskFailed, TaskID: 0, Failure: &history.Failure{Message: "stop"}})
		s.turn(raised(s.t, "e", "x"), history.Event{Type: history.SubOrchestrationFailed, TaskID: 2})
	},
	"timed-out": func(s *sim) {
		s.turn(s.fire(1))
		s.turn(s.completions()...) // continues as new
	},
}

// TestFuzzExecuteSeeds checks that the compact form keeps the shape of
// the golden histories and of mixScenarios, and with -update writes them,
// in both forms, as the seed corpus of FuzzExecute.
func TestFuzzExecuteSeeds(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	histories := map[string][]history.Event{}
	for _, file := range files {
		histories["golden-"+strings.TrimSuffix(filepath.Base(file), ".json")] = readGolden(t, filepath.Base(file)).History
	}
	for name, run := range mixScenarios {
		for _, in := range []any{"in", "x"} {
			s := newSim(t, fuzzRegistry(t), "fuzz")
			startUnder(s, history.CurrentRules, "Mix", in)
			run(s)
			histories[fmt.Sprintf("mix-%s-%s", name, in)] = s.hist
		}
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzExecute")
	for name, h := range histories {
		// The history before its last turn added its events: the last
		// turn for Execute to run again.
		for len(h) > 0 && (h[len(h)-1].IsScheduling() || h[len(h)-1].Type == history.ExecutionCompleted) {
			h = h[:len(h)-1]
		}
		split := 0
		for i, e := range h {
			if e.Type == history.OrchestratorStarted {
				split = i
			}
		}
		compact := fuzzEncode(h, split)
		past, newEvents, ok := fuzzHistory(compact)
		require.True(t, ok)
		got := append(past, newEvents...)
		require.Len(t, got, len(h))
		for i := range got {
			require.Equal(t, h[i].Type, got[i].Type, "%s: event %d", name, i)
		}
		require.Len(t, past, split)
		if !*update {
			continue
		}
		js, err := json.Marshal(h)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for suffix, data := range map[string][]byte{"-json": js, "-compact": compact} {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name+suffix), []byte(body), 0o644))
		}
	}
}
