package cli

// The projections commands: an operator's view of projectors through
// their checkpoints (package projection), and the requests that steer a
// projector another process runs.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource/cmd/eventsource/console"
	"github.com/eventsource-go/eventsource/projection"
)

// mismatchError is verify's finding: the read model's delivery does not
// match the log (exit code ExitMismatch).
type mismatchError struct {
	name           string
	mismatches, of int
	from, to       uint64
}

func (e mismatchError) Error() string {
	verb := "do"
	if e.mismatches == 1 {
		verb = "does"
	}
	return fmt.Sprintf("projection %q: %d of %s %s not match the log (positions %d–%d)", e.name, e.mismatches, plural(int64(e.of), "range"), verb, e.from, e.to)
}

func (a *app) projectionsCmd() *cobra.Command {
	f := &checkpointFlags{}
	cmd := group(&cobra.Command{
		Use:   "projections",
		Short: "Inspect and steer projectors through their checkpoints",
		Long: `projections reads the checkpoints of persistent projections (package
projection) and leaves requests there for the instance running each one, in
this machine or another: it acts on them within its polling interval, or on
its next run when none is running.

The checkpoints are read from the event store's own database (table
es_projections): for sqlite://, mysql:// and postgres:// stores, the table a
projector with sqlcheckpoint.New(store.DB(), …) or pgcheckpoint.New(pool)
writes. --checkpoints URL names another database (sqlite://, mysql:// or
postgres://); memory://, nats:// and dynamodb:// stores need it.
--table-prefix and --schema (PostgreSQL) match the projector's
WithTablePrefix and WithSchema. Nothing is created: a missing table is
"not found".

Statuses: new, running (to run: the HOLDER column names the instance
running it, empty while none holds the lease), stopped, resetting, deleting,
faulted (see its error; start retries the event, skip skips it), superseded
and dropped (an older version after a blue/green rebuild).

verify exits with code 6 when the read model missed events or handled some
twice.`,
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "checkpoints", "", "URL of the database holding the checkpoints (default: the event store's)")
	pf.StringVar(&f.prefix, "table-prefix", "es_", "prefix of the checkpoint table ({prefix}projections)")
	pf.StringVar(&f.schema, "schema", "", "PostgreSQL schema of the checkpoint table (default: the search_path)")
	cmd.AddCommand(a.projListCmd(f), a.projStatusCmd(f), a.projParkedCmd(f), a.projReplayCmd(f), a.projDiscardCmd(f),
		a.projVerifyCmd(f), a.projRequestCmd(f, "stop"), a.projStartCmd(f), a.projRequestCmd(f, "reset"), a.projRequestCmd(f, "skip"),
		a.projLiveCmd(f))
	return cmd
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// oneLineText keeps a handler's error on one table row.
func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

func (a *app) projListCmd(f *checkpointFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List projections: status, position, holder, parked events",
		Long: `list prints every projection checkpoint: its status, the last position it
handled, the instance holding its lease (empty when none runs it), how many
events it parked, the live version on a blue/green projector's first row, and
the error of a faulted one.`,
		Example: `  eventsource projections list
  eventsource projections list --checkpoints postgres://app@db/app --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			all, err := c.list(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				for _, cp := range all {
					if err := printJSON(out, console.FromCheckpoint(cp)); err != nil {
						return err
					}
				}
			} else {
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSTATUS\tPOSITION\tHOLDER\tPARKED\tLIVE\tERROR")
				for _, cp := range all {
					last, _ := console.Handled(cp)
					live, errText := "", ""
					if cp.Live > 0 {
						live = "v" + strconv.Itoa(cp.Live)
					}
					if cp.Status == projection.StatusFaulted {
						errText = oneLineText(cp.Error)
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", cp.Name, console.StatusName(cp.Status), last, cp.Holder, len(cp.Parked), live, errText)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), plural(int64(len(all)), "projection"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

func (a *app) projStatusCmd(f *checkpointFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Print one projection's checkpoint in detail",
		Long: `status prints a projection's checkpoint: the last position handled and the
low-water mark (every position up to it is handled; parallel workers commit
out of order, so some above it may be handled too), its status and pending
request, the instance holding its lease and until when, the event that
faulted it, the skipped and parked events, its delivery digests (what verify
checks), its version and the version serving reads.`,
		Example: `  eventsource projections status balances
  eventsource projections status balances@v2 --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			cp, err := c.load(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			live, err := projection.LiveVersion(cmd.Context(), c, baseName(cp.Name))
			if err != nil {
				return err
			}
			if asJSON {
				j := console.FromCheckpoint(cp)
				j.LiveVersion = live
				return printJSON(cmd.OutOrStdout(), j)
			}
			return printStatus(cmd.OutOrStdout(), cp, live)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object")
	return cmd
}

func printStatus(out io.Writer, cp projection.Checkpoint, live int) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%s:\t"+format+"\n", append([]any{k}, args...)...) }
	last, above := console.Handled(cp)
	row("projection", "%s", cp.Name)
	row("status", "%s", console.StatusName(cp.Status))
	row("position", "%d (the last handled)", last)
	row("low-water mark", "%d (every position up to it handled; %s handled above it)", cp.Position, plural(int64(above), "position"))
	if cp.Request == projection.RequestNone {
		row("request", "none")
	} else {
		row("request", "%s (pending)", cp.Request)
	}
	switch {
	case cp.Holder != "":
		row("holder", "%s (lease until %s)", cp.Holder, cp.LeaseUntil.Format(time.RFC3339))
	case cp.Owner != "":
		row("holder", "none (the lease of %s ran out at %s)", cp.Owner, cp.LeaseUntil.Format(time.RFC3339))
	default:
		row("holder", "none")
	}
	if cp.FaultedAt > 0 || cp.Error != "" {
		row("faulted at", "%d", cp.FaultedAt)
		row("error", "%s", oneLineText(cp.Error))
	}
	row("skipped", "%d%s", len(cp.Skipped), positionList(cp.Skipped))
	parked := make([]uint64, len(cp.Parked))
	for i, pe := range cp.Parked {
		parked[i] = pe.Position
	}
	row("parked", "%d%s", len(cp.Parked), positionList(parked))
	if at, ok := console.OldestParked(cp); ok {
		row("oldest parked", "%s (%s ago)", at.Format(time.RFC3339), time.Since(at).Round(time.Second))
	}
	if cp.DigestRange > 0 {
		row("digests", "from position %d: %s of up to %d events", cp.DigestsFrom, plural(int64(len(cp.Digests)), "range"), cp.DigestRange)
	} else {
		row("digests", "none")
	}
	row("version", "%d", max(cp.Version, 1))
	row("live version", "%d", live)
	if !cp.UpdatedAt.IsZero() {
		row("updated at", "%s", cp.UpdatedAt.Format(time.RFC3339))
	}
	return w.Flush()
}

// positionList is " (positions 3, 9)", the first few of ps.
func positionList(ps []uint64) string {
	if len(ps) == 0 {
		return ""
	}
	s := make([]string, 0, 10)
	for i, p := range ps {
		if i == 10 {
			s = append(s, "…")
			break
		}
		s = append(s, strconv.FormatUint(p, 10))
	}
	if len(ps) == 1 {
		return " (position " + s[0] + ")"
	}
	return " (positions " + strings.Join(s, ", ") + ")"
}

// baseName is the name of a projector's first version: its row names the
// live version. Version n's checkpoint is "name@vn".
func baseName(name string) string {
	if i := strings.LastIndex(name, "@v"); i > 0 {
		if _, err := strconv.Atoi(name[i+2:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// parkedJSON is how parked prints an event with --json.
type parkedJSON struct {
	Position uint64    `json:"position"`
	Stream   string    `json:"stream"`
	Type     string    `json:"type"`
	Key      string    `json:"key"`
	Attempts int       `json:"attempts,omitempty"`
	ParkedAt time.Time `json:"parked_at"`
	Behind   uint64    `json:"behind,omitempty"`
	Error    string    `json:"error,omitempty"`
	Replay   bool      `json:"replay,omitempty"`
}

func (a *app) projParkedCmd(f *checkpointFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "parked NAME",
		Short: "List the events a projector parked",
		Long: `parked lists the events a projector with ErrorPolicy{Park: true} set aside,
oldest first: the event whose handler kept failing (with its error and
attempts), and the events of its partition key parked behind it to keep their
order (BEHIND names the event they wait for). replay applies them again,
discard gives them up.`,
		Example: `  eventsource projections parked balances`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			cp, err := c.load(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			replay := 0
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(w, "POSITION\tSTREAM\tTYPE\tKEY\tATTEMPTS\tPARKED AT\tBEHIND\tERROR")
			}
			for _, pe := range cp.Parked {
				if pe.Replay {
					replay++
				}
				if asJSON {
					if err := printJSON(out, parkedJSON{pe.Position, pe.Stream, pe.Type, pe.Key, pe.Attempts, pe.At, pe.Behind, pe.Error, pe.Replay}); err != nil {
						return err
					}
					continue
				}
				behind := "-"
				if pe.Behind > 0 {
					behind = strconv.FormatUint(pe.Behind, 10)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", pe.Position, pe.Stream, pe.Type, pe.Key, pe.Attempts, pe.At.Format(time.RFC3339), behind, oneLineText(pe.Error))
			}
			if !asJSON {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			msg := plural(int64(len(cp.Parked)), "parked event")
			if replay > 0 {
				msg += fmt.Sprintf(" (%d to be replayed)", replay)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

// parsePositions reads the POSITION arguments.
func parsePositions(args []string) ([]uint64, error) {
	ps := make([]uint64, 0, len(args))
	for _, s := range args {
		p, err := strconv.ParseUint(s, 10, 64)
		if err != nil || p == 0 {
			return nil, usagef("position %q: want a global position (1, 2, …)", s)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// notParkedHint says how to see what is parked.
func notParkedHint(err error, name string) error {
	if errors.Is(err, projection.ErrNotParked) {
		return fmt.Errorf("%w (eventsource projections parked %s lists them)", err, name)
	}
	return err
}

// runnerNote says who acts on a request left for cp's runner.
func runnerNote(cp projection.Checkpoint) string {
	if cp.Holder != "" {
		return fmt.Sprintf("%s, which runs it, acts on it within its polling interval", cp.Holder)
	}
	return "no instance runs it now: its next run acts on it"
}

func (a *app) projReplayCmd(f *checkpointFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "replay NAME [POSITION...]",
		Short: "Ask a projector to apply parked events again",
		Long: `replay asks the projector to apply the parked events at the positions given,
or all of them when none is given, once its handler is fixed. The events parked
behind one are replayed with it, in order. An event that fails again stays
parked with its attempts counted. A position that is not parked is bad input
(exit code 2).`,
		Example: `  eventsource projections replay balances 1207
  eventsource projections replay balances`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			positions, err := parsePositions(args[1:])
			if err != nil {
				return err
			}
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			name := args[0]
			cur, err := c.load(cmd.Context(), name)
			if err != nil {
				return err
			}
			if len(cur.Parked) == 0 {
				return fmt.Errorf("%w: %s has no parked events to replay", projection.ErrNotParked, name)
			}
			if err := c.replay(cmd.Context(), name, positions...); err != nil {
				return notParkedHint(err, name)
			}
			cp, err := c.Load(cmd.Context(), name)
			if err != nil {
				return err
			}
			var marked []uint64
			for _, pe := range cp.Parked {
				if pe.Replay {
					marked = append(marked, pe.Position)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "asked %s to replay %s%s; %s\n", name, plural(int64(len(marked)), "parked event"), positionList(marked), runnerNote(cp))
			return nil
		},
	}
}

func (a *app) projDiscardCmd(f *checkpointFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "discard NAME POSITION...",
		Short: "Give parked events up for good",
		Long: `discard gives up the parked events at the positions given: they are recorded
as skipped and never applied. Events parked behind one are replayed, so their
key flows again. A position that is not parked is bad input (exit code 2).`,
		Example: `  eventsource projections discard balances 1207`,
		Args:    usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			positions, err := parsePositions(args[1:])
			if err != nil {
				return err
			}
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			name := args[0]
			if _, err := c.load(cmd.Context(), name); err != nil {
				return err
			}
			if err := c.discard(cmd.Context(), name, positions...); err != nil {
				return notParkedHint(err, name)
			}
			cp, err := c.Load(cmd.Context(), name)
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("discarded %s%s of %s: recorded as skipped", plural(int64(len(positions)), "parked event"), positionList(positions), name)
			if cp.Request == projection.RequestReplay {
				msg += "; the events parked behind them are replayed: " + runnerNote(cp)
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
}

// verifyJSON is how verify prints its report with --json.
type verifyJSON struct {
	Name       string         `json:"name"`
	OK         bool           `json:"ok"`
	From       uint64         `json:"from"`
	To         uint64         `json:"to"`
	Ranges     int            `json:"ranges"`
	Events     uint64         `json:"events"`
	Mismatches []mismatchJSON `json:"mismatches,omitempty"`
}

type mismatchJSON struct {
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	Want    uint64 `json:"want_events"`
	Got     uint64 `json:"got_events"`
	WantSum uint64 `json:"want_sum"`
	GotSum  uint64 `json:"got_sum"`
	Message string `json:"message"`
}

func (a *app) projVerifyCmd(f *checkpointFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Check that a projector handled every event once (exit code 6 if not)",
		Long: `verify recomputes from the log the digests of the events the checkpoint says
were handled and compares them, range by range, with the digests the projector
committed with its read model. A range where an event was missed or handled
twice is printed, and the exit code is 6. Events removed from the log since (a
scavenge, a truncation) show as handled more than once. It reads the event
store as well as the checkpoints.`,
		Example: `  eventsource projections verify balances`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.openCheckpoints(cmd, f, true)
			if err != nil {
				return err
			}
			defer c.Close()
			cp, err := c.load(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			rep, err := projection.Verify(cmd.Context(), c.events, c, cp.Name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				j := verifyJSON{Name: rep.Name, OK: rep.OK(), From: rep.From, To: rep.To, Ranges: rep.Ranges, Events: rep.Events}
				for _, m := range rep.Mismatches {
					j.Mismatches = append(j.Mismatches, mismatchJSON{m.From, m.To, m.Want.Count, m.Got.Count, m.Want.Sum, m.Got.Sum, m.String()})
				}
				if err := printJSON(out, j); err != nil {
					return err
				}
			} else {
				switch {
				case cp.DigestRange == 0:
					fmt.Fprintf(out, "%s has no delivery digests to verify (it was not run by a Projector since digests began)\n", rep.Name)
				case rep.Ranges == 0:
					fmt.Fprintf(out, "%s has handled nothing since its digests began at position %d\n", rep.Name, cp.DigestsFrom)
				default:
					fmt.Fprintf(out, "%s: checked positions %d–%d: %s, %s\n", rep.Name, rep.From, rep.To, plural(int64(rep.Ranges), "range"), plural(int64(rep.Events), "event"))
				}
				for _, m := range rep.Mismatches {
					fmt.Fprintln(out, m.String())
				}
				if rep.OK() {
					fmt.Fprintln(out, "no mismatch: every event handled once")
				}
			}
			if !rep.OK() {
				return mismatchError{name: rep.Name, mismatches: len(rep.Mismatches), of: rep.Ranges, from: rep.From, to: rep.To}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object")
	return cmd
}

// projRequestCmd is stop, reset or skip: a request for the runner.
func (a *app) projRequestCmd(f *checkpointFlags, verb string) *cobra.Command {
	var req projection.Request
	cmd := &cobra.Command{Use: verb + " NAME", Args: usageArgs(cobra.ExactArgs(1))}
	switch verb {
	case "stop":
		req = projection.RequestStop
		cmd.Short = "Ask a projector to stop (start lets it run again)"
		cmd.Long = `stop asks the instance running the projection to stop: it saves its
checkpoint, the status becomes stopped and its Run returns. No instance runs it
again until start.`
	case "reset":
		req = projection.RequestReset
		cmd.Short = "Ask a projector to rebuild its read model from position 0"
		cmd.Long = `reset asks the projector to empty its read model (its ReadModel's Reset) and
rebuild it from position 0 of the log. Side effects are not repeated for the
history it replays.`
	case "skip":
		req = projection.RequestSkip
		cmd.Short = "Ask a faulted projector to skip the event that faulted it"
		cmd.Long = `skip asks a faulted projector to skip the event that faulted it: it is
recorded as skipped, never applied, and the projector goes on after it. A
projection that has not faulted has nothing to skip (exit code 2).`
	}
	cmd.Example = "  eventsource projections " + verb + " balances"
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := a.openCheckpoints(cmd, f, false)
		if err != nil {
			return err
		}
		defer c.Close()
		name := args[0]
		cp, err := c.load(cmd.Context(), name)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch {
		case req == projection.RequestStop && cp.Status == projection.StatusStopped && cp.Request == projection.RequestNone:
			fmt.Fprintf(out, "%s is already stopped\n", name)
			return nil
		case req == projection.RequestSkip && cp.FaultedAt == 0:
			// The runner would set the status to running: a stopped one would start.
			return usagef("%s has not faulted (status %s): there is no event to skip", name, console.StatusName(cp.Status))
		}
		if cp.Request != projection.RequestNone && cp.Request != req {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: this replaces the pending request %q\n", cp.Request)
		}
		if err := c.Request(cmd.Context(), name, req); err != nil {
			return err
		}
		what := map[projection.Request]string{
			projection.RequestStop:  "stop",
			projection.RequestReset: "rebuild its read model from position 0",
			projection.RequestSkip:  fmt.Sprintf("skip the event at position %d that faulted it", cp.FaultedAt),
		}[req]
		fmt.Fprintf(out, "asked %s to %s; %s\n", name, what, runnerNote(cp))
		return nil
	}
	return cmd
}

func (a *app) projStartCmd(f *checkpointFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME",
		Short: "Let a stopped or faulted projector run again",
		Long: `start sets the status of a stopped or faulted projection to running (and
clears its error), so its next run processes it again; a faulted one retries
the event that faulted it, unless skip is asked for. A superseded or dropped
version cannot be started: a newer version serves reads.`,
		Example: `  eventsource projections start balances`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			name := args[0]
			cp, err := c.load(cmd.Context(), name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch cp.Status {
			case projection.StatusStopped, projection.StatusFaulted:
			case projection.StatusRunning:
				fmt.Fprintf(out, "%s is already running\n", name)
				return nil
			default:
				return usagef("%s is %s: only a stopped or faulted projection can be started", name, console.StatusName(cp.Status))
			}
			if err := c.SetStatus(cmd.Context(), name, projection.StatusRunning); err != nil {
				return err
			}
			note := "its projector's next Run processes it again"
			if cp.Status == projection.StatusFaulted {
				note = fmt.Sprintf("its next run retries the event at position %d", cp.FaultedAt)
			}
			fmt.Fprintf(out, "started %s (was %s); %s\n", name, cp.Status, note)
			return nil
		},
	}
}

func (a *app) projLiveCmd(f *checkpointFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "live NAME",
		Short: "Print the version of a projector that serves reads",
		Long: `live prints the version of projector NAME (its first version's name, without
@vN) serving reads: 1 until a newer version (WithVersion) has caught up and
taken over.`,
		Example: `  eventsource projections live balances`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.openCheckpoints(cmd, f, false)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.load(cmd.Context(), args[0]); err != nil {
				return err
			}
			v, err := projection.LiveVersion(cmd.Context(), c, baseName(args[0]))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"name": args[0], "live_version": v})
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object")
	return cmd
}
