// Package page turns keyset-paginated queries into iterators: the stores
// fetch a page after the last item they returned, until a short page says
// there is no more, holding no connection between pages.
package page

import "iter"

// Seq yields the items of successive pages. fetch gets the last item of the
// previous page (and first = true, with the zero value, for the first page)
// and returns up to size items. A page shorter than size is the last. An
// error from fetch is yielded once and ends the sequence.
func Seq[T any](size int, fetch func(last T, first bool) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var last T
		for first := true; ; first = false {
			items, err := fetch(last, first)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < size || len(items) == 0 {
				return
			}
			last = items[len(items)-1]
		}
	}
}
