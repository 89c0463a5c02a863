package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/spf13/cobra"
)

func newListCmd(g *globalOptions) *cobra.Command {
	var (
		statuses, prefix, from, to, token string
		top                               int
		asJSON, all                       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List instances, a page at a time or all, filtered by status, id prefix and created time",
		Long: `List prints one page of the hub's instances, in instance id order: a table
(ID, NAME, STATUS, CREATED, UPDATED), or with --json the status JSON of each
(as "jetflow status" prints it) in an array.

Filters: --status keeps the listed runtime statuses (comma-separated, any case:
Pending, Running, Completed, ContinuedAsNew, Failed, Canceled, Terminated,
Suspended), --prefix the ids starting with P, --created-from and --created-to
the instances created in that range (inclusive; yyyy-MM-ddTHH:mm:ssZ, any RFC
3339 time, or yyyy-MM-dd, in UTC).

When more instances follow, the token and the command that prints the next
page go to stderr: run it again with --continue TOKEN.

With --all it prints every page, one table or one JSON array (from the page
of --continue on, when given), --top instances per request (default 1000).
While it lists, a spinner with the count so far is drawn on stderr when
stderr is a terminal (and, with --json, stdout is not: the array it prints
scrolls past there), and never otherwise. If a page fails midway, the JSON
array is left unterminated, and the exit status is 1.`,
		Example: `  jetflow list
  jetflow list --status running,pending --prefix order- --top 500
  jetflow list --created-from 2025-01-01 --json
  jetflow list --all --status failed --json > failed.json`,
		Args: argsRange(0, 0),
	}
	o := addClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVar(&statuses, "status", "", "keep these runtime statuses (comma-separated)")
	f.StringVar(&prefix, "prefix", "", "keep the instances whose id starts with this")
	f.IntVar(&top, "top", client.DefaultPageSize, fmt.Sprintf("instances per page (1 to %d)", client.MaxPageSize))
	f.StringVar(&from, "created-from", "", "keep the instances created at or after this time")
	f.StringVar(&to, "created-to", "", "keep the instances created at or before this time")
	f.StringVar(&token, "continue", "", "print the page after the one that gave this token")
	f.BoolVar(&asJSON, "json", false, "print a JSON array of status objects instead of a table")
	f.BoolVar(&all, "all", false, "print every page, not one")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := client.Query{InstanceIDPrefix: prefix, Top: top, ContinuationToken: token, OmitInput: !asJSON}
		if top < 1 || top > client.MaxPageSize {
			return fmt.Errorf("--top %d: want 1 to %d", top, client.MaxPageSize)
		}
		if all && !cmd.Flags().Changed("top") {
			q.Top = client.MaxPageSize
		}
		var err error
		if q.RuntimeStatus, err = parseStatusList(statuses); err != nil {
			return err
		}
		for _, t := range []struct {
			flag, v string
			dst     *time.Time
		}{{"--created-from", from, &q.CreatedTimeFrom}, {"--created-to", to, &q.CreatedTimeTo}} {
			if t.v == "" {
				continue
			}
			if *t.dst, err = httpapi.ParseTime(t.v); err != nil {
				return fmt.Errorf("%s: %w", t.flag, err)
			}
		}
		if all {
			return o.withClient(cmd.Context(), 0, func(ctx context.Context, c *client.Client) error {
				return listAll(ctx, cmd, c, q, asJSON)
			})
		}
		return o.withClient(cmd.Context(), requestTimeout, func(ctx context.Context, c *client.Client) error {
			page, err := c.ListInstances(ctx, q)
			if errors.Is(err, client.ErrInvalidContinuationToken) {
				return fmt.Errorf("--continue: %w", err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				err = printStatusesJSON(cmd.OutOrStdout(), page.Instances)
			} else {
				err = printStatusTable(cmd.OutOrStdout(), page.Instances)
			}
			if err != nil {
				return err
			}
			if page.ContinuationToken != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more instances follow; the next page:\n  %s\n", continueCommand(cmd, page.ContinuationToken))
			}
			return nil
		})
	}
	return cmd
}

// listAll prints every instance q selects, page after page: one table,
// or one JSON array written as the pages come. A spinner on stderr counts
// them while stderr is a terminal, unless the array is being written to
// that terminal too.
func listAll(ctx context.Context, cmd *cobra.Command, c *client.Client, q client.Query, asJSON bool) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	bar := newProgress(stderr, isTerminal(stderr) && !(asJSON && isTerminal(stdout)), -1, "listing")
	out := bufio.NewWriter(stdout)
	var (
		table *statusTable
		array *statusArray
	)
	if asJSON {
		array = &statusArray{w: out}
	} else {
		table = newStatusTable(out)
	}
	n := 0
	for st, err := range c.ListAll(ctx, q) {
		if errors.Is(err, client.ErrInvalidContinuationToken) {
			err = fmt.Errorf("--continue: %w", err)
		}
		if err != nil {
			bar.done()
			if n == 0 {
				return err
			}
			if asJSON {
				_ = out.Flush() // what was listed, in an array left open
			}
			return fmt.Errorf("listed %d instances, then: %w", n, err)
		}
		if asJSON {
			err = array.add(st)
		} else {
			table.add(st)
		}
		if err != nil {
			bar.done()
			return err
		}
		n++
		bar.set(n)
	}
	bar.done()
	var err error
	if asJSON {
		err = array.close()
	} else {
		err = table.flush()
	}
	if err != nil {
		return err
	}
	return out.Flush()
}

// parseStatusList reads --status: runtime status names separated by
// commas, in any case.
func parseStatusList(s string) ([]jetflow.RuntimeStatus, error) {
	out, err := jetflow.ParseRuntimeStatuses(s)
	if err != nil {
		return nil, fmt.Errorf("--status: %w", err)
	}
	return out, nil
}

// printStatusTable writes one line per instance under a header.
func printStatusTable(w io.Writer, sts []jetflow.Status) error {
	t := newStatusTable(w)
	for _, st := range sts {
		t.add(st)
	}
	return t.flush()
}

// statusTable is a table of statuses, one line per instance under a
// header, in columns aligned when it is flushed.
type statusTable struct{ tw *tabwriter.Writer }

func newStatusTable(w io.Writer) *statusTable {
	t := &statusTable{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "ID\tNAME\tSTATUS\tCREATED\tUPDATED")
	return t
}

// add adds the line of st; nothing is written before flush.
func (t *statusTable) add(st jetflow.Status) {
	fmt.Fprintf(t.tw, "%s\t%s\t%s\t%s\t%s\n", cell(st.InstanceID), cell(st.Name), st.RuntimeStatus,
		tableTime(st.CreatedTime), tableTime(st.LastUpdatedTime))
}

// flush writes the table.
func (t *statusTable) flush() error { return t.tw.Flush() }

// cell makes s safe for one table cell: tabs and line breaks would break
// the columns.
func cell(s string) string {
	if strings.ContainsAny(s, "\t\r\n") || s == "" {
		return strconv.Quote(s)
	}
	return s
}

func tableTime(t jetflow.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(jetflow.TimeFormat)
}

// printStatusesJSON writes the statuses as an indented JSON array.
func printStatusesJSON(w io.Writer, sts []jetflow.Status) error {
	a := &statusArray{w: w}
	for _, st := range sts {
		if err := a.add(st); err != nil {
			return err
		}
	}
	return a.close()
}

// statusArray writes statuses as one indented JSON array, a status at a
// time: the text json.MarshalIndent(sts, "", "  ") gives, and a newline.
type statusArray struct {
	w io.Writer
	n int // statuses written
}

// add writes st as the array's next element.
func (a *statusArray) add(st jetflow.Status) error {
	b, err := json.MarshalIndent(st, "  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if a.n == 0 {
		sep = "[\n  "
	}
	a.n++
	_, err = fmt.Fprintf(a.w, "%s%s", sep, b)
	return err
}

// close ends the array.
func (a *statusArray) close() error {
	end := "\n]\n"
	if a.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(a.w, end)
	return err
}

// secretFlags are the flags whose values continueCommand does not repeat.
var secretFlags = map[string]bool{"password": true, "token": true}

// continueFlags are the flags continueCommand repeats when given, in this
// order.
var continueFlags = []string{"status", "prefix", "top", "created-from", "created-to", "json",
	"hub", "nats", "creds", "nkey", "user", "password", "token", "tls-ca", "tls-cert", "tls-key"}

// continueCommand is the command line that prints the page after this
// one: the flags given, with --continue token. Secrets are not repeated.
func continueCommand(cmd *cobra.Command, token string) string {
	parts := []string{cmd.CommandPath()}
	for _, name := range continueFlags {
		f := cmd.Flags().Lookup(name)
		switch {
		case f == nil || !f.Changed:
		case secretFlags[name]:
			parts = append(parts, "--"+name, "'<"+name+">'")
		case f.Value.Type() == "bool":
			parts = append(parts, "--"+name+"="+f.Value.String())
		default:
			parts = append(parts, "--"+name, shellQuote(f.Value.String()))
		}
	}
	return strings.Join(append(parts, "--continue", shellQuote(token)), " ")
}

// shellQuote quotes s for a POSIX shell unless it needs no quotes.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/=@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
