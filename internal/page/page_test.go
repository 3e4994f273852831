package page

import (
	"errors"
	"testing"
)

func TestSeq(t *testing.T) {
	data := []int{1, 2, 3, 4, 5, 6, 7}
	calls := 0
	fetch := func(last int, first bool) ([]int, error) {
		calls++
		start := 0
		if !first {
			start = last
		}
		end := min(start+3, len(data))
		return data[start:end], nil
	}
	var got []int
	for v, err := range Seq(3, fetch) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 7 || got[6] != 7 || calls != 3 {
		t.Fatalf("got %v in %d pages", got, calls)
	}
	for v := range Seq(3, fetch) { // early break stops fetching
		if v == 2 {
			break
		}
	}
	boom := errors.New("boom")
	n := 0
	for _, err := range Seq(3, func(int, bool) ([]int, error) { return nil, boom }) {
		if !errors.Is(err, boom) {
			t.Fatalf("error %v", err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("error yielded %d times", n)
	}
}
