package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// progressMarks returns what of a progress bar's drawing s holds:
// carriage returns, ANSI escapes, block and braille characters (the bar
// and the spinner).
func progressMarks(s string) []string {
	var marks []string
	for _, r := range s {
		if r == '\r' || r == '\x1b' || r >= 0x2580 && r <= 0x259f || r >= 0x2800 && r <= 0x28ff {
			marks = append(marks, fmt.Sprintf("%q", r))
		}
	}
	return marks
}

// cleared matches output that ends by clearing the bar's line.
var cleared = regexp.MustCompile(`\r +\r$`)

// seedStatuses writes n statuses straight to the status bucket, ids
// prefix00, prefix01, …, created a minute apart from listCreated.
func seedStatuses(t *testing.T, e *testengine.Engine, prefix string, n int, rs jetflow.RuntimeStatus) []string {
	t.Helper()
	ids := make([]string, n)
	outs := make([]storage.Outgoing, n)
	for i := range outs {
		ids[i] = fmt.Sprintf("%s%02d", prefix, i)
		st := &jetflow.Status{Name: "Seeded", InstanceID: ids[i], RuntimeStatus: rs, Input: json.RawMessage(`{"n":1}`),
			CreatedTime:     jetflow.Time{Time: listCreated.Add(time.Duration(i) * time.Minute)},
			LastUpdatedTime: jetflow.Time{Time: listCreated.Add(time.Duration(i) * time.Minute)}}
		o, err := e.Storage.StatusWrite(st.InstanceID, st, 0)
		require.NoError(t, err)
		outs[i] = o
	}
	require.NoError(t, storage.FirstError(e.Storage.Publish(t.Context(), outs...)))
	return ids
}

func TestProgressDrawing(t *testing.T) {
	t.Parallel()

	t.Run("bar", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		p := drawProgress(&b, 3, "purging", 0)
		for i := 1; i <= 3; i++ {
			p.set(i)
		}
		p.done()
		s := b.String()
		for _, want := range []string{"\rpurging   0% |", "purging  33% |█", "(1/3, ", "(3/3, ", "100% |"} {
			require.Contains(t, s, want)
		}
		require.Regexp(t, cleared, s)
		require.NotEmpty(t, progressMarks(s), "what piped output is checked for")
	})

	t.Run("total grows", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		p := drawProgress(&b, 2, "purging", 0)
		p.set(1)
		p.set(4)
		p.done()
		require.Contains(t, b.String(), "(1/2, ")
		require.Contains(t, b.String(), "(4/4, ")
	})

	t.Run("spinner", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		p := drawProgress(&b, -1, "listing", 0)
		p.set(1500)
		p.done()
		s := b.String()
		require.Contains(t, s, "listing (1500, ")
		require.NotContains(t, s, "/-")
		require.Regexp(t, cleared, s)
	})

	t.Run("throttled", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		p := drawProgress(&b, 1000, "purging", time.Hour)
		for i := 1; i < 1000; i++ {
			p.set(i)
		}
		require.NotContains(t, b.String(), "(1/1000", "drawn at most once an hour, after the blank bar")
		p.set(1000)
		require.Contains(t, b.String(), "(1000/1000", "the full bar is always drawn")
	})

	t.Run("nothing drawn", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		for _, p := range []*progress{newProgress(&b, false, 10, "purging"), newProgress(&b, false, -1, "listing"), newProgress(&b, true, 0, "purging")} {
			require.Nil(t, p)
			p.set(3)
			p.done()
		}
		require.Empty(t, b.String())
	})

	t.Run("terminals", func(t *testing.T) {
		t.Parallel()
		require.False(t, isTerminal(&bytes.Buffer{}))
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		require.False(t, isTerminal(w), "a pipe")
		ptmx, tty, err := pty.Open()
		require.NoError(t, err)
		defer ptmx.Close()
		defer tty.Close()
		require.True(t, isTerminal(tty), "a pseudo-terminal")
	})
}

// TestPipedOutput runs list --all and purge with their output in buffers,
// as a pipe or a file would take it: no progress is drawn, and --json
// prints JSON alone.
func TestPipedOutput(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	url := e.Server.ClientURL()
	ctx := e.Context(60 * time.Second)
	done := seedStatuses(t, e, "pipe-", 25, jetflow.StatusCompleted)
	running := seedStatuses(t, e, "pipe-run-", 1, jetflow.StatusRunning)
	all := slices.Sorted(slices.Values(append(slices.Clone(done), running...)))

	clean := func(t *testing.T, r result) {
		t.Helper()
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Empty(t, r.stderr, "nothing on stderr: no progress, no next page")
		require.Empty(t, progressMarks(r.stdout))
	}
	ids := func(t *testing.T, out string) []string {
		t.Helper()
		require.True(t, json.Valid([]byte(out)), "stdout is JSON alone: %q", out)
		var sts []jetflow.Status
		require.NoError(t, json.Unmarshal([]byte(out), &sts))
		out2 := make([]string, len(sts))
		for i, st := range sts {
			out2[i] = st.InstanceID
			require.JSONEq(t, `{"n":1}`, string(st.Input))
		}
		return out2
	}

	// Each verb that has --json is checked below.
	var withJSON []string
	for _, c := range newRootCmd(io.Discard, io.Discard).Commands() {
		if c.Flags().Lookup("json") != nil {
			withJSON = append(withJSON, c.Name())
		}
	}
	require.ElementsMatch(t, []string{"bench", "list", "purge"}, withJSON) // bench: TestBenchVerb

	t.Run("list --all", func(t *testing.T) {
		r := cli(t, ctx, "list", "--all", "--nats", url, "--prefix", "pipe-", "--top", "7")
		clean(t, r)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, 1+len(all), "one table, one header")
		require.Regexp(t, `^ID +NAME +STATUS +CREATED +UPDATED$`, lines[0])
		for i, l := range lines[1:] {
			require.True(t, strings.HasPrefix(l, all[i]+" "), "line %q", l)
		}
		col := strings.Index(lines[0], "NAME")
		require.Equal(t, "Seeded", lines[len(lines)-1][col:col+6], "aligned across pages")
	})

	t.Run("list --all --json", func(t *testing.T) {
		r := cli(t, ctx, "list", "--all", "--json", "--nats", url, "--prefix", "pipe-", "--top", "7")
		clean(t, r)
		require.Equal(t, all, ids(t, r.stdout))
		one := cli(t, ctx, "list", "--json", "--nats", url, "--prefix", "pipe-", "--top", "1000")
		require.Equal(t, one.stdout, r.stdout, "the same text as one page")

		first := cli(t, ctx, "list", "--json", "--nats", url, "--prefix", "pipe-", "--top", "20")
		m := regexp.MustCompile(`--continue (\S+)\n$`).FindStringSubmatch(first.stderr)
		require.NotNil(t, m, "stderr: %q", first.stderr)
		r = cli(t, ctx, "list", "--all", "--json", "--nats", url, "--prefix", "pipe-", "--top", "7", "--continue", m[1])
		clean(t, r)
		require.Equal(t, all[20:], ids(t, r.stdout), "from the page of --continue on")

		r = cli(t, ctx, "list", "--all", "--json", "--nats", url, "--prefix", "nothing-")
		clean(t, r)
		require.Equal(t, "[]\n", r.stdout)

		requireOneLineError(t, cli(t, ctx, "list", "--all", "--nats", url, "--continue", "bogus!"), "--continue: ")
	})

	t.Run("purge --json", func(t *testing.T) {
		r := cli(t, ctx, "purge", done[0], "--json", "--nats", url)
		clean(t, r)
		require.Equal(t, `{"instancesDeleted":1}`+"\n", r.stdout)

		r = cli(t, ctx, "purge", "--created-before", "2025-06-02", "--json", "--nats", url)
		clean(t, r)
		require.Equal(t, `{"instancesDeleted":24}`+"\n", r.stdout)

		r = cli(t, ctx, "purge", "--created-before", "2025-06-02", "--nats", url)
		clean(t, r)
		require.Equal(t, "purged 0 instances\n", r.stdout)

		r = cli(t, ctx, "list", "--all", "--json", "--nats", url, "--prefix", "pipe-")
		clean(t, r)
		require.Equal(t, running, ids(t, r.stdout), "the running one is left")
	})
}

// TestProgressOnTerminal runs list --all and purge with stderr on a
// pseudo-terminal: the spinner and the bar are drawn there, and cleared,
// while stdout stays clean; with --json on the terminal too, no spinner
// is drawn over the array.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	url := e.Server.ClientURL()
	ctx := e.Context(60 * time.Second)
	seedStatuses(t, e, "tty-", 40, jetflow.StatusCompleted)

	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() { ptmx.Close() })
	var screen testkit.Buffer
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, ptmx) // until the terminal is closed
		read <- err
	}()
	// onScreen waits until the screen shows what was drawn: the output of
	// a command ends with a newline, or with the clearing of its bar.
	onScreen := func(t *testing.T, end *regexp.Regexp) string {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, "the terminal to show "+end.String(), func() bool {
			return end.MatchString(screen.String())
		})
		return screen.String()
	}

	// --json to the terminal: the array, and no spinner.
	code := run(ctx, []string{"list", "--all", "--json", "--nats", url, "--prefix", "tty-"}, tty, tty)
	require.Equal(t, 0, code)
	s := onScreen(t, regexp.MustCompile(`\n\]\r\n$`))
	require.NotContains(t, s, "listing")
	mark := len(s)

	// The table to a pipe: a spinner on the terminal.
	var stdout testkit.Buffer
	code = run(ctx, []string{"list", "--all", "--nats", url, "--prefix", "tty-", "--top", "10"}, &stdout, tty)
	require.Equal(t, 0, code)
	require.Len(t, strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"), 41)
	require.Empty(t, progressMarks(stdout.String()))
	s = onScreen(t, cleared)[mark:]
	require.Contains(t, s, "\r⠋ listing (0, ")
	mark += len(s)

	stdout = testkit.Buffer{}
	code = run(ctx, []string{"purge", "--created-before", "2025-06-02", "--nats", url}, &stdout, tty)
	require.Equal(t, 0, code)
	require.Equal(t, "purged 40 instances\n", stdout.String())
	// The bar is cleared before each drawing too: wait for the full one
	// and the clear after it, not for any clear.
	s = onScreen(t, regexp.MustCompile(`\(40/40, [^\r]*\r +\r$`))[mark:]
	for _, want := range []string{"\rpurging   0% |", "(40/40, ", "100% |"} {
		require.Contains(t, s, want)
	}

	require.NoError(t, tty.Close())
	testkit.Receive(t, read, 10*time.Second, "reading the terminal did not end")
}
