package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// allowedEmpty are the panels whose queries may find no series under a
// fault-free load, with the reason.
var allowedEmpty = map[string]string{
	"Fence conflicts / s": "a conflict needs two workers racing on one instance",
	"Redeliveries / s":    "a redelivery needs a worker that crashed, hung or stopped mid-task",
	"Errors / s":          "storage errors need a fault (NATS down, a fence lost, a message too large)",
}

// orphans is how many instances the test starts of an orchestrator that
// no worker runs.
const orphans = 5

const orphan = "Unserved"

// base is the HTTP API's path prefix.
const base = "/runtime/webhooks/durabletask"

// waitFor is testkit.WaitForNoError for a cond that says why it does not
// hold yet.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testkit.WaitForNoError(t, timeout, what, func() error {
		if ok, why := cond(); !ok {
			return errors.New(why)
		}
		return nil
	})
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// need returns the path of a binary, or skips the test without it.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found in PATH (Debian: apt-get install prometheus; .ci/run installs it)", name)
	}
	return p
}

// run starts a process that is interrupted at cleanup; its output is
// logged when the test failed.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // a clean shutdown
	cmd.WaitDelay = 10 * time.Second                                      // then killed
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

// api is a client of dev's HTTP API.
type api struct {
	t    *testing.T
	base string
}

func (a api) do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(a.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return resp.StatusCode, out
}

// start starts an instance of name and returns its id.
func (a api) start(name string, input any) string {
	a.t.Helper()
	code, body := a.do("POST", base+"/orchestrators/"+name, input)
	require.Equal(a.t, http.StatusAccepted, code, "start %s: %s", name, body)
	var r struct{ ID string }
	require.NoError(a.t, json.Unmarshal(body, &r))
	require.NotEmpty(a.t, r.ID)
	return r.ID
}

func (a api) status(id string) string {
	a.t.Helper()
	_, body := a.do("GET", base+"/instances/"+id, nil)
	var s struct{ RuntimeStatus string }
	require.NoError(a.t, json.Unmarshal(body, &s), "%s", body)
	return s.RuntimeStatus
}

// raise raises event once the instance has started, so that it is taken
// by a running execution.
func (a api) raise(id, event string, data any) {
	a.t.Helper()
	waitFor(a.t, 30*time.Second, id+" running", func() (bool, string) {
		s := a.status(id)
		return s == "Running", s
	})
	code, body := a.do("POST", base+"/instances/"+id+"/raiseEvent/"+event, data)
	require.Equal(a.t, http.StatusAccepted, code, "raise %s on %s: %s", event, id, body)
}

func (a api) waitStatus(id, want string) {
	a.t.Helper()
	waitFor(a.t, 60*time.Second, id+" "+want, func() (bool, string) {
		s := a.status(id)
		return s == want, s
	})
}

// load runs every sample to its end (and one that fails), and returns
// the id of E1_HelloSequence's instance.
func (a api) load() string {
	a.t.Helper()
	hello := a.start("E1_HelloSequence", nil)
	city := a.start("CityRecommender", 1)
	ticket := a.start("ReserveTicket", "user-1")
	status := a.start("SetStatusTest", nil)
	fan := a.start("FanOutFanIn", 10)
	delay := a.start("Delay", 1)
	bad := a.start("Delay", -1) // fails: a failure reason to chart
	a.raise(city, "CitySelected", "Seattle")
	a.raise(ticket, "BookingConfirmed", true)
	a.raise(status, "Done", nil)
	for _, id := range []string{hello, city, ticket, status, fan, delay} {
		a.waitStatus(id, "Completed")
	}
	a.waitStatus(bad, "Failed")
	return hello
}

// prom is a client of Prometheus's HTTP API.
type prom struct {
	t    *testing.T
	base string
}

type sample struct {
	Metric map[string]string
	Value  float64
}

// query asks an instant query and returns its samples (a scalar is one
// sample without labels).
func (p prom) query(expr string) ([]sample, error) {
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", expr, r.Error)
	}
	value := func(v [2]any) float64 {
		s, _ := v[1].(string)
		f, _ := strconv.ParseFloat(s, 64)
		if s == "NaN" {
			f = math.NaN()
		}
		return f
	}
	var out []sample
	switch r.Data.ResultType {
	case "vector":
		var vs []struct {
			Metric map[string]string
			Value  [2]any
		}
		if err := json.Unmarshal(r.Data.Result, &vs); err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, sample{Metric: v.Metric, Value: value(v.Value)})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		out = append(out, sample{Value: value(v)})
	default:
		return nil, fmt.Errorf("%s: result type %s", expr, r.Data.ResultType)
	}
	return out, nil
}

// one is the value of a query that must return one sample, or an error.
func (p prom) one(expr string) (float64, string) {
	s, err := p.query(expr)
	switch {
	case err != nil:
		return 0, err.Error()
	case len(s) != 1:
		return 0, fmt.Sprintf("%d samples", len(s))
	}
	return s[0].Value, ""
}

// TestDashboardAgainstPrometheus runs a real `jetflow dev` with a load of
// every sample, has a real Prometheus scrape it, and asks that Prometheus
// every panel's query: each must return data. The backlog of an
// orchestrator no worker runs is checked exactly.
func TestDashboardAgainstPrometheus(t *testing.T) {
	promBin := need(t, "prometheus")
	promtool := need(t, "promtool")
	dir := t.TempDir()

	bin := filepath.Join(dir, "jetflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/jetflow")
	build.Dir = "../.."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building jetflow: %s", out)

	httpAddr, natsAddr, promAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	run(t, bin, "dev", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--nats-listen", natsAddr, "--sync", "1s")
	dev := api{t: t, base: "http://" + httpAddr}
	waitFor(t, 60*time.Second, "jetflow dev serving /metrics", func() (bool, string) {
		resp, err := http.Get(dev.base + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: jetflow
    static_configs:
      - targets: [%q]
`, mustAbs(t, alertsFile), httpAddr)
	configFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(configFile, []byte(config), 0o644))
	check := exec.Command(promtool, "check", "config", configFile)
	out, err = check.CombinedOutput()
	require.NoError(t, err, "promtool check config: %s", out)
	run(t, promBin, "--config.file", configFile, "--storage.tsdb.path", filepath.Join(dir, "tsdb"),
		"--web.listen-address", promAddr, "--log.level", "warn")
	p := prom{t: t, base: "http://" + promAddr}
	waitFor(t, 60*time.Second, "Prometheus scraping jetflow dev", func() (bool, string) {
		v, why := p.one(`up{job="jetflow"}`)
		return v == 1, why
	})

	t.Run("promtool check metrics", func(t *testing.T) {
		resp, err := http.Get(dev.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = resp.Body
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics: %s", out)
	})

	began := time.Now()
	// A load of every sample, each to its end, twice: a counter's series
	// is born at its first increment, so rate and increase see only what
	// follows a scrape that found it.
	dev.load()
	ended := time.Now()
	waitFor(t, 30*time.Second, "a scrape after the first round", func() (bool, string) {
		ts, why := p.one(`timestamp(up{job="jetflow"})`)
		return why == "" && ts > float64(ended.UnixMilli())/1000, why
	})
	hello := dev.load()
	picture := os.Getenv(pictureEnv)
	if picture != "" {
		pictureLoad(t, dev, 2*time.Minute)
	}
	watch, err := http.Get(dev.base + base + "/instances/" + hello + "/watch")
	require.NoError(t, err)
	t.Cleanup(func() { watch.Body.Close() })

	// An orchestrator no worker runs: registered (so that starts take it)
	// and its durable consumer made, as a worker of it would have, but
	// nobody pulls.
	nc, err := nats.Connect("nats://" + natsAddr)
	require.NoError(t, err)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := storage.Open(ctx, nc, storage.Config{})
	require.NoError(t, err)
	require.NoError(t, store.Register(ctx, storage.KindOrchestrator, []string{orphan}, "deploy-check"))
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	names := store.Names()
	_, err = js.CreateOrUpdateConsumer(ctx, names.InboxStream(0), natsjs.ConsumerConfig{
		Durable: names.InboxConsumer(orphan), FilterSubject: names.OrchestratorInboxFilter(orphan),
		AckPolicy: natsjs.AckExplicitPolicy,
	})
	require.NoError(t, err)
	for range orphans {
		dev.start(orphan, nil)
	}
	orphansAt := time.Now()
	sel := fmt.Sprintf(`{kind="orchestrator",name=%q}`, orphan)
	waitFor(t, 30*time.Second, "the unserved backlog through Prometheus", func() (bool, string) {
		pending, why := p.one("jetflow_consumer_pending_messages" + sel)
		if why != "" || pending != orphans {
			return false, fmt.Sprintf("pending %v %s", pending, why)
		}
		waiting, why := p.one("jetflow_consumer_waiting_pulls" + sel)
		return why == "" && waiting == 0, fmt.Sprintf("waiting pulls %v %s", waiting, why)
	})
	open, why := p.one(fmt.Sprintf(`max(jetflow_instances{orchestrator=%q,runtime_status="Pending"})`, orphan))
	require.Empty(t, why)
	require.Equal(t, float64(orphans), open, "Pending instances of %s", orphan)

	// The alert rules, loaded by that Prometheus, see it too: pending (for
	// 2m) on the unserved orchestrator only.
	waitFor(t, 30*time.Second, "JetflowNoWorkerForBacklog pending", func() (bool, string) {
		s, err := p.query(`ALERTS{alertname="JetflowNoWorkerForBacklog"}`)
		if err != nil {
			return false, err.Error()
		}
		if len(s) != 1 {
			return false, fmt.Sprintf("%d alerts: %v", len(s), s)
		}
		return s[0].Metric["name"] == orphan && s[0].Metric["alertstate"] == "pending", fmt.Sprint(s[0].Metric)
	})

	// Every panel's query has data; the windows cover the whole run.
	for _, tg := range readDashboard(t) {
		expr := substitute(tg.Expr, "5m", "10m")
		reason, mayBeEmpty := allowedEmpty[tg.Panel]
		if mayBeEmpty {
			_, err := p.query(expr)
			require.NoError(t, err, "panel %q (%s)", tg.Panel, reason)
			continue
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("panel %q: %s", tg.Panel, expr), func() (bool, string) {
			s, err := p.query(expr)
			if err != nil {
				return false, err.Error()
			}
			for _, v := range s {
				if !math.IsNaN(v.Value) {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d samples, none a number", len(s))
		})
	}
	for name := range allowedEmpty {
		require.True(t, dashboardHasPanel(t, name), "allowedEmpty lists %q, which is no panel", name)
	}

	// The no-worker table names exactly the unserved orchestrator.
	s, err := p.query(substitute(noWorkerExpr(t), "5m", "10m"))
	require.NoError(t, err)
	require.Len(t, s, 1)
	require.Equal(t, orphan, s[0].Metric["name"])
	require.Equal(t, float64(orphans), s[0].Value)

	if picture != "" {
		waitFor(t, 30*time.Second, "the orphan backlog on the picture", func() (bool, string) {
			ts, why := p.one(`timestamp(up{job="jetflow"})`)
			return why == "" && ts > float64(orphansAt.Add(10*time.Second).UnixMilli())/1000, why
		})
		drawPicture(t, p, began, time.Now(), picture)
	}

	t.Run("promtool test rules", func(t *testing.T) {
		cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
		cmd.Dir = "../prometheus"
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	})
}

func noWorkerExpr(t *testing.T) string {
	t.Helper()
	for _, tg := range readDashboard(t) {
		if tg.Panel == "No worker serves it" {
			return tg.Expr
		}
	}
	t.Fatal("no panel No worker serves it")
	return ""
}

func dashboardHasPanel(t *testing.T, title string) bool {
	t.Helper()
	for _, tg := range readDashboard(t) {
		if tg.Panel == title {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}
