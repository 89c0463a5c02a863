package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line in-process.
func cli(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var stdout, stderr testkit.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func newEngine(t *testing.T) *testengine.Engine {
	return testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
}

// statusOf runs `jetflow status` and decodes its output.
func statusOf(t *testing.T, ctx context.Context, natsURL, id string) jetflow.Status {
	t.Helper()
	r := cli(t, ctx, "status", id, "--nats", natsURL)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "\n  \"runtimeStatus\"", "status JSON is indented")
	var st jetflow.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	return st
}

// watchLines decodes the output of `jetflow watch`: one compact JSON
// status per line.
func watchLines(t *testing.T, out string) []jetflow.Status {
	t.Helper()
	var sts []jetflow.Status
	for line := range strings.Lines(out) {
		var st jetflow.Status
		require.NoError(t, json.Unmarshal([]byte(line), &st), "line %q", line)
		sts = append(sts, st)
	}
	return sts
}

func requireOneLineError(t *testing.T, r result, contains string) {
	t.Helper()
	require.NotEqual(t, 0, r.code)
	require.Empty(t, r.stdout)
	require.True(t, strings.HasPrefix(r.stderr, "jetflow: "), "stderr: %q", r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr: %q", r.stderr)
	require.Contains(t, r.stderr, contains)
}

func TestClientVerbs(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	url := e.Server.ClientURL()

	t.Run("CityRecommender", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "start", "CityRecommender", "--input", "3", "--id", "trip 1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "trip 1\n", r.stdout)

		// Watch in the background until the instance finishes.
		type watched struct{ r result }
		done := make(chan watched, 1)
		go func() { done <- watched{cli(t, ctx, "watch", "trip 1", "--nats", url)} }()

		testkit.WaitFor(t, 10*time.Second, "trip 1 to run", func() bool {
			return statusOf(t, ctx, url, "trip 1").RuntimeStatus == jetflow.StatusRunning
		})
		st := statusOf(t, ctx, url, "trip 1")
		require.JSONEq(t, `3`, string(st.Input))

		r = cli(t, ctx, "raise", "trip 1", "CitySelected", `"London"`, "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)

		w := testkit.Receive(t, done, 20*time.Second, "watch did not exit after the instance finished")
		require.Equal(t, 0, w.r.code, "stderr: %s", w.r.stderr)
		sts := watchLines(t, w.r.stdout)
		require.NotEmpty(t, sts)
		last := sts[len(sts)-1]
		require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
		require.Equal(t, `"London"`, string(last.Output))
		require.JSONEq(t, `{"recommendedCities":["Tokyo","London"],"recommendedSeasons":["Spring","Summer"]}`, string(last.CustomStatus))
	})

	t.Run("HelloSequence", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "start", "E1_HelloSequence", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		id := strings.TrimSpace(r.stdout)
		require.Regexp(t, `^[0-9a-f]{32}$`, id)
		r = cli(t, ctx, "watch", id, "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		sts := watchLines(t, r.stdout)
		last := sts[len(sts)-1]
		require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
		require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(last.Output))
		// Watching a finished instance prints it once and exits.
		r = cli(t, ctx, "watch", id, "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Len(t, watchLines(t, r.stdout), 1)
	})

	t.Run("Terminate", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "start", "SetStatusTest", "--id", "term-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "terminate", "term-1", "--reason", "no longer needed", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "watch", "term-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		sts := watchLines(t, r.stdout)
		last := sts[len(sts)-1]
		require.Equal(t, jetflow.StatusTerminated, last.RuntimeStatus)
		require.Equal(t, `"no longer needed"`, string(last.Output))

		requireOneLineError(t, cli(t, ctx, "terminate", "term-1", "--nats", url), "instance finished")
		requireOneLineError(t, cli(t, ctx, "raise", "term-1", "Done", "--nats", url), "instance finished")
	})

	t.Run("SuspendResume", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		r := cli(t, ctx, "start", "SetStatusTest", "--id", "pause-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "suspend", "pause-1", "--reason", "maintenance", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "suspended instance \"pause-1\"\n", r.stdout)
		r = cli(t, ctx, "raise", "pause-1", "Done", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "resume", "pause-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "watch", "pause-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		sts := watchLines(t, r.stdout)
		require.Equal(t, jetflow.StatusCompleted, sts[len(sts)-1].RuntimeStatus)
		requireOneLineError(t, cli(t, ctx, "resume", "pause-1", "--nats", url), "instance finished")

		r = cli(t, ctx, "restart", "pause-1", "--same-id", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "pause-1\n", r.stdout)
		requireOneLineError(t, cli(t, ctx, "restart", "pause-1", "--nats", url), "only a finished instance can be restarted")
	})

	t.Run("RewindPurge", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		// ReserveTicket fails on an input that is not a user id.
		r := cli(t, ctx, "start", "ReserveTicket", "--input", "5", "--id", "fails-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		r = cli(t, ctx, "watch", "fails-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		sts := watchLines(t, r.stdout)
		require.Equal(t, jetflow.StatusFailed, sts[len(sts)-1].RuntimeStatus)

		r = cli(t, ctx, "rewind", "fails-1", "--reason", "try again", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "rewound instance \"fails-1\"\n", r.stdout)
		// It fails again (the input is still wrong), after the rewind.
		testkit.WaitFor(t, 20*time.Second, "fails-1 to fail again after the rewind", func() bool {
			r := cli(t, ctx, "status", "fails-1", "--history", "--nats", url)
			return r.code == 0 && strings.Contains(r.stdout, `"EventType": "ExecutionRewound"`) &&
				strings.Count(r.stdout, `"EventType": "ExecutionCompleted"`) == 2
		})
		r = cli(t, ctx, "start", "SetStatusTest", "--id", "runs-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		requireOneLineError(t, cli(t, ctx, "rewind", "runs-1", "--nats", url), "only a failed instance can be rewound")

		r = cli(t, ctx, "purge", "fails-1", "--nats", url)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "purged instance \"fails-1\"\n", r.stdout)
		requireOneLineError(t, cli(t, ctx, "status", "fails-1", "--nats", url), `instance not found: "fails-1"`)
		requireOneLineError(t, cli(t, ctx, "purge", "fails-1", "--nats", url), `instance not found: "fails-1"`)
		requireOneLineError(t, cli(t, ctx, "purge", "--nats", url), "--created-before")
		requireOneLineError(t, cli(t, ctx, "purge", "--created-before", "2030-01-01", "--status", "running", "--nats", url), "only finished instances")
		requireOneLineError(t, cli(t, ctx, "purge", "--created-before", "yesterday", "--nats", url), "--created-before")
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
		closed := closedPort(t)
		for _, tt := range []struct {
			name     string
			args     []string
			contains string
		}{
			{"BadInput", []string{"start", "E1_HelloSequence", "--input", "{bad", "--nats", url}, "--input is not valid JSON"},
			{"UnknownOrchestrator", []string{"start", "NoSuchThing", "--nats", url}, `unknown orchestrator: "NoSuchThing"`},
			{"InvalidID", []string{"start", "E1_HelloSequence", "--id", "a/b", "--nats", url}, "invalid instance id"},
			{"StatusUnknown", []string{"status", "nope", "--nats", url}, `instance not found: "nope"`},
			{"WatchUnknown", []string{"watch", "nope", "--nats", url}, `instance not found: "nope"`},
			{"RaiseUnknown", []string{"raise", "nope", "Done", "--nats", url}, `instance not found: "nope"`},
			{"RaiseBadJSON", []string{"raise", "nope", "Done", "{", "--nats", url}, "event data is not valid JSON"},
			{"TerminateUnknown", []string{"terminate", "nope", "--nats", url}, `instance not found: "nope"`},
			{"NoNATS", []string{"status", "x", "--nats", "nats://" + closed}, "connecting to NATS"},
			{"MissingArg", []string{"start"}, "usage: jetflow start NAME"},
			{"ExtraArg", []string{"status", "a", "b"}, "usage: jetflow status ID"},
			{"UnknownFlag", []string{"status", "a", "--bogus"}, "unknown flag: --bogus"},
			{"UnknownVerb", []string{"frobnicate"}, `unknown command "frobnicate"`},
			{"BadHub", []string{"status", "a", "--hub", "a.b", "--nats", url}, `hub "a.b"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ctx := e.Context(30 * time.Second) // from when the subtest runs, not when it was queued
				requireOneLineError(t, cli(t, ctx, tt.args...), tt.contains)
			})
		}
		// Nothing was started by the failed starts.
		requireOneLineError(t, cli(t, ctx, "status", "a/b", "--nats", url), "invalid instance id")
	})
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, verb := range []string{"", "dev", "worker", "server", "start", "status", "watch", "raise", "terminate", "suspend", "resume", "restart"} {
		args := []string{"--help"}
		if verb != "" {
			args = []string{verb, "--help"}
		}
		r := cli(t, context.Background(), args...)
		require.Equal(t, 0, r.code, "%s: %s", verb, r.stderr)
		require.Contains(t, r.stdout, "Usage:")
		require.Contains(t, r.stdout, strings.TrimSpace("jetflow "+verb))
	}
}

// TestNATSURLFromEnv is not parallel: it sets an environment variable.
func TestNATSURLFromEnv(t *testing.T) {
	t.Setenv(natsURLEnv, "nats://example.invalid:4222")
	cmd, _, err := newRootCmd(io.Discard, io.Discard).Find([]string{"status"})
	require.NoError(t, err)
	require.Equal(t, "nats://example.invalid:4222", cmd.Flags().Lookup("nats").DefValue)
}

// closedPort returns a host:port that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// devProcess is `jetflow dev` running in-process.
type devProcess struct {
	cancel           context.CancelFunc
	done             chan int
	stdout, stderr   *testkit.Buffer
	httpURL, natsURL string
}

var (
	httpURLRE = regexp.MustCompile(`HTTP API\s+(http://\S+)`)
	natsURLRE = regexp.MustCompile(`NATS\s+(nats://\S+)`)
)

func startDev(t *testing.T, args ...string) *devProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devProcess{cancel: cancel, done: make(chan int, 1), stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	go func() { d.done <- run(ctx, append([]string{"dev"}, args...), d.stdout, d.stderr) }()
	t.Cleanup(func() { d.stop(t) })
	testkit.WaitForNoError(t, 20*time.Second, "dev to start", func() error {
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("dev exited with %d: %s%s", code, d.stdout, d.stderr)
		default:
		}
		if !strings.Contains(d.stdout.String(), "Press Ctrl-C") {
			return fmt.Errorf("output so far: %s%s", d.stdout, d.stderr)
		}
		return nil
	})
	out := d.stdout.String()
	d.httpURL = httpURLRE.FindStringSubmatch(out)[1]
	d.natsURL = natsURLRE.FindStringSubmatch(out)[1]
	return d
}

// stop cancels dev as Ctrl-C does and checks that it exits cleanly.
func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	code := testkit.Receive(t, d.done, 20*time.Second, "dev did not stop")
	d.done <- code
	require.Equal(t, 0, code, "stderr: %s", d.stderr)
}

func (d *devProcess) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(d.httpURL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (d *devProcess) post(t *testing.T, path, body string) int {
	t.Helper()
	resp, err := http.Post(d.httpURL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitStatus polls an instance's status until cond holds.
func (d *devProcess) waitStatus(t *testing.T, id string, cond func(jetflow.Status) bool) jetflow.Status {
	t.Helper()
	var st jetflow.Status
	testkit.WaitForNoError(t, 20*time.Second, "the status of "+id, func() error {
		code, body := d.get(t, "/runtime/webhooks/durabletask/instances/"+id)
		st = jetflow.Status{}
		if code == http.StatusOK || code == http.StatusAccepted {
			require.NoError(t, json.Unmarshal(body, &st))
			if cond(st) {
				return nil
			}
		}
		return fmt.Errorf("last answer %d %s", code, body)
	})
	return st
}

func TestDev(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--data", dir, "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}
	const base = "/runtime/webhooks/durabletask"

	d := startDev(t, args...)
	out := d.stdout.String()
	for _, s := range []string{dir, "orchestrators CityRecommender, ", "E1_HelloSequence, ", "kv watch jetflow-status",
		"curl -i -X POST " + d.httpURL + base + "/orchestrators/E1_HelloSequence/hello-1", "watch --nats " + d.natsURL} {
		require.Contains(t, out, s)
	}
	code, body := d.get(t, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", string(body))

	require.Equal(t, http.StatusAccepted, d.post(t, base+"/orchestrators/E1_HelloSequence/hello-1", ""))
	st := d.waitStatus(t, "hello-1", func(st jetflow.Status) bool { return st.Finished() })
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))

	// An instance left waiting for an event when dev stops.
	require.Equal(t, http.StatusAccepted, d.post(t, base+"/orchestrators/CityRecommender/trip-1", "1"))
	d.waitStatus(t, "trip-1", func(st jetflow.Status) bool { return len(st.CustomStatus) > 0 && string(st.CustomStatus) != "null" })

	// The CLI reaches dev's NATS.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.Equal(t, jetflow.StatusCompleted, statusOf(t, ctx, d.natsURL, "hello-1").RuntimeStatus)

	d.stop(t)
	require.Contains(t, d.stdout.String(), "shutting down")

	// Start again on the same store: the finished instance is still there
	// and the waiting one resumes.
	d = startDev(t, args...)
	code, body = d.get(t, base+"/instances/hello-1")
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))

	require.Equal(t, http.StatusAccepted, d.post(t, base+"/instances/trip-1/raiseEvent/CitySelected", `"Seattle"`))
	st = d.waitStatus(t, "trip-1", func(st jetflow.Status) bool { return st.Finished() })
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Equal(t, `"Seattle"`, string(st.Output))
	d.stop(t)
}

func TestDevPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	for _, flag := range []string{"--http", "--nats-listen"} {
		args := []string{"dev", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", flag, l.Addr().String()}
		start := time.Now()
		r := cli(t, context.Background(), args...)
		requireOneLineError(t, r, flag+" "+l.Addr().String()+": address already in use")
		require.Less(t, time.Since(start), 5*time.Second)
	}
}

// TestWorkerAndServer runs `jetflow worker` twice and `jetflow server`
// against an external NATS (no embedded workers): the HTTP API starts
// instances that the worker processes run, and all stop cleanly.
func TestWorkerAndServer(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	natsURL := e.Server.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type proc struct {
		out  testkit.Buffer
		code chan int
	}
	launch := func(args ...string) *proc {
		p := &proc{code: make(chan int, 1)}
		go func() {
			var stderr testkit.Buffer
			code := run(ctx, append(args, "--nats", natsURL, "--log-level", "warn"), &p.out, &stderr)
			if code != 0 {
				t.Logf("%v: %s", args, stderr.String())
			}
			p.code <- code
		}()
		return p
	}
	workers := []*proc{launch("worker"), launch("worker", "--concurrency", "8")}
	server := launch("server", "--http", "127.0.0.1:0")
	var httpURL string
	testkit.WaitFor(t, 10*time.Second, "server to print its address", func() bool {
		out := server.out.String()
		i := strings.Index(out, "http://")
		if i < 0 {
			return false
		}
		httpURL = strings.Fields(out[i:])[0]
		return true
	})

	const base = "/runtime/webhooks/durabletask"
	// The workers register the samples' names as they start.
	testkit.WaitFor(t, 10*time.Second, "the samples to be registered", func() bool {
		resp, err := http.Post(httpURL+base+"/orchestrators/E1_HelloSequence/split-1", "application/json", nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	})
	st, err := e.Client.WaitForCompletion(e.Context(20*time.Second), "split-1")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Equal(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))

	cancel() // SIGTERM
	for _, p := range append(workers, server) {
		require.Equal(t, 0, testkit.Receive(t, p.code, 20*time.Second, "a process did not stop"))
	}
}

func TestConnectionFlags(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	requireOneLineError(t, cli(t, ctx, "status", "x", "--tls-cert", "c.pem"), "--tls-cert and --tls-key go together")
	requireOneLineError(t, cli(t, ctx, "status", "x", "--nkey", "/no/such/seed"), "--nkey")
	requireOneLineError(t, cli(t, ctx, "worker", "--creds", "/no/such/creds", "--nats", "nats://127.0.0.1:1"), "connecting to NATS")
	e := testengine.New(t, testengine.Options{Workers: -1, Store: jetstream.Config{Hub: "r9"}})
	requireOneLineError(t, cli(t, ctx, "worker", "--replicas", "9", "--hub", "r9x", "--nats", e.Server.ClientURL()), "replicas 9")
}
