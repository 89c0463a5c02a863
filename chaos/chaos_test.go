//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestChaos is the suite: each fault is a subtest, so that
//
//	go test -tags chaos -run Chaos ./chaos/             runs them all,
//	go test -tags chaos -run Chaos/Random ./chaos/      the randomized one,
//	go test -tags chaos -run Chaos/KillWorker ./chaos/  one by name.
//
// The subtests run in parallel, -parallel at a time (GOMAXPROCS by
// default: 2 on a 2-core machine): most of their time is spent waiting
// for ack waits to run out, which overlaps well. The longest come first.
func TestChaos(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Random", testRandom},
		{"StalledWorker", testStalledWorker},
		{"KillWorker", testKillWorker},
		{"ClusterLeaderKill", clusterLeaderKill(1)},
		{"ClusterLeaderKillPartitioned", clusterLeaderKill(3)},
		{"ServerRestart", testServerRestart},
		{"TimersAfterDowntime", testTimersAfterDowntime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// testKillWorker kills one of three workers with SIGKILL while 1,000
// instances run, starts a replacement, and checks that every instance
// completes with the right output and a sound history.
func testKillWorker(t *testing.T) {
	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 1)
	h := openHub(t, ns.URLs(), 1, 1)
	var workers []*worker
	for _, name := range []string{"worker-1", "worker-2", "worker-3"} {
		workers = append(workers, startWorker(t, logs, name, ns.URLs()))
	}
	h.waitRegistered(t, "E1_HelloSequence")
	h.waitRegistered(t, "FanOutFanIn")

	specs := mixed("kw", 1000)
	tr := newTracker(h)
	tr.trace = startTracer(t, ns, h.store.Names().Hub())
	tr.add(specs...)
	tr.follow(t)
	h.startAll(t, specs, 32)
	t.Logf("started %d instances in %s", len(specs), time.Since(began).Round(time.Millisecond))

	tr.waitFinished(t, len(specs)/5, 60*time.Second)
	workers[0].kill()
	f, total := tr.counts()
	t.Logf("killed worker-1 with %d/%d finished, at %s", f, total, time.Since(began).Round(time.Millisecond))
	if f == total {
		t.Fatal("every instance finished before the kill: the load is too small to test anything")
	}
	startWorker(t, logs, "worker-4", ns.URLs())

	// What the killed worker held comes back after the ack wait; the rest
	// of the load takes far less than the minute on top.
	tr.waitAll(t, ackWait+60*time.Second)
	t.Logf("all %d finished at %s", total, time.Since(began).Round(time.Millisecond))
	tr.verifyAll(t)
}

// testServerRestart kills the only nats-server with SIGKILL while
// instances run and new ones are being started, restarts it on the same
// store directory, and checks that every instance whose start returned
// success completes with the right output and a sound history; a start
// that failed during the fault (its outcome unknown) is retried after it,
// and must then complete too.
func testServerRestart(t *testing.T) {
	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 1)
	h := openHub(t, ns.URLs(), 1, 1)
	for _, name := range []string{"worker-1", "worker-2"} {
		startWorker(t, logs, name, ns.URLs())
	}
	h.waitRegistered(t, "E1_HelloSequence")
	h.waitRegistered(t, "FanOutFanIn")

	specs := mixed("sr", 600)
	tr := newTracker(h)
	tr.trace = startTracer(t, ns, h.store.Names().Hub())
	tr.add(specs...)
	tr.follow(t)
	h.startAll(t, specs, 32)
	live := startContinuously(t, h, tr, 20*time.Millisecond, func(i int) spec { return helloSpec(fmt.Sprintf("sr-live-%04d", i)) })

	tr.waitFinished(t, len(specs)/5, 60*time.Second)
	nd := ns.nodes[0]
	ns.kill(nd)
	f, total := tr.counts()
	t.Logf("killed the server with %d/%d finished, at %s", f, total, time.Since(began).Round(time.Millisecond))
	if f == total {
		t.Fatal("every instance finished before the kill: the load is too small to test anything")
	}
	time.Sleep(2 * time.Second) // down for a while: clients and workers retry
	ns.restart(nd)
	t.Logf("server back at %s", time.Since(began).Round(time.Millisecond))
	// The load goes on after the restart: instances finish, starts succeed.
	tr.waitFinished(t, f+50, 60*time.Second)
	n := live.count()
	testkit.WaitFor(t, 30*time.Second, "starts to succeed again", func() bool { return live.count() >= n+20 })
	acked, failed := live.halt(t)
	t.Logf("%d starts during the load succeeded, %d failed", acked, len(failed))
	h.retryStarts(t, tr, failed)

	// A message the server sent a worker just before it died, and which
	// never arrived, is delivered again after the ack wait.
	tr.waitAll(t, ackWait+60*time.Second)
	f, total = tr.counts()
	t.Logf("all %d finished at %s", total, time.Since(began).Round(time.Millisecond))
	tr.verifyAll(t)
}

// clusterLeaderKill runs the hub with 3 replicas (and the given
// partitions) on a cluster of three nats-servers, kills the leader of the
// (first partition's) inbox stream with SIGKILL while instances run, new
// ones are started and external events are raised, restarts it later, and
// checks that every start and event that returned success took effect
// exactly once (starts that failed are retried after the fault and must
// complete).
func clusterLeaderKill(partitions int) func(t *testing.T) {
	return func(t *testing.T) { testClusterLeaderKill(t, partitions) }
}

func testClusterLeaderKill(t *testing.T, partitions int) {
	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 3)
	h := openHub(t, ns.URLs(), 3, partitions)
	for _, name := range []string{"worker-1", "worker-2", "worker-3"} {
		startWorker(t, logs, name, ns.URLs(), "--replicas", "3")
	}
	for _, name := range []string{"E1_HelloSequence", "FanOutFanIn", "CityRecommender"} {
		h.waitRegistered(t, name)
	}
	t.Logf("cluster and workers up at %s", time.Since(began).Round(time.Millisecond))

	specs := mixed("cl", 400)
	var cities []spec
	for i := range 100 {
		cities = append(cities, citySpec(fmt.Sprintf("cl-city-%04d", i), i))
	}
	tr := newTracker(h)
	tr.trace = startTracer(t, ns, h.store.Names().Hub())
	tr.add(specs...)
	tr.add(cities...)
	tr.follow(t)
	h.startAll(t, append(specs, cities...), 32)
	raisedBefore := h.raiseAll(t, cities[:50])
	live := startContinuously(t, h, tr, 20*time.Millisecond, func(i int) spec { return helloSpec(fmt.Sprintf("cl-live-%04d", i)) })

	tr.waitFinished(t, len(specs)/5, 60*time.Second)
	orch := h.store.Names().InboxStream(0)
	leader := ns.node(h.streamLeader(t, orch))
	ns.kill(leader)
	f, total := tr.counts()
	t.Logf("killed %s, leader of %s, with %d/%d finished, at %s", leader.name, orch, f, total, time.Since(began).Round(time.Millisecond))
	if f == total {
		t.Fatal("every instance finished before the kill: the load is too small to test anything")
	}
	raisedDuring := h.raiseAll(t, cities[50:])
	// Two of three servers keep the hub going: a new leader is elected,
	// instances finish and starts succeed.
	t.Logf("new leader of %s: %s", orch, h.streamLeader(t, orch))
	n := live.count()
	tr.waitFinished(t, f+50, 60*time.Second)
	testkit.WaitFor(t, 30*time.Second, "starts to succeed again", func() bool { return live.count() >= n+20 })
	ns.restart(leader)
	t.Logf("%s back at %s", leader.name, time.Since(began).Round(time.Millisecond))
	n = live.count()
	testkit.WaitFor(t, 30*time.Second, "starts to succeed after the restart", func() bool { return live.count() >= n+20 })
	acked, failed := live.halt(t)
	t.Logf("%d starts during the load succeeded, %d failed", acked, len(failed))
	h.retryStarts(t, tr, failed)
	<-raisedBefore
	<-raisedDuring

	// What the killed leader had sent and nobody received is delivered
	// again after the ack wait.
	tr.waitAll(t, ackWait+60*time.Second)
	f, total = tr.counts()
	t.Logf("all %d finished at %s", total, time.Since(began).Round(time.Millisecond))
	tr.verifyAll(t)
}

// testTimersAfterDowntime starts instances that wait on a durable
// timer, kills every worker with SIGKILL, kills and restarts the
// nats-server while the timers are still pending, lets the timers come
// due while no worker runs, then starts a worker: every timer fires once
// and every instance completes.
func testTimersAfterDowntime(t *testing.T) {
	const (
		n     = 20
		delay = 8 // seconds
	)
	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 1)
	h := openHub(t, ns.URLs(), 1, 1)
	var workers []*worker
	for _, name := range []string{"worker-1", "worker-2"} {
		workers = append(workers, startWorker(t, logs, name, ns.URLs()))
	}
	h.waitRegistered(t, "Delay")

	var specs []spec
	for i := range n {
		specs = append(specs, delaySpec(fmt.Sprintf("tm-%02d", i), delay))
	}
	started := time.Now()
	h.startAll(t, specs, 8)
	due := started.Add(delay * time.Second)
	// Running means the first turn, which created the timer, is durable.
	testkit.WaitFor(t, 10*time.Second, "every instance to run", func() bool {
		for _, s := range specs {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := h.client.GetStatus(ctx, s.ID)
			cancel()
			if err != nil || st.RuntimeStatus != jetflow.StatusRunning {
				return false
			}
		}
		return true
	})
	for _, w := range workers {
		w.kill()
	}
	t.Logf("killed every worker at %s, %s before the timers are due", time.Since(began).Round(time.Millisecond), time.Until(due).Round(time.Millisecond))
	require.Greater(t, time.Until(due), 3*time.Second, "the timers came due before the workers were down: lengthen the delay")

	// The server too goes down and comes back while the timers wait.
	nd := ns.nodes[0]
	ns.kill(nd)
	ns.restart(nd)
	require.Greater(t, time.Until(due), time.Second, "the timers came due before the server was back: lengthen the delay")

	// The timers come due with no worker running: nothing may finish.
	time.Sleep(time.Until(due) + 3*time.Second)
	tr := newTracker(h)
	tr.add(specs...)
	tr.poll(context.Background())
	f, _ := tr.counts()
	require.Zero(t, f, "instances finished with no worker running")
	require.Zero(t, tr.errors.Load(), "reading statuses failed")

	startWorker(t, logs, "worker-3", ns.URLs())
	back := time.Now()
	tr.follow(t)
	tr.waitAll(t, 30*time.Second)
	t.Logf("all %d finished %s after a worker came back, at %s", n, time.Since(back).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	tr.verifyAll(t)
}

// testStalledWorker freezes one of three workers with SIGSTOP while
// 1,000 instances run. Its leases expire and the other two must finish
// every instance while it stays frozen. Then SIGCONT lets it go on with
// its stale cache, its turns and activities in progress: its late writes
// must lose the history fence, and once it has handled what it held, every
// instance is still Completed with the right output and a sound history.
func testStalledWorker(t *testing.T) {
	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 1)
	h := openHub(t, ns.URLs(), 1, 1)
	var workers []*worker
	for _, name := range []string{"worker-1", "worker-2", "worker-3"} {
		workers = append(workers, startWorker(t, logs, name, ns.URLs()))
	}
	h.waitRegistered(t, "E1_HelloSequence")
	h.waitRegistered(t, "FanOutFanIn")

	specs := mixed("st", 1000)
	tr := newTracker(h)
	tr.trace = startTracer(t, ns, h.store.Names().Hub())
	tr.add(specs...)
	tr.follow(t)
	h.startAll(t, specs, 32)

	tr.waitFinished(t, len(specs)/5, 60*time.Second)
	stalled := workers[0]
	stalled.signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()
	f, total := tr.counts()
	t.Logf("stopped worker-1 with %d/%d finished, at %s", f, total, time.Since(began).Round(time.Millisecond))
	if f == total {
		t.Fatal("every instance finished before the stall: the load is too small to test anything")
	}
	// The others take over what the frozen worker held, as its leases run
	// out after the ack wait. A frozen worker's pull requests stay open on
	// the server until they expire and may take a redelivered message
	// again, which then waits a second ack wait: two ack waits and the
	// rest of the load.
	tr.waitAll(t, 2*ackWait+30*time.Second)
	t.Logf("all %d finished with worker-1 frozen, %s after it stopped", total, time.Since(stoppedAt).Round(time.Millisecond))

	stalled.signal(t, syscall.SIGCONT)
	h.waitIdle(t, 30*time.Second)
	require.True(t, stalled.running(), "worker-1 died after it was continued")
	t.Logf("worker-1 continued and done, at %s", time.Since(began).Round(time.Millisecond))
	// Read every status again: none may have gone back.
	again := newTracker(h)
	again.add(specs...)
	again.poll(context.Background())
	again.verifyAll(t)
}
