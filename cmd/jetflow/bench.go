package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"text/tabwriter"
	"time"

	"github.com/jetflow/jetflow/internal/bench"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

func newBenchCmd(g *globalOptions) *cobra.Command {
	var (
		scenario           string
		instances, workers int
		changes, steps     int
		uncachedSteps      int
		replicas           int
		partitions         int
		sync               time.Duration
		monitor            string
		cpuProfile         string
		memProfile         string
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the engine: throughput, latency and the share of the raw JetStream write rate it uses",
		Long: `Bench runs a scenario and reports orchestrations and activities per second,
end-to-end latency (p50, p99, one instance alone), the messages the hub
stores per orchestration, and, measured in the same run on the same server,
the raw JetStream write rate and the ceiling ratio (orchestrations/s x writes
per orchestration / raw writes/s): a figure that stays comparable on a shared
or noisy machine.

Scenarios: hello (E1_HelloSequence, --instances at once), fanout (FanOutFanIn
of 100 and of 1,000 activities), status-watch (--changes custom status
changes, from their commit to a Go watcher and to an SSE client of the HTTP
API), long-history (one instance of --steps sequential activities, and of
--uncached-steps with the sticky cache off: the step time at the start and at
the end), waiting (--instances instances waiting for an event: start rate,
memory, completion rate), scale (the hello load with 1, 2 and 4 workers),
all. Without --nats it runs on an embedded server in a temporary directory
that fsyncs every write (--sync sets an interval); with --nats, on that hub
(its streams are created with --replicas if new; the reference streams it
writes to are made and deleted, which needs the admin role), with --workers
workers in this process (0: the hub's own workers serve the samples; the
status-watch, long-history and scale scenarios need workers here).
--cpuprofile and --memprofile write pprof profiles of the run (go tool pprof).
See docs/BENCHMARKS.md.`,
		Args: argsRange(0, 0),
	}
	o := addClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "hello", "scenario: "+strings.Join(bench.Scenarios, ", ")+" or all")
	f.IntVar(&instances, "instances", 0, "instances the hello and scale scenarios start at once (default 300) and the waiting scenario leaves waiting (default 10000)")
	f.IntVar(&workers, "workers", 1, "workers run in this process, each on its own connection (0: none)")
	f.IntVar(&changes, "changes", 200, "custom status changes the status-watch scenario measures")
	f.IntVar(&steps, "steps", 5000, "sequential activities of the long-history scenario's instance")
	f.IntVar(&uncachedSteps, "uncached-steps", 1000, "sequential activities of the long-history scenario's instance with the sticky cache off")
	f.IntVar(&replicas, "replicas", 1, "replicas of the hub's streams when bench creates them (3 on a cluster)")
	addPartitionsFlag(cmd, &partitions)
	f.DurationVar(&sync, "sync", 0, "fsync interval of the embedded server; 0 fsyncs every write")
	f.StringVar(&monitor, "monitor", "", "monitoring `URL` of the --nats server (e.g. http://n1:8222): its memory in the waiting scenario")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE`")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile to `FILE` at the end of the run")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		scenarios := []string{scenario}
		if scenario == "all" {
			scenarios = bench.Scenarios
		}
		cfg := bench.Config{Instances: instances, Workers: workers, NoWorkers: workers == 0, Sync: sync,
			Changes: changes, Steps: steps, UncachedSteps: uncachedSteps, MonitorURL: monitor,
			Hub: jetstream.Config{Hub: o.hub, Replicas: replicas, Partitions: partitions}}
		switch {
		case scenario != "all" && !slices.Contains(bench.Scenarios, scenario):
			return fmt.Errorf("--scenario %q: want one of %s or all", scenario, strings.Join(bench.Scenarios, ", "))
		case sync < 0:
			return fmt.Errorf("--sync %s: want 0 or a positive interval", sync)
		case f.Changed("instances") && instances < 1:
			return fmt.Errorf("--instances %d: want at least 1", instances)
		case workers < 0:
			return fmt.Errorf("--workers %d: want 0 or more", workers)
		case changes < 1:
			return fmt.Errorf("--changes %d: want at least 1", changes)
		case steps < 2:
			return fmt.Errorf("--steps %d: want at least 2", steps)
		case uncachedSteps < 2:
			return fmt.Errorf("--uncached-steps %d: want at least 2", uncachedSteps)
		case monitor != "" && !strings.HasPrefix(monitor, "http://") && !strings.HasPrefix(monitor, "https://"):
			return fmt.Errorf("--monitor %q: want an http:// or https:// URL", monitor)
		}
		if cmd.Flags().Changed("nats") || o.natsURL != defaultNATSURL {
			cfg.Connect = func(name string) (*nats.Conn, error) { return o.dial(name, nats.MaxReconnects(-1)) }
		}
		stopProfiles, err := startProfiles(cpuProfile, memProfile)
		if err != nil {
			return err
		}
		stderr := cmd.ErrOrStderr()
		tty := isTerminal(stderr)
		var results []*bench.Result
		for _, s := range scenarios {
			cfg.Scenario = s
			// Progress is called from the scenario's goroutines; a call
			// after the end is dropped.
			var (
				mu       gosync.Mutex
				bar      *progress
				finished bool
			)
			cfg.Progress = func(done, total int) {
				mu.Lock()
				defer mu.Unlock()
				if finished {
					return
				}
				if bar == nil {
					bar = newProgress(stderr, tty, total, s)
				}
				bar.set(done)
			}
			r, err := bench.Run(cmd.Context(), cfg)
			mu.Lock()
			finished = true
			bar.done()
			mu.Unlock()
			if err != nil {
				_ = stopProfiles()
				return fmt.Errorf("bench %s: %w", s, err)
			}
			results = append(results, r)
		}
		if err := stopProfiles(); err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(results)
		}
		return printBench(cmd.OutOrStdout(), results)
	}
	return cmd
}

// startProfiles starts a CPU profile into cpuFile (if set) and returns
// what ends it and writes the heap profile into memFile (if set). Both
// files are created at once, so that a path that cannot be written fails
// before the run.
func startProfiles(cpuFile, memFile string) (stop func() error, err error) {
	var cpu, heap *os.File
	if cpuFile != "" {
		if cpu, err = os.Create(cpuFile); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if memFile != "" {
		if heap, err = os.Create(memFile); err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			return nil, fmt.Errorf("--memprofile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if heap != nil {
			runtime.GC() // the heap profile is as of the last collection
			if err := pprof.WriteHeapProfile(heap); err != nil {
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
			if err := heap.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// printBench writes results as a table, and the figures of each scenario
// that has its own under it.
func printBench(w io.Writer, results []*bench.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tINSTANCES\tWORKERS\tORCH/S\tACT/S\tP50 MS\tP99 MS\tALONE MS\tWRITES/ORCH\tRAW WRITES/S\tCEILING")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Instances, r.Workers,
			figure(r.OrchestrationsPerSecond, 1), figure(r.ActivitiesPerSecond, 1), millis(r.P50), millis(r.P99), millis(r.Alone),
			figure(r.WritesPerOrchestration, 1), figure(r.RawWritesPerSecond, 0), figure(r.CeilingRatio, 2))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, c := range r.Cases {
			fmt.Fprintf(w, "%s: %s in %.2f s\n", r.Scenario, c.Name, c.Seconds)
		}
		if s := r.StatusWatch; s != nil {
			for _, l := range []struct {
				name string
				l    bench.Latency
			}{{"commit -> raw KV watch", s.RawWatch}, {"commit -> Go watcher", s.Watcher}, {"commit -> SSE client", s.SSE},
				{"raise event -> Go watcher", s.EventToWatcher}} {
				fmt.Fprintf(w, "%s: %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d changes)\n", r.Scenario, l.name, l.l.P50, l.l.P99, l.l.Max, s.Changes)
			}
		}
		if h := r.LongHistory; h != nil {
			for _, c := range []struct {
				name string
				s    bench.Steps
			}{{"cached", h.Cached}, {"cache off", h.Uncached}} {
				fmt.Fprintf(w, "%s: %s: %d activities (%d events) in %.1f s; step %.2f ms at the start, %.2f ms at the end (x%.2f; medians of %d)\n",
					r.Scenario, c.name, c.s.Activities, c.s.Events, c.s.Seconds, c.s.Start, c.s.End, c.s.Ratio, c.s.Window)
			}
		}
		if r.PlainWritesPerOrchestration > 0 {
			fmt.Fprintf(w, "%s: %.1f writes/orch for the same three calls without custom statuses (as Durable Functions' E1_HelloSequence)\n",
				r.Scenario, r.PlainWritesPerOrchestration)
		}
		if v := r.Waiting; v != nil {
			fmt.Fprintf(w, "%s: %.0f starts/s, %.0f waiting/s, %.0f raises/s, %.0f completed/s\n", r.Scenario,
				v.StartsPerSecond, v.WaitingPerSecond, v.RaisesPerSecond, v.CompletedPerSecond)
			fmt.Fprintf(w, "%s: %d waiting: process RSS %.0f MB (from %.0f; %.1f KB per instance), Go heap %.0f MB (from %.0f; %.1f KB per instance)\n",
				r.Scenario, r.Instances, v.RSSMB, v.BaselineRSSMB, v.RSSPerInstanceKB, v.HeapMB, v.BaselineHeapMB, v.HeapPerInstanceKB)
			if v.ServerMemMB > 0 {
				fmt.Fprintf(w, "%s: server memory %.0f MB (from %.0f; %.1f KB per instance)\n", r.Scenario,
					v.ServerMemMB, v.BaselineServerMemMB, v.ServerPerInstanceKB)
			}
			fmt.Fprintf(w, "%s: stored per instance: %.0f bytes waiting, %.0f bytes finished (streams and buckets, as the server counts them)\n",
				r.Scenario, v.WaitingBytesPerInstance, v.FinishedBytesPerInstance)
		}
		for _, p := range r.Scale {
			var split string
			if p.CPUShares != nil {
				split = fmt.Sprintf(" (server %.0f%%, engine %.0f%%, bench %.0f%%, other %.0f%%)", 100*p.CPUShares["server"],
					100*p.CPUShares["engine"], 100*p.CPUShares["bench"], 100*p.CPUShares["other"])
			}
			fmt.Fprintf(w, "%s: %d workers: %.1f orch/s (x%.2f), p50 %.1f ms, p99 %.1f ms, CPU %.2f ms/orch%s, %.2f cores busy; per orch %.2f cache misses, %.2f catch-ups, %.2f conflicts\n",
				r.Scenario, p.Workers, p.OrchestrationsPerSecond, p.Ratio, p.P50, p.P99, p.CPUPerOrchestration, split, p.CoresBusy,
				p.MissesPerOrchestration, p.CatchUpsPerOrchestration, p.ConflictsPerOrchestration)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	return nil
}

// figure formats a rate or ratio with prec decimals; "-" for one not
// measured.
func figure(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// millis formats a latency in milliseconds; "-" for one not measured.
func millis(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}
