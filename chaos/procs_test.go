//go:build chaos

package chaos_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/stretchr/testify/require"
)

// proc is a child process in a process group of its own, with its output
// appended to a log file. It is killed with SIGKILL when the test ends,
// and when the test binary dies (Pdeathsig).
type proc struct {
	name string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// startProc starts a process; its log goes to logs/<name>.log in the
// test's log directory.
func startProc(t *testing.T, logs *logDir, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: logs.path(name)}
	p.start(t, path, args...)
	t.Cleanup(p.kill)
	return p
}

func (p *proc) start(t *testing.T, path string, args ...string) {
	t.Helper()
	require.NoError(t, p.startErr(path, args...))
}

// startErr starts the process again (or for the first time); it does not
// fail the test, so it may be called from any goroutine.
func (p *proc) startErr(path string, args ...string) error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format("15:04:05.000"), path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// pid is the process id of the current process (0 before it started).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// logCount counts the occurrences of s in the process's log.
func (p *proc) logCount(s string) int {
	b, _ := os.ReadFile(p.log)
	return bytes.Count(b, []byte(s))
}

// kill sends SIGKILL to the process's group and waits until it has exited.
// Killing a process that is not running does nothing.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// running reports whether the process is still alive.
func (p *proc) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// exited is closed when the current process has exited.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// logContains reports whether the process's log holds s.
func (p *proc) logContains(s string) bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte(s))
}

// logDir collects the logs of a test's processes and prints their tails
// when the test fails.
type logDir struct {
	dir   string
	mu    sync.Mutex
	names []string
}

func newLogDir(t *testing.T) *logDir {
	l := &logDir{dir: t.TempDir()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if keep := os.Getenv("JETFLOW_CHAOS_KEEP_LOGS"); keep != "" {
			dst := filepath.Join(keep, t.Name()+"-"+time.Now().Format("150405"))
			if err := os.CopyFS(dst, os.DirFS(l.dir)); err != nil {
				t.Logf("keeping the logs: %v", err)
			} else {
				t.Logf("logs kept in %s", dst)
			}
		}
		for _, n := range l.names {
			b, _ := os.ReadFile(filepath.Join(l.dir, n+".log"))
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("--- last lines of %s.log:\n%s", n, strings.Join(lines, "\n"))
		}
	})
	return l
}

func (l *logDir) path(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
	return filepath.Join(l.dir, name+".log")
}

// freePort returns a TCP port that was free a moment ago. It is taken
// below the kernel's ephemeral range, so that the source port of an
// outgoing connection (a route between servers dialing out, say) cannot
// take it before the server listens on it, nor between a kill and a
// restart; and never twice in one run.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	for range 1000 {
		if low <= first+1000 {
			break
		}
		p := first + rand.IntN(low-first)
		if usedPorts[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		usedPorts[p] = true
		return p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// natsNode is one nats-server process with a store directory that outlives
// its restarts, and fixed ports.
type natsNode struct {
	name     string
	port     int
	httpPort int
	conf     string
	p        *proc
}

// natsCluster is one nats-server, or a cluster of them.
type natsCluster struct {
	t     *testing.T
	logs  *logDir
	nodes []*natsNode
}

// startNATS starts n nats-server processes (n > 1: one cluster with routes
// between all of them) with JetStream, fsync on every write
// (sync_interval: always, as the embedded server runs), the default
// max_payload (1 MB), and waits until they are healthy.
func startNATS(t *testing.T, logs *logDir, n int) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, logs: logs}
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = freePort(t)
	}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		nd := &natsNode{name: "n" + strconv.Itoa(i+1), port: freePort(t), httpPort: freePort(t)}
		store := filepath.Join(base, nd.name)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n", nd.name, nd.port, nd.httpPort)
		// No max_payload: the stock 1 MB limit, as production runs
		// (openHub checks it on the connection).
		fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", store)
		if n > 1 {
			var routes []string
			for j, p := range clusterPorts {
				if j != i {
					routes = append(routes, fmt.Sprintf("\"nats-route://127.0.0.1:%d\"", p))
				}
			}
			fmt.Fprintf(&conf, "cluster {\n  name: \"chaos\"\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n", clusterPorts[i], strings.Join(routes, ", "))
		}
		nd.conf = filepath.Join(base, nd.name+".conf")
		require.NoError(t, os.WriteFile(nd.conf, []byte(conf.String()), 0o644))
		nd.p = startProc(t, logs, "nats-"+nd.name, bin.natsServer, "-c", nd.conf)
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		c.waitHealthy(nd, 60*time.Second)
	}
	return c
}

// URLs returns the client URLs of every node, comma-separated.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, nd.url())
	}
	return strings.Join(urls, ",")
}

func (nd *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(nd.port) }

// node returns the node named name.
func (c *natsCluster) node(name string) *natsNode {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no nats-server named %q", name)
	return nil
}

// kill kills a node with SIGKILL.
func (c *natsCluster) kill(nd *natsNode) {
	c.t.Helper()
	nd.p.kill()
	c.t.Logf("killed nats-server %s", nd.name)
}

// restart starts a killed node again on the same store directory and
// ports, and waits until it is healthy.
func (c *natsCluster) restart(nd *natsNode) {
	c.t.Helper()
	require.NoError(c.t, c.restartErr(nd))
	c.t.Logf("restarted nats-server %s", nd.name)
}

// restartErr is restart for any goroutine: it returns what went wrong
// instead of failing the test.
func (c *natsCluster) restartErr(nd *natsNode) error {
	if nd.p.running() {
		return fmt.Errorf("nats-server %s is still running", nd.name)
	}
	if err := nd.p.startErr(bin.natsServer, "-c", nd.conf); err != nil {
		return err
	}
	return c.healthy(nd, 60*time.Second)
}

// waitHealthy waits until the node's /healthz answers 200: it takes
// clients, JetStream is up, and (in a cluster) its meta group and streams
// are current.
func (c *natsCluster) waitHealthy(nd *natsNode, timeout time.Duration) {
	c.t.Helper()
	if err := c.healthy(nd, timeout); err != nil {
		c.t.Fatal(err)
	}
}

// healthy is waitHealthy for any goroutine.
func (c *natsCluster) healthy(nd *natsNode, timeout time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.httpPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !nd.p.running() {
			return fmt.Errorf("nats-server %s exited (see its log)", nd.name)
		}
		resp, err := hc.Get(url)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(b.String()))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nats-server %s not healthy after %s: %s", nd.name, timeout, last)
}

// worker is a `jetflow worker` process.
type worker struct {
	*proc
}

// ackWait is the ack wait of every worker the tests start: the default of
// `jetflow worker` (and of worker.Config), which the tests do not change,
// so that they run as production does. It is how long a message in flight
// to a killed or frozen worker waits before another worker gets it, and
// so the floor of every bound below that waits for such a message. A
// worker that is alive keeps what it holds alive with in-progress acks.
const ackWait = 30 * time.Second

// startWorker starts `jetflow worker` against urls, with the default ack
// wait, and waits until it takes work.
func startWorker(t *testing.T, logs *logDir, name, urls string, extra ...string) *worker {
	t.Helper()
	args := append([]string{"worker", "--nats", urls, "--log-level", "info"}, extra...)
	w := &worker{startProc(t, logs, name, bin.jetflow, args...)}
	testkit.WaitFor(t, 30*time.Second, "worker "+name+" to start", func() bool {
		if !w.running() {
			t.Fatalf("worker %s exited (see its log)", name)
		}
		return w.logContains("worker running")
	})
	return w
}

// signal sends sig to the process's group.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.signalErr(sig), "sending %s to %s", sig, p.name)
}

// signalErr is signal for any goroutine.
func (p *proc) signalErr(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	return syscall.Kill(-cmd.Process.Pid, sig)
}
