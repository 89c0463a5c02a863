package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// watchLine is one line of `jetflow watch`.
type watchLine struct {
	jetflow.Status
	Revision uint64 `json:"revision"`
	Deleted  bool   `json:"deleted"`
}

func parseWatch(t *testing.T, out string) []watchLine {
	t.Helper()
	var lines []watchLine
	for line := range strings.Lines(out) {
		require.True(t, strings.HasPrefix(line, `{"revision":`), "line %q", line)
		var l watchLine
		require.NoError(t, json.Unmarshal([]byte(line), &l), "line %q", line)
		require.NotZero(t, l.Revision)
		lines = append(lines, l)
	}
	return lines
}

// background runs the command line until its context is cancelled.
type background struct {
	cancel         context.CancelFunc
	done           chan int
	stdout, stderr *testkit.Buffer
}

func runBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan int, 1), stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	go func() { b.done <- run(ctx, args, b.stdout, b.stderr) }()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// waitLines waits until the output has n lines.
func (b *background) waitLines(t *testing.T, n int) []watchLine {
	t.Helper()
	testkit.WaitForNoError(t, 20*time.Second, fmt.Sprintf("%d lines of output", n), func() error {
		if strings.Count(b.stdout.String(), "\n") < n {
			return fmt.Errorf("stdout: %s\nstderr: %s", b.stdout, b.stderr)
		}
		return nil
	})
	return parseWatch(t, b.stdout.String())
}

// stop interrupts the command as Ctrl-C does and returns its exit status.
func (b *background) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	code := testkit.Receive(t, b.done, 10*time.Second, "the command did not stop")
	b.done <- code
	return code
}

func TestWatchVerb(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	url := e.Server.ClientURL()

	start := func(t *testing.T, name, id string) {
		t.Helper()
		r := cli(t, e.Context(30*time.Second), "start", name, "--id", id, "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	}

	t.Run("Prefix", func(t *testing.T) {
		t.Parallel()
		w := runBackground(t, "watch", "--prefix", "pre-", "--nats", url)
		start(t, "E1_HelloSequence", "pre-1")
		start(t, "E1_HelloSequence", "other-1")
		start(t, "E1_HelloSequence", "pre-2")
		var lines []watchLine
		testkit.WaitForNoError(t, 20*time.Second, "both pre- instances to finish", func() error {
			lines = parseWatch(t, w.stdout.String())
			done := 0
			for _, l := range lines {
				if l.Finished() {
					done++
				}
			}
			if done != 2 {
				return fmt.Errorf("stdout: %s", w.stdout)
			}
			return nil
		})
		require.Equal(t, 130, w.stop(t), "stderr: %s", w.stderr) // runs until interrupted
		require.Empty(t, w.stderr.String())
		lines = parseWatch(t, w.stdout.String())
		for i, l := range lines {
			require.True(t, strings.HasPrefix(l.InstanceID, "pre-"), l.InstanceID)
			if i > 0 {
				require.Greater(t, l.Revision, lines[i-1].Revision)
			}
		}

		// Resuming after the first terminal line prints what followed it.
		var first int
		for first = range lines {
			if lines[first].Finished() {
				break
			}
		}
		w = runBackground(t, "watch", "--prefix", "pre-", "--from-revision", itoa(lines[first].Revision), "--nats", url)
		w.waitLines(t, 1)
		require.Equal(t, 130, w.stop(t))
		got := parseWatch(t, w.stdout.String())
		require.NotEmpty(t, got)
		for _, l := range got {
			require.Greater(t, l.Revision, lines[first].Revision)
		}
		last := got[len(got)-1]
		require.Equal(t, lines[len(lines)-1], last)
	})

	t.Run("ResumeOne", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		start(t, "E1_HelloSequence", "one-1")
		r := cli(t, ctx, "watch", "one-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		lines := parseWatch(t, r.stdout)
		final := lines[len(lines)-1]
		require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)

		// After the terminal revision: nothing, and exit 0 at once.
		r = cli(t, ctx, "watch", "one-1", "--from-revision", itoa(final.Revision), "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Empty(t, r.stdout)
		// Before it: the terminal status.
		r = cli(t, ctx, "watch", "one-1", "--from-revision", itoa(final.Revision-1), "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, []watchLine{final}, parseWatch(t, r.stdout))
	})

	t.Run("ResumeBeyondLastRevision", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		// A revision the hub's status bucket has not reached (one kept from
		// before the hub was restored or recreated) resumes as a fresh
		// watch: the current values, then each change.
		start(t, "E1_HelloSequence", "beyond-1")
		r := cli(t, ctx, "watch", "beyond-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		lines := parseWatch(t, r.stdout)
		final := lines[len(lines)-1]
		require.Equal(t, jetflow.StatusCompleted, final.RuntimeStatus)
		for _, from := range []string{"999999", "18446744073709551615"} {
			r = cli(t, ctx, "watch", "beyond-1", "--from-revision", from, "--nats", url)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			require.Equal(t, []watchLine{final}, parseWatch(t, r.stdout), "from %s: the terminal status", from)

			w := runBackground(t, "watch", "--prefix", "beyond-", "--from-revision", from, "--nats", url)
			require.Equal(t, []watchLine{final}, w.waitLines(t, 1), "from %s: the current values", from)
			require.Equal(t, 130, w.stop(t), "stderr: %s", w.stderr)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		requireOneLineError(t, cli(t, ctx, "watch", "x", "--prefix", "y", "--nats", url), "not both")
		requireOneLineError(t, cli(t, ctx, "watch", "x", "--from-revision", "18446744073709551616", "--nats", url), "--from-revision")
		requireOneLineError(t, cli(t, ctx, "watch", "--prefix", "", "--from-revision", "12x", "--nats", url), "--from-revision")
		requireOneLineError(t, cli(t, ctx, "watch", "--nats", url), "give an instance ID or --prefix")
		requireOneLineError(t, cli(t, ctx, "watch", "--prefix", "a/b", "--nats", url), "invalid instance id")
		requireOneLineError(t, cli(t, ctx, "watch", "x", "--from-revision", "-3", "--nats", url), "--from-revision")
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestDevStopsWithOpenWatch checks that an open watch stream does not hold
// up the shutdown of `jetflow dev`.
func TestDevStopsWithOpenWatch(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	resp, err := http.Get(d.httpURL + "/runtime/webhooks/durabletask/watch")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	start := time.Now()
	d.stop(t)
	require.Less(t, time.Since(start), 5*time.Second)
	testkit.Collect(t, ended, 5*time.Second, "the stream did not end")
}
