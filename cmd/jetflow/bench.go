package main

import (
	"encoding/json"
	"fmt"
	"io"
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
		replicas           int
		sync               time.Duration
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
of 100 and of 1,000 activities), all. Without --nats it runs on an embedded
server in a temporary directory that fsyncs every write (--sync sets an
interval); with --nats, on that hub (its streams are created with --replicas
if new; the reference streams it writes to are made and deleted, which needs
the admin role), with --workers workers in this process (0: the hub's own
workers serve the samples). See docs/BENCHMARKS.md.`,
		Args: argsRange(0, 0),
	}
	o := addClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "hello", "scenario: hello, fanout or all")
	f.IntVar(&instances, "instances", 300, "instances the hello scenario starts at once")
	f.IntVar(&workers, "workers", 1, "workers run in this process, each on its own connection (0: none)")
	f.IntVar(&replicas, "replicas", 1, "replicas of the hub's streams when bench creates them (3 on a cluster)")
	f.DurationVar(&sync, "sync", 0, "fsync interval of the embedded server; 0 fsyncs every write")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		scenarios := []string{scenario}
		if scenario == "all" {
			scenarios = bench.Scenarios
		}
		cfg := bench.Config{Instances: instances, Workers: workers, NoWorkers: workers == 0, Sync: sync,
			Hub: jetstream.Config{Hub: o.hub, Replicas: replicas}}
		switch {
		case sync < 0:
			return fmt.Errorf("--sync %s: want 0 or a positive interval", sync)
		case instances < 1:
			return fmt.Errorf("--instances %d: want at least 1", instances)
		case workers < 0:
			return fmt.Errorf("--workers %d: want 0 or more", workers)
		}
		if cmd.Flags().Changed("nats") || o.natsURL != defaultNATSURL {
			cfg.Connect = func(name string) (*nats.Conn, error) { return o.dial(name, nats.MaxReconnects(-1)) }
		}
		stderr := cmd.ErrOrStderr()
		tty := isTerminal(stderr)
		var results []*bench.Result
		for _, s := range scenarios {
			cfg.Scenario = s
			var bar *progress
			cfg.Progress = func(done, total int) {
				if bar == nil {
					bar = newProgress(stderr, tty, total, s)
				}
				bar.set(done)
			}
			r, err := bench.Run(cmd.Context(), cfg)
			bar.done()
			if err != nil {
				return fmt.Errorf("bench %s: %w", s, err)
			}
			results = append(results, r)
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

// printBench writes results as a table, and the cases of each under it.
func printBench(w io.Writer, results []*bench.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tINSTANCES\tWORKERS\tORCH/S\tACT/S\tP50 MS\tP99 MS\tALONE MS\tWRITES/ORCH\tRAW WRITES/S\tCEILING")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%.1f\t%.0f\t%.2f\n", r.Scenario, r.Instances, r.Workers,
			r.OrchestrationsPerSecond, r.ActivitiesPerSecond, millis(r.P50), millis(r.P99), millis(r.Alone),
			r.WritesPerOrchestration, r.RawWritesPerSecond, r.CeilingRatio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, c := range r.Cases {
			fmt.Fprintf(w, "%s: %s in %.2f s\n", r.Scenario, c.Name, c.Seconds)
		}
	}
	return nil
}

// millis formats a latency in milliseconds; "-" for one not measured.
func millis(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}
