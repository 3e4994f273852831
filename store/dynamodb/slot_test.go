package dynamodb

import (
	"math"
	"testing"
)

func TestSlot(t *testing.T) {
	for _, c := range []struct {
		in   string
		want slot
		ok   bool
	}{
		{"0", slot{0, 0}, true},
		{"17", slot{17, 0}, true},
		{"5.000000000000000001", slot{5, 1}, true},
		{"5.1", slot{5, 100_000_000_000_000_000}, true},
		{"9223372036854775807.999999999999999999", slot{math.MaxInt64, slotSteps - 1}, true},
		{"1E-18", slot{0, 1}, true},
		{"2.5e1", slot{25, 0}, true},
		{"-1", slot{}, false},
		{"5.0000000000000000001", slot{}, false}, // finer than a step
		{"x", slot{}, false},
	} {
		got, ok := parseSlot(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseSlot(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok {
			if back, _ := parseSlot(got.String()); back != got {
				t.Errorf("%+v.String() = %q reads back as %+v", got, got.String(), back)
			}
		}
	}
	if !(slot{5, 1}).less(slot{6, 0}) || (slot{6, 0}).less(slot{5, slotSteps - 1}) || !(slot{5, 1}).less(slot{5, 2}) {
		t.Fatal("slot order is not the numbers'")
	}
}
