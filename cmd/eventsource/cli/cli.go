// Package cli is the eventsource command-line tool: it inspects and writes
// any event store named by a URL (see package storeurl). cmd/eventsource
// calls Main; tests and other programs can run commands through New.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/cmd/eventsource/console"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storeurl"
	"github.com/eventsource-go/eventsource/transfer"
)

// DefaultStore is the store used when neither --store nor ES_STORE names one.
const DefaultStore = "sqlite://events.db"

// Main runs the tool with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Exit codes of the tool, for scripts to branch on.
const (
	ExitOK       = 0 // success
	ExitFailure  = 1 // anything else: an unreachable server, a store error
	ExitUsage    = 2 // usage or bad input: unknown command or flag, bad URL, range or data
	ExitNotFound = 3 // no such store, stream or records
	ExitConflict = 4 // concurrency conflict: the expected version did not match, or the event ID is taken
	ExitDeleted  = 5 // the stream is tombstoned (hard-deleted): it can never be written again
	ExitMismatch = 6 // projections verify: the read model missed events or handled some twice
	ExitCorrupt  = 7 // stored data does not read back as written: archive --verify, replay
)

const exitCodes = `Exit codes:
  0  success
  1  any other failure (an unreachable server, a store error)
  2  usage or bad input (unknown command or flag, bad URL, range or data)
  3  not found (no such store, stream or records)
  4  concurrency conflict (--expected did not match, or the event ID is taken)
  5  the stream is tombstoned (streams delete --hard): it can never be written again
  6  projections verify found a mismatch: a read model missed events or handled some twice
  7  corrupt data: an archive chunk (archive --verify, replay) does not read back as written`

// Run runs the tool with args (without the program name) and returns its
// exit code. An error is printed to stderr on one line.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := New()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil || errors.Is(err, context.Canceled) {
		return ExitOK
	}
	fmt.Fprintln(stderr, oneLine(err))
	return ExitCode(err)
}

// ExitCode is the exit code the tool gives for err.
func ExitCode(err error) int {
	var ue usageError
	var me mismatchError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &me):
		return ExitMismatch
	case errors.As(err, &ue),
		errors.Is(err, projection.ErrNotParked),
		errors.Is(err, eventsource.ErrInvalidConfig),
		errors.Is(err, eventsource.ErrInvalidStreamID),
		errors.Is(err, eventsource.ErrInvalidEvent),
		errors.Is(err, eventsource.ErrInvalidStreamMetadata),
		errors.Is(err, eventsource.ErrTooLarge),
		errors.Is(err, transfer.ErrBadLine):
		return ExitUsage
	case errors.Is(err, eventsource.ErrCorruptData):
		return ExitCorrupt
	case errors.Is(err, eventsource.ErrStreamDeleted):
		return ExitDeleted
	case errors.Is(err, eventsource.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, eventsource.ErrConcurrency), errors.Is(err, eventsource.ErrDuplicateEvent):
		return ExitConflict
	}
	return ExitFailure
}

// oneLine is err's message on one line, starting "eventsource: ": drivers
// report one line per connection attempt, identical ones included.
func oneLine(err error) string {
	var b strings.Builder
	var seen []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l == "" || slices.Contains(seen, l) {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
		seen = append(seen, l)
	}
	msg := b.String()
	if !strings.HasPrefix(msg, "eventsource:") {
		msg = "eventsource: " + msg
	}
	return msg
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// usageArgs makes an argument check's failure a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// group makes cmd a group of subcommands: named alone it prints its help,
// with an unknown subcommand it fails (suggesting the nearest).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", near[0])
		} else {
			msg += fmt.Sprintf("; see %q", cmd.CommandPath()+" --help")
		}
		return usageError{errors.New(msg)}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return cmd
}

type app struct {
	storeURL string
}

// New returns the root command.
func New() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "eventsource",
		Short: "Inspect and write event stores",
		Long: `eventsource reads, follows and appends to event stores.

The store is named by a URL, from --store or the ES_STORE environment variable
(default ` + DefaultStore + `):

  sqlite://events.db              a SQLite file, created if missing
  memory://                       an empty in-memory store (for trying things)
  postgres://user@host:5432/db    PostgreSQL (?schema=…&prefix=… choose tables)
  mysql://user:pass@host:3306/db  MySQL or MariaDB (?prefix=…)
  dynamodb://table?region=…       DynamoDB (?endpoint=http://127.0.0.1:4567 for dynalite)
  nats://host:4222                NATS JetStream (?stream=EVENTS&subject=es choose the streams)

Any other URL parameter is refused. read, tail, streams list, streams meta and
scavenge do not create a store: a missing one is "not found"; the first append
creates it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Long += "\n\n" + exitCodes
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := os.Getenv("ES_STORE")
	if def == "" {
		def = DefaultStore
	}
	root.PersistentFlags().StringVarP(&a.storeURL, "store", "s", def, "store URL")
	root.AddCommand(a.versionCmd(), a.streamsCmd(), a.readCmd(), a.tailCmd(), a.appendCmd(), a.scavengeCmd(), a.projectionsCmd(), a.serveCmd(), a.exportCmd(), a.importCmd(), a.archiveCmd(), a.replayCmd(), a.copyCmd(), a.relayCmd(), dynamodbCmd())
	return group(root)
}

// open opens the store for a command that writes: a missing store is
// created.
func (a *app) open(cmd *cobra.Command) (storeurl.Store, error) {
	return storeurl.Open(cmd.Context(), a.storeURL)
}

// openExisting opens the store for a command that only reads: nothing is
// created, and a missing store is an error saying how to make one.
func (a *app) openExisting(cmd *cobra.Command) (storeurl.Store, error) {
	s, err := storeurl.Open(cmd.Context(), a.storeURL, storeurl.MustExist())
	if errors.Is(err, eventsource.ErrNotFound) && !strings.HasPrefix(a.storeURL, "dynamodb:") {
		err = fmt.Errorf("%w; the first append creates it (eventsource append STREAM --type TYPE)", err)
	}
	return s, err
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tool's version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok {
				v = bi.Main.Version
				if v == "" {
					v = "(devel)"
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "eventsource", v)
			return nil
		},
	}
}

func (a *app) streamsCmd() *cobra.Command {
	streams := group(&cobra.Command{Use: "streams", Short: "Work with streams"})
	var prefix string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List streams and their versions",
		Example: "  eventsource streams list --prefix account-",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			lister, ok := eventsource.As[eventsource.StreamLister](s)
			if !ok {
				return fmt.Errorf("this store cannot list its streams")
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "STREAM\tVERSION")
			n := 0
			for info, err := range lister.ListStreams(cmd.Context(), prefix) {
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%d\n", info.StreamID, info.Version)
				n++
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if n == 1 {
				fmt.Fprintln(cmd.ErrOrStderr(), "1 stream")
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d streams\n", n)
			}
			return nil
		},
	}
	list.Flags().StringVar(&prefix, "prefix", "", "only streams whose ID starts with this")
	streams.AddCommand(list, a.metaCmd(), a.setMetaCmd(), a.truncateCmd(), a.deleteCmd())
	return streams
}

// printer writes records as aligned text or as JSON lines.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) print(r eventsource.Record) error {
	if p.json {
		b, err := json.Marshal(console.FromRecord(r))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	data := string(r.Data)
	if !json.Valid(r.Data) {
		data = fmt.Sprintf("(%d bytes of %s)", len(r.Data), r.Codec)
	}
	md := ""
	if len(r.Metadata) > 0 {
		b, _ := json.Marshal(r.Metadata)
		md = " " + string(b)
	}
	_, err := fmt.Fprintf(p.w, "%s v%d @%d %s %s %s%s\n", r.RecordedAt.Format(time.RFC3339Nano), r.Version, r.Position, r.StreamID, r.Type, data, md)
	return err
}

// progress reports a count on stderr while a long read runs, when stderr is
// a terminal.
type progress struct {
	w    io.Writer
	on   bool
	n    int
	last time.Time
}

func newProgress(cmd *cobra.Command) *progress {
	p := &progress{w: cmd.ErrOrStderr()}
	if f, ok := p.w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) add() {
	p.n++
	if p.on && time.Since(p.last) > 200*time.Millisecond {
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r%d records…", p.n)
	}
}

func (p *progress) done(what string) {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "%d %s\n", p.n, what)
}

func (a *app) readCmd() *cobra.Command {
	var from, to int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "read STREAM",
		Short: "Print the records of a stream",
		Example: `  eventsource read account-42
  eventsource read account-42 --from 10 --to 20 --json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case from < 0:
				return usagef("--from %d: versions start at 1", from)
			case to < 0:
				return usagef("--to %d: want a version, or 0 for the end", to)
			case to != 0 && to < from:
				return usagef("--from %d --to %d: the range is empty", from, to)
			}
			if err := eventsource.ValidateStreamID(args[0]); err != nil {
				return err
			}
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			p, prog := printer{w: cmd.OutOrStdout(), json: asJSON}, newProgress(cmd)
			for r, err := range s.ReadStream(cmd.Context(), args[0], from, to) {
				if err != nil {
					return err
				}
				if err := p.print(r); err != nil {
					return err
				}
				prog.add()
			}
			if prog.n == 0 {
				return fmt.Errorf("%w: stream %q has no records in that range", eventsource.ErrNotFound, args[0])
			}
			prog.done("records")
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from", 1, "first version")
	cmd.Flags().Int64Var(&to, "to", 0, "last version (0: to the end)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

func (a *app) tailCmd() *cobra.Command {
	var from uint64
	var fromEnd, asJSON bool
	var streams, categories, types []string
	var where []string
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow the global log live",
		Long: `tail prints the global log from a position, then follows it live until
interrupted (Ctrl-C). Filters narrow what is printed.`,
		Example: `  eventsource tail --from-end
  eventsource tail --category account- --type MoneyDeposited --where teller=7`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromEnd && cmd.Flags().Changed("from") {
				return usagef("--from and --from-end: give one")
			}
			var caughtUp sync.Once
			opts := []projection.SubscriptionOption{
				projection.WithFilter(eventsource.Filter{Streams: streams, StreamPrefixes: categories, Types: types}),
				projection.OnCaughtUp(func() {
					caughtUp.Do(func() { fmt.Fprintln(cmd.ErrOrStderr(), "-- caught up; following live (Ctrl-C to stop)") })
				}),
			}
			for _, w := range where {
				k, v, ok := strings.Cut(w, "=")
				if !ok || k == "" {
					return usagef("--where %q: want key=value", w)
				}
				opts = append(opts, projection.Where(projection.Meta(k).Eq(v)))
			}
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			if fromEnd {
				h, ok := eventsource.As[eventsource.HeadReader](s)
				if !ok {
					return fmt.Errorf("--from-end: this store cannot tell its head")
				}
				head, err := h.Head(cmd.Context())
				if err != nil {
					return err
				}
				from = head + 1
			}
			opts = append(opts, projection.From(from))
			p := printer{w: cmd.OutOrStdout(), json: asJSON}
			err = projection.NewSubscription(s, opts...).Run(cmd.Context(), func(_ context.Context, r eventsource.Record) error {
				return p.print(r)
			})
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first position")
	cmd.Flags().BoolVar(&fromEnd, "from-end", false, "only records appended from now on")
	cmd.Flags().StringSliceVar(&streams, "stream", nil, "only these streams (repeatable)")
	cmd.Flags().StringSliceVar(&categories, "category", nil, "only streams with this ID prefix (repeatable)")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only these event types (repeatable)")
	cmd.Flags().StringArrayVar(&where, "where", nil, "only records whose metadata key=value (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

func parseExpected(s string) (eventsource.ExpectedVersion, error) {
	switch s {
	case "any", "":
		return eventsource.Any, nil
	case "no-stream":
		return eventsource.NoStream, nil
	case "exists":
		return eventsource.StreamExists, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, usagef("--expected %q: want a version (0, 1, …), any, no-stream or exists", s)
	}
	return eventsource.Exact(n), nil
}

func (a *app) appendCmd() *cobra.Command {
	var typ, data, expected, id string
	var meta []string
	cmd := &cobra.Command{
		Use:   "append STREAM",
		Short: "Append one event to a stream",
		Example: `  eventsource append account-42 --type MoneyDeposited --data '{"Amount":100}'
  eventsource append account-42 --type Imported --data @event.json
  jq -c .event in.json | eventsource append account-42 --type Imported --data -
  eventsource append account-42 --type MoneyDeposited --data '{"Amount":5}' --expected 3 --meta teller=7`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ == "" {
				return usagef("--type is required")
			}
			if err := eventsource.ValidateStreamID(args[0]); err != nil {
				return err
			}
			body, err := readData(cmd.InOrStdin(), data)
			if err != nil {
				return err
			}
			ev, err := parseExpected(expected)
			if err != nil {
				return err
			}
			md := map[string]string{}
			for _, m := range meta {
				k, v, ok := strings.Cut(m, "=")
				if !ok || k == "" {
					return usagef("--meta %q: want key=value", m)
				}
				md[k] = v
			}
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Append(cmd.Context(), args[0], ev, []eventsource.Record{{EventID: id, Type: typ, Codec: "json", Data: body, Metadata: md}})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "appended %s version %d at position %d\n", res.StreamID, res.LastVersion, res.LastPosition)
			return nil
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "", "event type name (required)")
	cmd.Flags().StringVarP(&data, "data", "d", "{}", "event data, JSON; @FILE reads it from a file, - from standard input")
	cmd.Flags().StringVarP(&expected, "expected", "e", "any", "expected version: a number, any, no-stream or exists")
	cmd.Flags().StringArrayVarP(&meta, "meta", "m", nil, "metadata key=value (repeatable)")
	cmd.Flags().StringVar(&id, "id", "", "event ID (default: a new UUID); repeat an append with the same ID to retry it safely")
	return cmd
}

// readData is the event data --data names: the JSON itself, @FILE or - for
// standard input; surrounding white space is dropped.
func readData(stdin io.Reader, data string) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case data == "-":
		b, err = io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("--data -: read standard input: %w", err)
		}
		data = "standard input"
	case strings.HasPrefix(data, "@"):
		b, err = os.ReadFile(data[1:])
		if err != nil {
			return nil, usageError{fmt.Errorf("--data %s: %w", data, err)}
		}
		data = data[1:]
	default:
		b = []byte(data)
		data = "--data"
	}
	b = bytes.TrimSpace(b)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:se.Offset], []byte("\n"))
			col := int(se.Offset) - bytes.LastIndexByte(b[:se.Offset], '\n') - 1
			return nil, usagef("%s is not valid JSON: line %d, column %d: %v", data, line, col, err)
		}
		return nil, usagef("%s is not valid JSON: %v", data, err)
	}
	return b, nil
}
