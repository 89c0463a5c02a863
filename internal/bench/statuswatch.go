package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// StatusWatch is what the status-watch scenario measured: how long a
// custom status change takes from its commit to each kind of reader.
//
// The commit of a change is the moment the nats-server stores the status
// write in the status bucket: the timestamp it gives the message (the KV
// entry's Created time) as it assigns its revision, right before it writes
// it to disk, fsyncs it (fsync on every write) and acknowledges the put to
// the worker. A reader cannot see a value before that moment, and the
// worker's put returns a little after it (after the fsync): the latencies
// here are therefore from "the server has the value" to "the reader has
// it", fsync included. On the embedded server the timestamp is taken by
// this process, so both ends are read from one clock (its wall clock;
// the scenario fails if that clock was stepped during the run, which is
// the only way it could differ from the monotonic one); with a server of
// its own, the server's clock is compared with this machine's.
type StatusWatch struct {
	// Changes is how many changes were measured.
	Changes int `json:"changes"`
	// RawWatch is commit → a plain nats.go KV watch of the instance's key
	// (the floor: no engine code between the server and the reader).
	RawWatch Latency `json:"rawWatch"`
	// Watcher is commit → client.WatchStatus (the Go client's watch, on a
	// connection of its own).
	Watcher Latency `json:"watcher"`
	// SSE is commit → a server-sent events client of the HTTP API (as
	// jetflow dev serves it, on a connection of its own, over HTTP on
	// 127.0.0.1) having read the whole event.
	SSE Latency `json:"sse"`
	// EventToWatcher is the raise-event call's start → the change seen by
	// the Go watcher: the whole turn (event stored, delivered to the
	// worker, orchestrator run, history and status written).
	EventToWatcher Latency `json:"eventToWatcher"`
	// WatcherValues and SSEValues are the custom status values each reader
	// saw, in the order it saw them (1 … Changes when nothing is lost or
	// reordered); not in JSON.
	WatcherValues []int `json:"-"`
	SSEValues     []int `json:"-"`
}

// Latency is a distribution of times, in milliseconds.
type Latency struct {
	// P50 and P99 are the median and the 99th percentile (nearest rank),
	// Max the longest.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// latency summarises ds.
func latency(ds []time.Duration) Latency {
	return Latency{P50: ms(quantile(ds, 0.5)), P99: ms(quantile(ds, 0.99)), Max: ms(quantile(ds, 1))}
}

// seen is one value as a reader saw it.
type seen struct {
	value int
	rev   uint64
	at    time.Time
}

// reader collects what one reader saw and wakes the scenario.
type reader struct {
	mu   sync.Mutex
	got  []seen
	kick chan struct{}
	err  error
}

func newReader() *reader { return &reader{kick: make(chan struct{}, 1)} }

func (r *reader) add(s seen) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	r.wake()
}

func (r *reader) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.wake()
}

func (r *reader) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// last returns the last value seen, if any, and the reader's error.
func (r *reader) last() (seen, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return seen{}, false, r.err
	}
	return r.got[len(r.got)-1], true, r.err
}

func (r *reader) values() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, len(r.got))
	for i, s := range r.got {
		out[i] = s.value
	}
	return out
}

// customInt reads a custom status that is a whole number; ok is false for
// any other (null before the first change).
func customInt(raw json.RawMessage) (int, bool) {
	n, err := strconv.Atoi(string(raw))
	return n, err == nil
}

// statusWatch runs BenchStatusLoop: Changes custom status changes, one per
// turn, each started by an event raised once the previous change has
// reached every reader (an idle system otherwise), and measures each
// change from its commit to three readers.
func (e *env) statusWatch(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n := e.cfg.Changes
	id := prefix("status") + "0"
	if _, err := e.client.StartOrchestration(ctx, statusLoop, client.WithInstanceID(id), client.WithInput(n)); err != nil {
		return nil, err
	}
	// The instance exists from here (its Pending status), which the SSE
	// route requires; its first change waits for the first event.
	raw, err := e.rawWatch(ctx, id)
	if err != nil {
		return nil, err
	}
	watcher, err := e.goWatch(ctx, id)
	if err != nil {
		return nil, err
	}
	sse, stopAPI, err := e.sseWatch(ctx, id)
	if err != nil {
		return nil, err
	}
	defer stopAPI()

	began := time.Now()
	var toRaw, toWatcher, toSSE, turns []time.Duration
	for i := 1; i <= n; i++ {
		raised := time.Now()
		if err := e.client.RaiseEvent(ctx, id, next, nil); err != nil {
			return nil, err
		}
		var got [3]seen
		for k, r := range []*reader{raw.reader, watcher, sse} {
			s, err := awaitValue(ctx, r, i)
			if err != nil {
				return nil, fmt.Errorf("change %d of %d, %s: %w", i, n, [...]string{"raw KV watch", "Go watcher", "SSE client"}[k], err)
			}
			got[k] = s
		}
		if got[1].rev != got[0].rev || got[2].rev != got[0].rev {
			return nil, fmt.Errorf("change %d: revisions differ: raw %d, watcher %d, SSE %d", i, got[0].rev, got[1].rev, got[2].rev)
		}
		commit := got[0].at // the raw reader's at is the commit; see rawWatch
		toRaw = append(toRaw, raw.receivedAt(i).Sub(commit))
		toWatcher = append(toWatcher, got[1].at.Sub(commit))
		toSSE = append(toSSE, got[2].at.Sub(commit))
		turns = append(turns, got[1].at.Sub(raised))
		e.progress(i, n)
	}
	elapsed := time.Since(began)
	if err := clockSteady(began); err != nil {
		return nil, err
	}
	// The last event completes the instance.
	if err := e.client.RaiseEvent(ctx, id, next, nil); err != nil {
		return nil, err
	}
	r := &Result{Scenario: "status-watch", Instances: 1, Workers: e.cfg.Workers, Seconds: elapsed.Seconds(),
		StatusWatch: &StatusWatch{
			Changes: n, RawWatch: latency(toRaw), Watcher: latency(toWatcher), SSE: latency(toSSE),
			EventToWatcher: latency(turns), WatcherValues: watcher.values(), SSEValues: sse.values(),
		}}
	if e.server == nil {
		r.Notes = append(r.Notes, "status-watch: commit times are the NATS server's clock, receipt times this machine's: "+
			"on another host their offset is in the figures")
	}
	return r, nil
}

// awaitValue waits until r has seen value want (the values before it
// included) and returns it; a value after it, or another reader error,
// is an error.
func awaitValue(ctx context.Context, r *reader, want int) (seen, error) {
	for {
		s, ok, err := r.last()
		switch {
		case err != nil:
			return seen{}, err
		case ok && s.value == want:
			return s, nil
		case ok && s.value > want:
			return seen{}, fmt.Errorf("saw %d while waiting for %d", s.value, want)
		}
		select {
		case <-r.kick:
		case <-ctx.Done():
			return seen{}, fmt.Errorf("waiting for status %d: %w", want, ctx.Err())
		}
	}
}

// rawReader is the plain KV watch: its seen.at is the commit time (the
// entry's Created), and it keeps its own receipt times apart.
type rawReader struct {
	*reader
	mu       sync.Mutex
	received map[int]time.Time
}

func (r *rawReader) receivedAt(value int) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received[value]
}

// rawWatch watches the instance's status key with nats.go on the bench's
// connection and records, for each custom status value, the commit time
// (the server's timestamp of the message) and when it arrived.
func (e *env) rawWatch(ctx context.Context, id string) (*rawReader, error) {
	js, err := natsjs.New(e.conns[0])
	if err != nil {
		return nil, err
	}
	names := storage.Of(e.store).Names()
	kv, err := js.KeyValue(ctx, names.StatusBucket())
	if err != nil {
		return nil, fmt.Errorf("the status bucket: %w", err)
	}
	w, err := kv.Watch(ctx, names.StatusKey(id))
	if err != nil {
		return nil, fmt.Errorf("watching the status bucket: %w", err)
	}
	r := &rawReader{reader: newReader(), received: map[int]time.Time{}}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case en, ok := <-w.Updates():
				if !ok {
					r.fail(errors.New("the raw watch ended"))
					return
				}
				now := time.Now()
				if en == nil || en.Operation() != natsjs.KeyValuePut {
					continue
				}
				var st jetflow.Status
				if err := json.Unmarshal(en.Value(), &st); err != nil {
					r.fail(fmt.Errorf("decoding a status: %w", err))
					return
				}
				v, ok := customInt(st.CustomStatus)
				if !ok {
					continue
				}
				r.mu.Lock()
				r.received[v] = now
				r.mu.Unlock()
				r.add(seen{value: v, rev: en.Revision(), at: en.Created()})
			}
		}
	}()
	return r, nil
}

// goWatch follows the instance with client.WatchStatus on a connection of
// its own.
func (e *env) goWatch(ctx context.Context, id string) (*reader, error) {
	c, err := e.openClient(ctx, "jetflow-bench-watcher")
	if err != nil {
		return nil, err
	}
	updates, err := c.WatchStatus(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	r := newReader()
	go func() {
		for u := range updates {
			now := time.Now()
			if v, ok := customInt(u.CustomStatus); ok {
				r.add(seen{value: v, rev: u.Revision, at: now})
			}
		}
		if ctx.Err() == nil {
			r.fail(errors.New("the watch ended"))
		}
	}()
	return r, nil
}

// openClient opens a client of the hub on a connection of its own.
func (e *env) openClient(ctx context.Context, name string) (*client.Client, error) {
	nc, err := e.cfg.Connect(name)
	if err != nil {
		return nil, err
	}
	e.conns = append(e.conns, nc)
	s, err := jetstream.Open(ctx, nc, e.cfg.Hub)
	if err != nil {
		return nil, err
	}
	return client.New(s), nil
}

// sseWatch serves the HTTP API on 127.0.0.1 (as jetflow dev does, with a
// client on a connection of its own) and follows the instance's watch
// route with a server-sent events client; stop ends both.
func (e *env) sseWatch(ctx context.Context, id string) (r *reader, stop func(), err error) {
	c, err := e.openClient(ctx, "jetflow-bench-http")
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	shutdown := make(chan struct{})
	hs := httpapi.NewServer(httpapi.New(c, httpapi.Config{Shutdown: shutdown}), httpapi.ServerConfig{})
	hs.RegisterOnShutdown(func() { close(shutdown) })
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	rctx, cancel := context.WithCancel(ctx)
	stop = func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = hs.Shutdown(sctx)
		<-served
	}
	u := "http://" + ln.Addr().String() + httpapi.BasePath + "/instances/" + url.PathEscape(id) + "/watch"
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		stop()
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		stop()
		return nil, nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	r = newReader()
	go func() {
		defer resp.Body.Close()
		err := readEvents(bufio.NewReader(resp.Body), func(evID, event, data string) error {
			now := time.Now()
			if event != "status" {
				return nil
			}
			var st jetflow.Status
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				return fmt.Errorf("decoding an event: %w", err)
			}
			rev, err := strconv.ParseUint(evID, 10, 64)
			if err != nil {
				return fmt.Errorf("event id %q: %w", evID, err)
			}
			if v, ok := customInt(st.CustomStatus); ok {
				r.add(seen{value: v, rev: rev, at: now})
			}
			return nil
		})
		if rctx.Err() == nil {
			r.fail(fmt.Errorf("the SSE stream ended: %v", err))
		}
	}()
	return r, stop, nil
}

// readEvents reads server-sent events from br and calls f with each one's
// id, event name and data once its closing blank line has arrived.
func readEvents(br *bufio.Reader, f func(id, event, data string) error) error {
	var id, event, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if data != "" || event != "" {
				if err := f(id, event, data); err != nil {
					return err
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"): // a comment (keep-alive)
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				if data != "" {
					data += "\n"
				}
				data += value
			}
		}
	}
}

// clockSteady fails if this process's wall clock moved apart from its
// monotonic clock since began (a step of the system clock): the figures
// compare the server's wall-clock timestamps with this process's.
func clockSteady(began time.Time) error {
	mono := time.Since(began)
	wall := time.Now().Round(0).Sub(began.Round(0)) // Round(0) drops the monotonic reading
	if d := (wall - mono).Abs(); d > time.Millisecond {
		return fmt.Errorf("the wall clock moved %s apart from the monotonic clock during the run: timestamps cannot be compared; run again", d)
	}
	return nil
}
