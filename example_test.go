package eventsource_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/memory"
)

func ExampleNew() {
	ctx := context.Background()
	repo := eventsource.New(&Cart{}, eventsource.WithStore(memory.New()), eventsource.WithStreamPrefix("cart-"))
	if err := repo.Bind(&ItemAdded{}, &ItemRemoved{}, &Renamed{}); err != nil {
		fmt.Println(err)
		return
	}
	version, err := repo.Apply(ctx, &AddItem{CommandModel: eventsource.CommandModel{ID: "7"}, Name: "apple"})
	fmt.Println(version, err)
	cart, err := repo.Load(ctx, "7")
	fmt.Println(cart.Items, err)
	// Output:
	// 1 <nil>
	// [apple] <nil>
}

func ExampleRepository_Save() {
	ctx := context.Background()
	repo := eventsource.New(&Cart{}, eventsource.WithStore(memory.New()))
	_ = repo.Bind(&ItemAdded{})
	err := repo.Save(ctx,
		&ItemAdded{Model: eventsource.Model{ID: "7", Version: 1}, Name: "apple"},
		&ItemAdded{Model: eventsource.Model{ID: "7", Version: 2}, Name: "pear"},
	)
	fmt.Println(err)

	// Version 2 is taken: a concurrency conflict, and nothing is stored.
	err = repo.Save(ctx, &ItemAdded{Model: eventsource.Model{ID: "7", Version: 2}, Name: "plum"})
	var conflict *eventsource.ConcurrencyError
	fmt.Println(errors.Is(err, eventsource.ErrConcurrency), errors.As(err, &conflict), conflict.Actual)
	// Output:
	// <nil>
	// true true 2
}
