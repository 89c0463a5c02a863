package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
)

// TestDevMetrics: after the README's example (one E1_HelloSequence over
// HTTP), GET /metrics on dev's HTTP port shows what happened: the start
// and completion, three activities, the request by route, the open
// instances, the backlog of the consumers; each with the hub's label.
func TestDevMetrics(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0")
	const base = "/runtime/webhooks/durabletask"
	require.Equal(t, http.StatusAccepted, d.post(t, base+"/orchestrators/E1_HelloSequence/hello-1", ""))
	st := d.waitStatus(t, "hello-1", func(st jetflow.Status) bool { return st.Finished() })
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)

	for _, want := range []string{
		`jetflow_orchestrations_started_total{hub="jetflow",orchestrator="E1_HelloSequence"} 1`,
		`jetflow_orchestrations_completed_total{hub="jetflow",orchestrator="E1_HelloSequence",status="Completed"} 1`,
		`jetflow_activity_executions_total{activity="E1_SayHello",hub="jetflow",outcome="completed"} 3`,
		`jetflow_http_requests_total{code="202",hub="jetflow",method="POST",route="POST /runtime/webhooks/durabletask/orchestrators/{name}/{instanceId}"} 1`,
		`jetflow_instances{hub="jetflow",orchestrator="E1_HelloSequence",runtime_status="Completed"} 1`,
		`jetflow_consumer_pending_messages{hub="jetflow",kind="activity",name="E1_SayHello"} 0`,
		`jetflow_build_info{`,
	} {
		testkit.WaitForNoError(t, 10*time.Second, want, func() error {
			code, body := d.get(t, "/metrics")
			if code != http.StatusOK {
				return fmt.Errorf("GET /metrics: %d %s", code, body)
			}
			if !strings.Contains(string(body), want) {
				return errors.New("not in the scrape")
			}
			return nil
		})
	}
}

// TestDevNATSMonitor: --nats-monitor serves the embedded NATS's
// monitoring, which the NATS Prometheus exporter reads (/varz, /jsz), and
// the banner says where; a bad address is a one-line error.
func TestDevNATSMonitor(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--nats-monitor", "127.0.0.1:0")
	m := regexp.MustCompile(`NATS monitor\s+(http://\S+)`).FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, "the banner names the monitor: %s", d.stdout)
	get := func(path string) map[string]any {
		resp, err := http.Get(m[1] + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		var v map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v), path)
		return v
	}
	require.NotNil(t, get("/varz")["jetstream"], "varz has JetStream")
	jsz := get("/jsz?streams=true")
	require.GreaterOrEqual(t, jsz["streams"], float64(5), "the hub's streams and buckets: %v", jsz)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	requireOneLineError(t, cli(t, ctx, "dev", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--nats-monitor", "nowhere"),
		"--nats-monitor")
}
