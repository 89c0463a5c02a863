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
	// check is --check: parse and validate the command line, then exit
	// without running the verb.
	check bool
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
	root.PersistentFlags().BoolVar(&g.check, "check", false,
		"check the command line (the verb, its flags and their values, its arguments) and exit without doing anything")
	_ = root.PersistentFlags().MarkHidden("check") // for deploy/check, not a verb of its own
	root.AddCommand(
		newDevCmd(g),
		newWorkerCmd(g),
		newServerCmd(g),
		newSidecarCmd(g),
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
		newInitCmd(g),
		newHealthcheckCmd(g),
		newBenchCmd(g),
		newNATSRolesCmd(g),
	)
	checkOnly(root, g)
	return root
}

// checkOnly makes every verb under root honour --check: cobra has parsed
// the flags and checked the arguments by the time it calls RunE, so with
// --check a verb returns there, before it reads a file, listens or
// connects. The root itself, which otherwise prints its help, refuses
// --check without a verb. deploy/check runs the command line of every
// jetflow service of deploy/compose and container of deploy/k8s this way.
func checkOnly(root *cobra.Command, g *globalOptions) {
	var wrap func(*cobra.Command)
	wrap = func(cmd *cobra.Command) {
		for _, c := range cmd.Commands() {
			wrap(c)
		}
		if runE := cmd.RunE; runE != nil {
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if g.check {
					return nil
				}
				return runE(cmd, args)
			}
		}
	}
	wrap(root)
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if g.check {
			return fmt.Errorf("--check: no verb given (see '%s --help')", cmd.CommandPath())
		}
		return cmd.Help()
	}
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
