package sidecar

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// dtjsDir holds the Node.js side of TestDurableTaskJS: the
// @microsoft/durabletask-js package, pinned by its package-lock.json, and
// conformance.mjs.
const dtjsDir = "testdata/dtjs"

// TestDurableTaskJS runs the official Durable Task JavaScript SDK
// (@microsoft/durabletask-js 0.4.0), unchanged, against a sidecar on a
// real engine: testdata/dtjs/conformance.mjs runs E1_HelloSequence,
// sub-orchestrations, timers racing events, a caught activity failure,
// events, suspend, resume, terminate and purge through the SDK's worker
// and client, and calls across languages with a Go worker's GoUpper and
// GoCallsJS. It prints "N passed, N failed"; a failed check fails the
// test. The hello instance's custom status is followed here through
// jetflow's status watch (what `nats kv watch` and the HTTP API's SSE
// show): Tokyo, Seattle, London.
//
// It needs node and npm (skipped without them) and, the first time, the
// npm registry (see testkit.NPMCI).
func TestDurableTaskJS(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node and npm are needed to run the Durable Task JavaScript SDK (testdata/dtjs): not on PATH")
	}
	testkit.NPMCI(t, npm, dtjsDir)
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

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	customs := make(chan []string, 1)
	go func() {
		// The start is the script's: wait for the instance, then follow it.
		var seen []string
		defer func() { customs <- seen }()
		for ctx.Err() == nil {
			updates, err := b.e.Client.WatchStatus(ctx, "conf-hello", 0)
			if err != nil {
				return
			}
			for u := range updates {
				if c := string(u.Status.CustomStatus); c != "" && c != "null" && (len(seen) == 0 || seen[len(seen)-1] != c) {
					seen = append(seen, c)
				}
				if u.Status.Finished() {
					return
				}
			}
		}
	}()

	cmd := exec.CommandContext(ctx, node, "conformance.mjs", b.url)
	cmd.Dir = dtjsDir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("conformance.mjs did not finish in time:\n%s", out.String())
	}
	require.NoError(t, err, "conformance.mjs:\n%s", out.String())
	require.Contains(t, out.String(), " passed, 0 failed", "conformance.mjs:\n%s", out.String())
	t.Logf("conformance.mjs:\n%s", out.String())
	require.Equal(t, []string{`"Tokyo"`, `"Seattle"`, `"London"`}, testkit.Receive(t, customs, 30*time.Second, "the custom statuses"))
}
