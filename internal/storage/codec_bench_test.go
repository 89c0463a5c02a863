package storage

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/history"
)

// benchChunks are the chunks the codec benchmarks encode and decode: a
// turn of E1_HelloSequence (an activity result in, the next call and the
// custom status out) and a fan-out of 1,000 calls in one turn.
func benchChunks() map[string]*Chunk {
	t := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	hello := &Chunk{Events: []history.Event{
		{Type: history.OrchestratorStarted, Time: t},
		{Type: history.TaskCompleted, TaskID: 0, Result: json.RawMessage(`"Hello Tokyo!"`), Time: t, MsgID: "bench-0.act.0"},
		{Type: history.TaskScheduled, ID: 1, Name: "E1_SayHello", Input: json.RawMessage(`"Seattle"`), Time: t},
	}, CustomStatus: json.RawMessage(`"Tokyo"`)}
	fan := &Chunk{Events: []history.Event{{Type: history.OrchestratorStarted, Time: t}}}
	for i := range 1000 {
		fan.Events = append(fan.Events, history.Event{Type: history.TaskScheduled, ID: int32(i), Name: "Square",
			Input: json.RawMessage(fmt.Sprint(i)), Time: t})
	}
	return map[string]*Chunk{"hello-turn": hello, "fanout-1000": fan}
}

// BenchmarkChunkEncode is the msgpack encoding of a history chunk, as
// AppendChunk does it before each commit.
func BenchmarkChunkEncode(b *testing.B) {
	for name, c := range benchChunks() {
		b.Run(name, func(b *testing.B) {
			data, err := encode(c)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encode(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunkDecode is the decoding of a stored chunk, as a history
// load does it for each chunk (the check of its declared event count
// included).
func BenchmarkChunkDecode(b *testing.B) {
	for name, c := range benchChunks() {
		b.Run(name, func(b *testing.B) {
			data, err := encode(c)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				got, err := decodeChunk("bench.00000001", data)
				if err != nil {
					b.Fatal(err)
				}
				if len(got.Events) != len(c.Events) {
					b.Fatalf("%d events decoded, want %d", len(got.Events), len(c.Events))
				}
			}
		})
	}
}
