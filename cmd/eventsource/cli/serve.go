package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/eventsource-go/eventsource/cmd/eventsource/console"
	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/projection"
	"github.com/eventsource-go/eventsource/storeurl"
)

// DefaultListen is where serve listens unless --listen says otherwise:
// loopback only.
const DefaultListen = "127.0.0.1:2113"

func (a *app) serveCmd() *cobra.Command {
	var f checkpointFlags
	var listen, token string
	var stuckAfter time.Duration
	var maxBody int64
	var maxPage int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web console and a JSON HTTP API over the store",
		Long: `serve opens the store (and its projections' checkpoints, from the store's own
SQL database or --checkpoints URL) and serves, on --listen (` + DefaultListen + `,
loopback only, by default):

  /                 the web console: streams, events, the global log, a live tail,
                    projections with their lag, and a tracer of correlation IDs
  /api/...          the JSON API (its OpenAPI document: /api/openapi.json)
  /metrics          Prometheus metrics (OpenTelemetry): appends, projection lag,
                    faults, parked, skipped, stuck
  /healthz, /readyz liveness; readiness is 503 while a projection is faulted, or
                    behind and not moving for --stuck-after

It is read-only unless a token is given (--token or ES_TOKEN): then appends
and projection controls need "Authorization: Bearer TOKEN", and the console
asks for it. Interrupt (Ctrl-C) to stop.`,
		Example: `  eventsource serve --store sqlite://bank.db
  ES_TOKEN=secret eventsource serve --store postgres://localhost/app --listen 127.0.0.1:8080
  eventsource serve --store nats://127.0.0.1:4222 --checkpoints sqlite://checkpoints.db`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if token == "" {
				token = os.Getenv("ES_TOKEN")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usagef("--listen %q: want host:port", listen)
			}
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()

			reg := prometheus.NewRegistry()
			exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
			if err != nil {
				return err
			}
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
			defer mp.Shutdown(context.WithoutCancel(ctx))
			store, err := esotel.NewStore(s, esotel.WithMeterProvider(mp))
			if err != nil {
				return err
			}

			cfg := console.Config{Store: store, Token: token, StuckAfter: stuckAfter, MaxBody: maxBody, MaxPage: maxPage,
				Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
			where := "no projections (a non-SQL store; --checkpoints URL names their database)"
			if c, err := a.serveCheckpoints(cmd, &f, s); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				cfg.Checkpoints = c
				cfg.ReplayParked, cfg.DiscardParked = c.replay, c.discard
				where = "projections in " + c.where
			}
			srv, err := console.New(cfg)
			if err != nil {
				return err
			}
			if _, err := srv.ObserveProjections(mp); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			go srv.Watch(ctx, min(max(stuckAfter/4, time.Second), 15*time.Second))
			errs := make(chan error, 1)
			go func() { errs <- hs.Serve(ln) }()

			out := cmd.ErrOrStderr()
			mode := "read-only (--token or ES_TOKEN allows appends and controls)"
			if token != "" {
				mode = "appends and controls need the token"
			}
			fmt.Fprintf(out, "serving %s on http://%s (%s; %s)\n", storeurl.Redact(a.storeURL), ln.Addr(), mode, where)
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				fmt.Fprintf(out, "warning: --listen %s is reachable from other machines\n", listen)
			}
			select {
			case err := <-errs:
				return err
			case <-ctx.Done():
			}
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", DefaultListen, "host:port to listen on")
	cmd.Flags().StringVar(&token, "token", "", "bearer token that appends and projection controls need (default: ES_TOKEN; none: read-only)")
	cmd.Flags().DurationVar(&stuckAfter, "stuck-after", time.Minute, "readyz: a projection behind the head that has not moved for this long is stuck")
	cmd.Flags().Int64Var(&maxBody, "max-body", 1<<20, "largest request body, in bytes")
	cmd.Flags().IntVar(&maxPage, "max-page", 1000, "most records or streams in one page")
	cmd.Flags().StringVar(&f.url, "checkpoints", "", "URL of the database holding the checkpoints (default: the event store's, for SQL stores)")
	cmd.Flags().StringVar(&f.prefix, "table-prefix", "es_", "prefix of the checkpoint table ({prefix}projections)")
	cmd.Flags().StringVar(&f.schema, "schema", "", "PostgreSQL schema of the checkpoint table (default: the search_path)")
	return cmd
}

// serveCheckpoints opens the checkpoints serve shows: nil for a store
// without a SQL database and no --checkpoints. The table need not exist
// yet: until a projector creates it there are no projections.
func (a *app) serveCheckpoints(cmd *cobra.Command, f *checkpointFlags, events storeurl.Store) (*lazyCheckpoints, error) {
	c := &checkpoints{}
	var err error
	if f.url != "" {
		err = c.fromURL(cmd.Context(), f)
	} else {
		c.events = events // not closed here: serve closes it
		if err = c.inStore(f, a.storeURL); err != nil {
			var ue usageError
			if errors.As(err, &ue) && f.schema == "" && !cmd.Flags().Changed("table-prefix") {
				return nil, nil // not a SQL store: no projections
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return &lazyCheckpoints{checkpoints: c}, nil
}

// lazyCheckpoints is a checkpoint store whose table may not exist yet: it
// then holds no projections (and creates nothing).
type lazyCheckpoints struct {
	*checkpoints
}

func (l *lazyCheckpoints) there(ctx context.Context) (bool, error) { return l.exists(ctx) }

// List implements projection.CheckpointLister.
func (l *lazyCheckpoints) List(ctx context.Context) ([]projection.Checkpoint, error) {
	if ok, err := l.there(ctx); err != nil || !ok {
		return nil, err
	}
	lister, ok := l.CheckpointStore.(projection.CheckpointLister)
	if !ok {
		return nil, nil
	}
	return lister.List(ctx)
}

// Load implements projection.CheckpointStore.
func (l *lazyCheckpoints) Load(ctx context.Context, name string) (projection.Checkpoint, error) {
	if ok, err := l.there(ctx); err != nil || !ok {
		return projection.Checkpoint{Name: name}, err
	}
	return l.CheckpointStore.Load(ctx, name)
}
