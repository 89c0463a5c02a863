package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

var listCreated = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

// shellSplit splits a command line that shellQuote quoted.
func shellSplit(t *testing.T, line string) []string {
	t.Helper()
	var args []string
	var cur strings.Builder
	inQuote, started := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inQuote && c == '\'':
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == '\'':
			inQuote, started = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == ' ':
			if started {
				args = append(args, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	require.False(t, inQuote, "unbalanced quotes in %q", line)
	if started {
		args = append(args, cur.String())
	}
	return args
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	url := e.Server.ClientURL()
	ctx := e.Context(60 * time.Second)
	outs := make([]storage.Outgoing, 25)
	for i := range outs {
		st := &jetflow.Status{Name: "Listed", InstanceID: fmt.Sprintf("cli-%02d", i), RuntimeStatus: jetflow.StatusCompleted,
			Input:           json.RawMessage(`"in"`),
			CreatedTime:     jetflow.Time{Time: listCreated.Add(time.Duration(i) * time.Minute)},
			LastUpdatedTime: jetflow.Time{Time: listCreated.Add(time.Duration(i)*time.Minute + time.Second)}}
		if i%5 == 0 {
			st.RuntimeStatus = jetflow.StatusFailed
		}
		o, err := e.Storage.StatusWrite(st.InstanceID, st, 0)
		require.NoError(t, err)
		outs[i] = o
	}
	require.NoError(t, storage.FirstError(e.Storage.Publish(ctx, outs...)))

	t.Run("table", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "list", "--nats", url, "--prefix", "cli-0", "--status", "failed,Completed")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Empty(t, r.stderr, "one page: nothing to continue")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		require.Len(t, lines, 11)
		require.Regexp(t, `^ID +NAME +STATUS +CREATED +UPDATED$`, lines[0])
		require.Regexp(t, `^cli-00 +Listed +Failed +2025-06-01T08:00:00Z +2025-06-01T08:00:01Z$`, lines[1])
		require.Regexp(t, `^cli-09 +Listed +Completed +2025-06-01T08:09:00Z +2025-06-01T08:09:01Z$`, lines[10])
		// The columns line up.
		col := strings.Index(lines[0], "NAME")
		for _, l := range lines[1:] {
			require.Equal(t, "Listed", l[col:col+6], "line %q", l)
		}
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "list", "--nats", url, "--json", "--status", "FAILED", "--created-from", "2025-06-01T08:05:00Z", "--created-to", "2025-06-01T10:20:00+02:00")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		var sts []jetflow.Status
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &sts))
		got := make([]string, len(sts))
		for i, st := range sts {
			got[i] = st.InstanceID
			require.Equal(t, `"in"`, string(st.Input))
		}
		require.Equal(t, []string{"cli-05", "cli-10", "cli-15", "cli-20"}, got)

		r = cli(t, ctx, "list", "--nats", url, "--json", "--prefix", "nothing")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "[]\n", r.stdout)
	})

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		args := []string{"list", "--nats", url, "--top", "10", "--json"}
		var got []string
		for page := 1; ; page++ {
			r := cli(t, ctx, args...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			var sts []jetflow.Status
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &sts))
			for _, st := range sts {
				got = append(got, st.InstanceID)
			}
			if page == 3 {
				require.Len(t, sts, 5)
				require.Empty(t, r.stderr, "the last page: nothing to continue")
				break
			}
			require.Len(t, sts, 10)
			m := regexp.MustCompile(`(?m)^more instances follow; the next page:\n  (jetflow list .*--continue \S+)\n$`).FindStringSubmatch(r.stderr)
			require.NotNil(t, m, "stderr: %q", r.stderr)
			next := shellSplit(t, m[1])
			require.Contains(t, m[1], "--top 10")
			require.Contains(t, m[1], "--nats "+url)
			args = next[1:] // run the command it printed
		}
		want := make([]string, 25)
		for i := range want {
			want[i] = fmt.Sprintf("cli-%02d", i)
		}
		require.Equal(t, want, got)
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		for _, tt := range []struct {
			args     []string
			contains string
		}{
			{[]string{"--status", "Sleeping"}, `"Sleeping" is not a runtime status`},
			{[]string{"--top", "0"}, "--top 0: want 1 to 1000"},
			{[]string{"--top", "1001"}, "--top 1001"},
			{[]string{"--created-from", "yesterday"}, `--created-from: "yesterday" is not a time`},
			{[]string{"--created-to", "2025-02-30"}, "--created-to"},
			{[]string{"--continue", "bogus!"}, `--continue: invalid option: continuation token "bogus!"`},
			{[]string{"--prefix", "a/b"}, "instance id prefix"},
			{[]string{"extra"}, "usage: jetflow list"},
		} {
			requireOneLineError(t, cli(t, ctx, append([]string{"list", "--nats", url}, tt.args...)...), tt.contains)
		}
		requireOneLineError(t, cli(t, ctx, "list", "--nats", "nats://"+closedPort(t)), "connecting to NATS")
	})

	t.Run("help", func(t *testing.T) {
		t.Parallel()
		r := cli(t, context.Background(), "list", "--help")
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, "jetflow list [flags]")
		require.Contains(t, r.stdout, "--continue")
	})
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc":        "abc",
		"order-1":    "order-1",
		"":           "''",
		"a b":        "'a b'",
		"it's":       `'it'\''s'`,
		"nats://h:1": "nats://h:1",
		"$HOME":      "'$HOME'",
	} {
		require.Equal(t, want, shellQuote(in))
		require.Equal(t, []string{in}, shellSplit(t, shellQuote(in)), "round trip of %q", in)
	}
}
