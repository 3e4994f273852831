package console

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"

	"github.com/eventsource-go/eventsource/esotel"
	"github.com/eventsource-go/eventsource/projection"
)

// ObserveProjections registers gauges of every projection in the server's
// checkpoint store, read at each collection (a Prometheus scrape of
// /metrics): esotel's eventsource.projection.lag.positions, .faults,
// .parked and .skipped, with the projection's name as an attribute, and
// eventsource.projection.stuck (1 while /readyz calls it stuck).
func (s *Server) ObserveProjections(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(esotel.ScopeName + "/console")
	behind, err1 := m.Int64ObservableGauge(esotel.MetricProjectionBehind, metric.WithUnit("{position}"),
		metric.WithDescription("Positions of the global log between its head and a projection's checkpoint."))
	faults, err2 := m.Int64ObservableGauge(esotel.MetricProjectionFaults, metric.WithUnit("{fault}"),
		metric.WithDescription("1 while a projection is faulted, else 0."))
	parked, err3 := m.Int64ObservableGauge(esotel.MetricProjectionParked, metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection holds parked."))
	skipped, err4 := m.Int64ObservableGauge(esotel.MetricProjectionSkipped, metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection skipped."))
	stuck, err5 := m.Int64ObservableGauge("eventsource.projection.stuck", metric.WithUnit("{projection}"),
		metric.WithDescription("1 while a projection is behind the head of the log and has not moved for the console's stuck-after time."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		st, err := s.state(ctx) // one list and one head read for the readiness check and the gauges
		if err != nil || len(st.cps) == 0 {
			return err
		}
		stuckNow := map[string]bool{}
		for _, p := range s.ready.check(st) {
			if p.Reason == "stuck" {
				stuckNow[p.Projection] = true
			}
		}
		cps, head, hasHead := st.cps, st.head, st.hasHead
		for _, cp := range cps {
			name := metric.WithAttributes(esotel.ProjectionKey.String(cp.Name))
			last, _ := Handled(cp)
			if hasHead {
				o.ObserveInt64(behind, int64(max(head, last)-last), name)
			}
			o.ObserveInt64(faults, b2i(cp.Status == projection.StatusFaulted), name)
			o.ObserveInt64(parked, int64(len(cp.Parked)), name)
			o.ObserveInt64(skipped, int64(len(cp.Skipped)), name)
			o.ObserveInt64(stuck, b2i(stuckNow[cp.Name]), name)
		}
		return nil
	}, behind, faults, parked, skipped, stuck)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
