// Package cli is the eventsource command-line tool: it inspects and writes
// any event store named by a URL (see package storeurl). cmd/eventsource
// calls Main; tests and other programs can run commands through New.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storeurl"
)

// DefaultStore is the store used when neither --store nor ES_STORE names one.
const DefaultStore = "sqlite://events.db"

// Main runs the tool with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := New().ExecuteContext(ctx); err != nil {
		if !errors.Is(err, context.Canceled) {
			msg := err.Error()
			if !strings.HasPrefix(msg, "eventsource:") {
				msg = "eventsource: " + msg
			}
			fmt.Fprintln(os.Stderr, msg)
			return 1
		}
	}
	return 0
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
  nats://host:4222                NATS JetStream (?stream=EVENTS&subject=es choose the streams)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("ES_STORE")
	if def == "" {
		def = DefaultStore
	}
	root.PersistentFlags().StringVarP(&a.storeURL, "store", "s", def, "store URL")
	root.AddCommand(a.versionCmd(), a.streamsCmd(), a.readCmd(), a.tailCmd(), a.appendCmd(), dynamodbCmd())
	return root
}

func (a *app) open(cmd *cobra.Command) (storeurl.Store, error) {
	return storeurl.Open(cmd.Context(), a.storeURL)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the tool's version",
		Args:  cobra.NoArgs,
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
	streams := &cobra.Command{Use: "streams", Short: "Work with streams"}
	var prefix string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List streams and their versions",
		Example: "  eventsource streams list --prefix account-",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			lister, ok := s.(eventsource.StreamLister)
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
	streams.AddCommand(list)
	return streams
}

// printer writes records as aligned text or as JSON lines.
type printer struct {
	w    io.Writer
	json bool
}

type jsonRecord struct {
	Stream     string            `json:"stream"`
	Version    int64             `json:"version"`
	Position   uint64            `json:"position"`
	EventID    string            `json:"event_id"`
	Type       string            `json:"type"`
	Codec      string            `json:"codec,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	DataBytes  []byte            `json:"data_base64,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	RecordedAt time.Time         `json:"recorded_at"`
}

func (p printer) print(r eventsource.Record) error {
	if p.json {
		jr := jsonRecord{Stream: r.StreamID, Version: r.Version, Position: r.Position, EventID: r.EventID,
			Type: r.Type, Codec: r.Codec, Metadata: r.Metadata, RecordedAt: r.RecordedAt}
		if json.Valid(r.Data) {
			jr.Data = r.Data
		} else {
			jr.DataBytes = r.Data
		}
		b, err := json.Marshal(jr)
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
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(cmd)
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			opts := []projection.SubscriptionOption{
				projection.WithFilter(eventsource.Filter{Streams: streams, StreamPrefixes: categories, Types: types}),
				projection.OnCaughtUp(func() { fmt.Fprintln(cmd.ErrOrStderr(), "-- caught up; following live (Ctrl-C to stop)") }),
			}
			for _, w := range where {
				k, v, ok := strings.Cut(w, "=")
				if !ok || k == "" {
					return fmt.Errorf("--where %q: want key=value", w)
				}
				opts = append(opts, projection.Where(projection.Meta(k).Eq(v)))
			}
			if fromEnd {
				h, ok := s.(eventsource.HeadReader)
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
		return 0, fmt.Errorf("--expected %q: want a version (0, 1, …), any, no-stream or exists", s)
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
  eventsource append account-42 --type MoneyDeposited --data '{"Amount":5}' --expected 3 --meta teller=7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ == "" {
				return fmt.Errorf("--type is required")
			}
			if !json.Valid([]byte(data)) {
				return fmt.Errorf("--data is not valid JSON: %s", data)
			}
			ev, err := parseExpected(expected)
			if err != nil {
				return err
			}
			md := map[string]string{}
			for _, m := range meta {
				k, v, ok := strings.Cut(m, "=")
				if !ok || k == "" {
					return fmt.Errorf("--meta %q: want key=value", m)
				}
				md[k] = v
			}
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.Append(cmd.Context(), args[0], ev, []eventsource.Record{{EventID: id, Type: typ, Codec: "json", Data: []byte(data), Metadata: md}})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "appended %s version %d at position %d\n", res.StreamID, res.LastVersion, res.LastPosition)
			return nil
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "", "event type name (required)")
	cmd.Flags().StringVarP(&data, "data", "d", "{}", "event data, JSON")
	cmd.Flags().StringVarP(&expected, "expected", "e", "any", "expected version: a number, any, no-stream or exists")
	cmd.Flags().StringArrayVarP(&meta, "meta", "m", nil, "metadata key=value (repeatable)")
	cmd.Flags().StringVar(&id, "id", "", "event ID (default: a new UUID); repeat an append with the same ID to retry it safely")
	return cmd
}
