package eventsourcetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/eventsourcetest"
)

type Incremented struct {
	eventsource.Model
	By int
}

type Increment struct {
	eventsource.CommandModel
	By int
}

var errNegative = errors.New("negative")

type Counter struct{ N int }

func (c *Counter) On(e eventsource.Event) error {
	inc, ok := e.(*Incremented)
	if !ok {
		return fmt.Errorf("unexpected %T", e)
	}
	c.N += inc.By
	return nil
}

func (c *Counter) Apply(_ context.Context, cmd eventsource.Command) ([]eventsource.Event, error) {
	inc := cmd.(*Increment)
	if inc.By < 0 {
		return nil, errNegative
	}
	if inc.By == 0 {
		return nil, nil
	}
	return []eventsource.Event{&Incremented{By: inc.By}}, nil
}

// recorder is a testing.TB whose Fatalf records the failure and stops the
// scenario, so the helper's own failures can be asserted.
type recorder struct {
	testing.TB
	failed string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(stop{})
}

func run(f func(tb testing.TB)) (failure string) {
	r := &recorder{}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stop); !ok {
				panic(v)
			}
		}
		failure = r.failed
	}()
	f(r)
	return ""
}

func cmd(by int) *Increment {
	return &Increment{CommandModel: eventsource.CommandModel{ID: "c"}, By: by}
}

func TestPasses(t *testing.T) {
	s := eventsourcetest.Given(t, &Counter{}, &Incremented{By: 2}).
		When(cmd(3)).
		Then(&Incremented{Model: eventsource.Model{ID: "c", Version: 2}, By: 3})
	if s.State().N != 5 {
		t.Fatalf("state %d, want 5", s.State().N)
	}
	eventsourcetest.Given(t, &Counter{}).When(cmd(-1)).ThenError(errNegative)
	eventsourcetest.Given(t, &Counter{}).When(cmd(0)).ThenNothing()
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name string
		f    func(tb testing.TB)
		want string
	}{
		{"other event", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(3)).Then(&Incremented{By: 4})
		}, "event 0 is"},
		{"wrong version", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(3)).Then(&Incremented{Model: eventsource.Model{Version: 9}, By: 3})
		}, "event 0 is"},
		{"too few", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(3)).Then()
		}, "got 1 events"},
		{"unexpected error", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(-1)).Then(&Incremented{By: 1})
		}, "unexpected error"},
		{"expected error", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(1)).ThenError(errNegative)
		}, "succeeded"},
		{"other error", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).When(cmd(-1)).ThenError(errors.New("x"))
		}, "error negative"},
		{"history does not fold", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}, &struct{ eventsource.Model }{})
		}, "Given: On"},
		{"Then before When", func(tb testing.TB) {
			eventsourcetest.Given(tb, &Counter{}).Then()
		}, "before When"},
	}
	for _, c := range cases {
		got := run(c.f)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: failure %q, want it to mention %q", c.name, got, c.want)
		}
	}
}
