package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	pb "github.com/jetflow/jetflow/internal/durabletask"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var grpcAddrRE = regexp.MustCompile(`(?:gRPC sidecar|Durable Task gRPC on)\s+(\S+)`)

func dialSidecar(t *testing.T, addr string) pb.TaskHubSidecarServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewTaskHubSidecarServiceClient(conn)
}

// TestSidecarVerb runs `jetflow sidecar` against an external NATS: an
// orchestrator named by --orchestrators is served to an SDK stream that
// announces nothing, and the process stops cleanly.
func TestSidecarVerb(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testkit.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"sidecar", "--nats", e.Server.ClientURL(), "--grpc", "127.0.0.1:0", "--orchestrators", "Answer",
			"--log-level", "warn"}, &out, &errOut)
	}()
	var addr string
	testkit.WaitFor(t, 20*time.Second, "the sidecar to print its address", func() bool {
		m := grpcAddrRE.FindStringSubmatch(out.String())
		if m == nil {
			return false
		}
		addr = m[1]
		return true
	})
	c := dialSidecar(t, addr)
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	_, err := c.Hello(cctx, &emptypb.Empty{})
	require.NoError(t, err)
	st, err := c.GetWorkItems(cctx, &pb.GetWorkItemsRequest{})
	require.NoError(t, err)
	first, err := st.Recv() // the first ping: the stream is open, the names served
	require.NoError(t, err)
	require.NotNil(t, first.GetHealthPing())
	resp, err := c.StartInstance(cctx, &pb.CreateInstanceRequest{Name: "Answer", InstanceId: "cli-1"})
	require.NoError(t, err)
	for {
		wi, err := st.Recv()
		require.NoError(t, err)
		if wi.GetOrchestratorRequest() == nil {
			continue // a health ping
		}
		_, err = c.CompleteOrchestratorTask(cctx, &pb.OrchestratorResponse{InstanceId: resp.GetInstanceId(), CompletionToken: wi.GetCompletionToken(),
			Actions: []*pb.OrchestratorAction{{Id: 1, OrchestratorActionType: &pb.OrchestratorAction_CompleteOrchestration{
				CompleteOrchestration: &pb.CompleteOrchestrationAction{OrchestrationStatus: pb.OrchestrationStatus_ORCHESTRATION_STATUS_COMPLETED,
					Result: wrapperspb.String("42")}}}}})
		require.NoError(t, err)
		break
	}
	got, err := c.WaitForInstanceCompletion(cctx, &pb.GetInstanceRequest{InstanceId: "cli-1", GetInputsAndOutputs: true})
	require.NoError(t, err)
	require.Equal(t, "42", got.GetOrchestrationState().GetOutput().GetValue())
	cancel()
	require.Equal(t, 0, testkit.Receive(t, code, 20*time.Second, "the sidecar to stop"), "stderr: %s", errOut.String())
}

// TestDevServesGRPC: dev's banner names its sidecar, which answers; a
// --grpc port in use is an error, the default one only a warning.
func TestDevServesGRPC(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0")
	m := grpcAddrRE.FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, "banner: %s", d.stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := dialSidecar(t, m[1]).Hello(ctx, &emptypb.Empty{})
	require.NoError(t, err)

	r := cli(t, ctx, "dev", "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--grpc", m[1])
	requireOneLineError(t, r, "--grpc "+m[1]+": address already in use")

	off := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--no-grpc")
	require.NotContains(t, off.stdout.String(), "gRPC sidecar")

	// With an admin key the sidecar requires it too.
	keyed := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api-key", "0123456789abcdef",
		"--grpc", "127.0.0.1:0")
	m = grpcAddrRE.FindStringSubmatch(keyed.stdout.String())
	require.NotNil(t, m, "banner: %s", keyed.stdout)
	_, err = dialSidecar(t, m[1]).Hello(ctx, &emptypb.Empty{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	_, err = dialSidecar(t, m[1]).Hello(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer 0123456789abcdef"), &emptypb.Empty{})
	require.NoError(t, err)
}

// TestSidecarFlags checks the sidecar's flag values under --check.
func TestSidecarFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := cli(t, ctx, "--check", "sidecar", "--nats", "nats://127.0.0.1:1", "--grpc", "127.0.0.1:4001", "--orchestrators", "A,B",
		"--activities", "C", "--max-items-per-stream", "4", "--ack-wait", "10s")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	for _, c := range []struct{ args, contains string }{
		{"sidecar --grpc nowhere", `--grpc "nowhere": want host:port`},
		{"sidecar --max-items-per-stream 0", "--max-items-per-stream 0: want at least 1"},
		{"sidecar --orchestrators ,,x" + strings.Repeat("y", 300), "--orchestrators"},
		{"dev --grpc nowhere", `--grpc "nowhere": want host:port`},
	} {
		requireOneLineError(t, cli(t, ctx, append([]string{"--check"}, strings.Fields(c.args)...)...), c.contains)
	}
}

// TestDevYieldsSampleNames: an SDK worker announcing names of dev's Go
// samples takes them over, so that one implementation runs each: the next
// E1_HelloSequence goes to the SDK's stream.
func TestDevYieldsSampleNames(t *testing.T) {
	t.Parallel()
	d := startDev(t, "--data", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0")
	m := grpcAddrRE.FindStringSubmatch(d.stdout.String())
	require.NotNil(t, m, "banner: %s", d.stdout)
	c := dialSidecar(t, m[1])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.GetWorkItems(ctx, &pb.GetWorkItemsRequest{WorkItemFilters: &pb.WorkItemFilters{
		Orchestrations: []*pb.OrchestrationFilter{{Name: "E1_HelloSequence"}}, Activities: []*pb.ActivityFilter{{Name: "E1_SayHello"}}}})
	require.NoError(t, err)
	testkit.WaitFor(t, 10*time.Second, "dev to hand the names over", func() bool {
		return strings.Contains(d.stdout.String(), "an SDK worker now serves E1_HelloSequence, E1_SayHello")
	})
	require.Equal(t, 202, d.post(t, "/runtime/webhooks/durabletask/orchestrators/E1_HelloSequence/yield-1", ""))
	for {
		wi, err := st.Recv()
		require.NoError(t, err)
		if r := wi.GetOrchestratorRequest(); r != nil {
			require.Equal(t, "yield-1", r.GetInstanceId())
			break
		}
	}
	status := d.waitStatus(t, "yield-1", func(jetflow.Status) bool { return true })
	require.NotEqual(t, jetflow.StatusCompleted, status.RuntimeStatus, "the Go sample did not run it")
}
