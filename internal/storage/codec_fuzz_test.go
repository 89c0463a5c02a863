package storage

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/history"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite the seed corpora in testdata/fuzz/")

// codecKinds are the records the codec stores, by the kind byte of
// FuzzCodec's input.
var codecKinds = []func() any{
	func() any { return new(Chunk) },
	func() any { return new(InboxMessage) },
	func() any { return new(ActivityTask) },
	func() any { return new(RegistryEntry) },
	func() any { return new(history.Event) },
}

// FuzzCodec decodes arbitrary bytes as each record the store keeps in
// msgpack (history chunks, inbox messages, activity tasks, registry
// entries, history events). Decoding must not panic; a value that decodes
// encodes again (unless it holds an event type or status this version
// does not know, which encoding refuses by name), and that encoding
// decodes to the same value and encodes to the same bytes.
//
// The seeds in testdata/fuzz/FuzzCodec are written by
// go test -run TestWriteCodecSeeds -write-fuzz-seeds.
func FuzzCodec(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		newValue := codecKinds[int(kind)%len(codecKinds)]
		v := newValue()
		if err := decode(data, v); err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		b1, err := encode(v)
		if err != nil {
			require.Regexp(t, `unknown (history event type|execution status)`, err.Error(), "encoding %#v", v)
			return
		}
		v2 := newValue()
		require.NoError(t, decode(b1, v2), "decoding what encode wrote")
		require.Equal(t, normalized(v), normalized(v2), "a decoded value survives encode and decode")
		b2, err := encode(v2)
		require.NoError(t, err)
		require.Equal(t, b1, b2, "encode(decode(encode(v))) == encode(v)")
	})
}

// normalized returns a copy of the value v points to with empty slices
// made nil and times in UTC: msgpack's omitempty drops an empty slice, and
// decoded times are local.
func normalized(v any) any {
	rv := reflect.ValueOf(v).Elem()
	out := reflect.New(rv.Type()).Elem()
	normalize(out, rv)
	return out.Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func normalize(dst, src reflect.Value) {
	switch {
	case src.Type() == timeType:
		dst.Set(reflect.ValueOf(src.Interface().(time.Time).UTC()))
	case src.Kind() == reflect.Struct:
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				normalize(dst.Field(i), src.Field(i))
			}
		}
	case src.Kind() == reflect.Pointer:
		if !src.IsNil() {
			dst.Set(reflect.New(src.Type().Elem()))
			normalize(dst.Elem(), src.Elem())
		}
	case src.Kind() == reflect.Slice:
		if src.Len() > 0 {
			dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
			for i := range src.Len() {
				normalize(dst.Index(i), src.Index(i))
			}
		}
	default:
		dst.Set(src)
	}
}

type codecSeed struct {
	name string
	kind uint8
	data []byte
}

// codecSeeds are encodings of records like those the engine writes.
func codecSeeds(t testing.TB) []codecSeed {
	ts := time.Date(2026, 3, 1, 9, 0, 1, 0, time.UTC)
	start := history.Event{Type: history.ExecutionStarted, Time: ts, Name: "E1_HelloSequence", Input: json.RawMessage(`"in"`),
		ExecutionID: "exec1", MsgID: "exec1:start", Rules: history.CurrentRules,
		Parent: &history.Parent{InstanceID: "parent", ExecutionID: "pexec", TaskID: 3, Name: "Parent"}}
	events := []history.Event{
		{Type: history.OrchestratorStarted, Time: ts},
		start,
		{Type: history.TaskScheduled, ID: 0, Time: ts, Name: "E1_SayHello", Input: json.RawMessage(`"Tokyo"`)},
		{Type: history.TimerCreated, ID: 1, Time: ts, FireAt: ts.Add(time.Hour)},
		{Type: history.SubOrchestrationCreated, ID: 2, Time: ts, Name: "Child", InstanceID: "id:2"},
		{Type: history.TaskCompleted, TaskID: 0, Time: ts, Result: json.RawMessage(`"Hello Tokyo!"`), MsgID: "exec1:result:0"},
		{Type: history.TaskFailed, TaskID: 0, Time: ts, Failure: &history.Failure{Message: "boom", Type: "ActivityError"}},
		{Type: history.TimerFired, TaskID: 1, Time: ts, FireAt: ts.Add(time.Hour)},
		{Type: history.EventRaised, Time: ts, Name: "Approval", Input: json.RawMessage(`true`), MsgID: "m1"},
		{Type: history.ExecutionTerminated, Time: ts, Input: json.RawMessage(`"stop"`)},
		{Type: history.ExecutionCompleted, Time: ts, Status: history.StatusCompleted, Result: json.RawMessage(`["a","b"]`)},
		{Type: history.ExecutionCompleted, Time: ts, Status: history.StatusFailed, Failure: &history.Failure{Message: "failed"}},
		{Type: history.ExecutionRewound, Time: ts, ExecutionID: "exec2", Input: json.RawMessage(`"again"`)},
	}
	var seeds []codecSeed
	add := func(name string, kind uint8, v any) {
		b, err := encode(v)
		require.NoError(t, err)
		seeds = append(seeds, codecSeed{name, kind, b})
	}
	add("chunk", 0, &Chunk{Events: events})
	add("chunk-empty", 0, &Chunk{})
	add("orch-start", 1, &InboxMessage{InstanceID: "id", ExecutionID: "exec1", Event: start, Orchestrator: "E1_HelloSequence", StatusRevision: 7})
	add("orch-event", 1, &InboxMessage{InstanceID: "id", Event: events[8], Orchestrator: "E1_HelloSequence"})
	add("task", 2, &ActivityTask{InstanceID: "id", ExecutionID: "exec1", Orchestrator: "E1_HelloSequence", TaskID: 4, Name: "E1_SayHello", Input: json.RawMessage(`"Tokyo"`)})
	add("registry", 3, &RegistryEntry{Worker: "w1"})
	for i := range events {
		add(fmt.Sprintf("event-%02d-%s", i, events[i].Type), 4, &events[i])
	}
	// {"ev": array32 of 2^32-1 events}: msgpack v5.4.1 allocates them all
	// before reading one, and the process dies of "out of memory".
	seeds = append(seeds, codecSeed{"huge-array", 0, []byte{0x81, 0xa2, 'e', 'v', 0xdd, 0xff, 0xff, 0xff, 0xff}})
	return seeds
}

// TestWriteCodecSeeds writes the seed corpus of FuzzCodec with
// -write-fuzz-seeds; without, it checks the seeds round-trip.
func TestWriteCodecSeeds(t *testing.T) {
	t.Parallel()
	seeds := codecSeeds(t)
	for _, s := range seeds[:len(seeds)-1] {
		v := codecKinds[s.kind]()
		require.NoError(t, decode(s.data, v), s.name)
	}
	if !*writeFuzzSeeds {
		return
	}
	for _, s := range seeds {
		writeSeed(t, "FuzzCodec", s.name, s.kind, s.data)
	}
}

// writeSeed writes one input of a fuzz test's seed corpus, in the format
// of go test's testdata/fuzz files.
func writeSeed(t *testing.T, fuzzName, name string, args ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch a := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", a)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", a)
		case uint8:
			fmt.Fprintf(&b, "byte(%d)\n", a)
		default:
			t.Fatalf("writeSeed: %T", a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644))
}
