package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

// samplesJSDir holds the JavaScript samples and, with them, the Node.js
// side of TestDurableTaskJS: the @microsoft/durabletask-js package, pinned
// by its package-lock.json, and conformance.mjs.
const samplesJSDir = "../samples/js"

// TestDurableTaskJS runs the official Durable Task JavaScript SDK
// (@microsoft/durabletask-js 0.4.0), unchanged, against a sidecar on a
// real engine: samples/js/conformance.mjs runs the four custom-status
// samples of samples/js (E1_HelloSequence, CityRecommender, ReserveTicket,
// once with its durable timer shortened by input, SetStatusTest) and checks
// their outputs and custom statuses through the SDK's client and jetflow's
// HTTP API, and runs sub-orchestrations, timers racing events, a caught
// activity failure, events, suspend, resume, terminate and purge, versions
// and tags (a child inheriting its parent's), and calls across languages
// with a Go worker's GoUpper and GoCallsJS. It prints
// "N passed, N failed"; a failed check fails the test. The samples'
// custom statuses are followed here too, in order, through jetflow's
// status watch and through the nats CLI's `nats kv watch jetflow-status`
// (the nats binary on PATH, which .ci/run installs; the test says so when
// it is missing and checks the status watch alone).
//
// It needs node and npm (skipped without them) and, the first time, the
// npm registry (see testkit.NPMCI).
func TestDurableTaskJS(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node and npm are needed to run the Durable Task JavaScript SDK (samples/js): not on PATH")
	}
	testkit.NPMCI(t, npm, samplesJSDir)
	b := setup(t, func(r *jetflow.Registry) error {
		if err := r.AddActivity("GoUpper", func(ctx *jetflow.ActivityContext) (any, error) {
			var s string
			err := ctx.GetInput(&s)
			return strings.ToUpper(s), err
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("GoCallsJS", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var in, out string
			if err := ctx.GetInput(&in); err != nil {
				return nil, err
			}
			err := ctx.CallActivity("JS_Upper", in).Await(&out)
			return out, err
		})
	}, Config{})
	api := httptest.NewServer(httpapi.New(b.e.Client, httpapi.Config{Logger: b.e.Logger()}))
	t.Cleanup(api.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	updates, err := b.e.Client.WatchAll(ctx, client.WatchFilter{InstanceIDPrefix: "conf-"}, 0)
	require.NoError(t, err)
	var mu sync.Mutex
	// Each instance's custom statuses, in order, repeats left out, as the
	// status watch and as `nats kv watch` saw them.
	customs := map[string][]string{}
	natsKV := map[string][]string{}
	record := func(seen map[string][]string, id string, custom json.RawMessage) {
		c := string(custom)
		mu.Lock()
		defer mu.Unlock()
		if s := seen[id]; c != "" && c != "null" && (len(s) == 0 || s[len(s)-1] != c) {
			seen[id] = append(s, c)
		}
	}
	go func() {
		for u := range updates {
			record(customs, u.InstanceID, u.Status.CustomStatus)
		}
	}()
	natsCLI, errCLI := exec.LookPath("nats")
	if errCLI != nil {
		t.Log("the nats CLI is not on PATH: the statuses are followed through the status watch alone, not `nats kv watch`")
	} else {
		followNATSKVWatch(t, ctx, natsCLI, "nats://"+b.e.Listen, func(id string, st jetflow.Status) {
			record(natsKV, id, st.CustomStatus)
		})
	}

	cmd := exec.CommandContext(ctx, node, "conformance.mjs", b.url, api.URL+httpapi.BasePath)
	cmd.Dir = samplesJSDir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("conformance.mjs did not finish in time:\n%s", out.String())
	}
	require.NoError(t, err, "conformance.mjs:\n%s", out.String())
	require.Contains(t, out.String(), " passed, 0 failed", "conformance.mjs:\n%s", out.String())
	t.Logf("conformance.mjs:\n%s", out.String())

	offer := func(user string, timeout int) string {
		b, err := json.Marshal(samples.DiscountOffer{Discount: samples.Discount(user), DiscountTimeout: timeout,
			BookingURL: "https://www.myawesomebookingweb.com"})
		require.NoError(t, err)
		return string(b)
	}
	want := map[string][]string{
		"conf-hello":        {`"Tokyo"`, `"Seattle"`, `"London"`},
		"conf-city":         {`{"recommendedCities":["Seattle","London"],"recommendedSeasons":["Summer"]}`},
		"conf-ticket-yes":   {offer("user-7", 60), `{"message":"Thank you for confirming your booking."}`},
		"conf-ticket-late":  {offer("user-8", 1), `{"message":"The booking was not confirmed on time. Please try again."}`},
		"conf-status":       {`{"nextActions":["A","B","C"],"foo":2}`},
		"conf-parent-child": {`"Tokyo"`, `"Seattle"`, `"London"`},
	}
	for _, watch := range []struct {
		what string
		seen map[string][]string
	}{{"the status watch", customs}, {"nats kv watch", natsKV}} {
		if watch.what == "nats kv watch" && errCLI != nil {
			continue
		}
		testkit.WaitForNoError(t, 20*time.Second, "the custom statuses of the samples in "+watch.what, func() error {
			mu.Lock()
			defer mu.Unlock()
			for id, w := range want {
				if strings.Join(watch.seen[id], " ") != strings.Join(w, " ") {
					return &mismatch{id: id, got: watch.seen[id], want: w}
				}
			}
			return nil
		})
	}
}

// followNATSKVWatch runs `nats kv watch jetflow-status` against natsURL
// until ctx ends (or the test does), and hands each status it prints to
// seen. The CLI prints a line per change:
// "[time] PUT jetflow-status > <key>: <status JSON>".
func followNATSKVWatch(t *testing.T, ctx context.Context, natsCLI, natsURL string, seen func(id string, st jetflow.Status)) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, natsCLI, "--server", natsURL, "kv", "watch", "jetflow-status")
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		defer func() { _ = cmd.Wait() }()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			_, rest, ok := strings.Cut(sc.Text(), "] PUT jetflow-status > ")
			if !ok {
				continue
			}
			key, value, ok := strings.Cut(rest, ": ")
			var st jetflow.Status
			if !ok || json.Unmarshal([]byte(value), &st) != nil {
				continue
			}
			seen(key, st)
		}
	}()
}

// mismatch is a custom status sequence other than the one expected.
type mismatch struct {
	id        string
	got, want []string
}

func (m *mismatch) Error() string {
	return m.id + ": custom statuses " + strings.Join(m.got, " → ") + ", want " + strings.Join(m.want, " → ")
}
