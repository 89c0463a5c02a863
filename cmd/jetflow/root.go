package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jetflow/jetflow/jetstream"
	"github.com/spf13/cobra"
)

// globalOptions are the flags every verb takes.
type globalOptions struct {
	hub string
}

// run executes the command line args and returns the process's exit
// status. Errors are written to stderr as one line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var q exitCode
	if errors.As(err, &q) {
		return int(q)
	}
	fmt.Fprintf(stderr, "jetflow: %s\n", oneLine(err.Error()))
	return 1
}

// newRootCmd builds the command tree, writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "jetflow",
		Short: "Durable orchestrations on NATS JetStream",
		Long: `jetflow runs durable orchestrations (Durable Functions style) on NATS JetStream.

Run everything for development with "jetflow dev"; the other verbs talk to a
running hub over NATS (--nats, or $JETFLOW_NATS_URL).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.PersistentFlags().StringVar(&g.hub, "hub", jetstream.DefaultHub,
		"hub (namespace of every stream and bucket, like a Durable Functions task hub)")
	root.AddCommand(
		newDevCmd(g),
		newWorkerCmd(g),
		newServerCmd(g),
		newStartCmd(g),
		newStatusCmd(g),
		newListCmd(g),
		newWatchCmd(g),
		newRaiseCmd(g),
		newControlCmd(g, terminateVerb),
		newControlCmd(g, suspendVerb),
		newControlCmd(g, resumeVerb),
		newControlCmd(g, rewindVerb),
		newRestartCmd(g),
		newPurgeCmd(g),
	)
	return root
}

// exitCode is an error that ends the process with that status and no
// message (for example after an interrupt).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// argsRange accepts between lo and hi positional arguments.
func argsRange(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("got %d arguments; usage: %s (see '%s --help')",
				len(args), strings.TrimSuffix(cmd.UseLine(), " [flags]"), cmd.CommandPath())
		}
		return nil
	}
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "; ")
}
