package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/store/mysql"
)

// Open connects, migrates and owns its pool. (Not run: it needs a server.)
func ExampleOpen() {
	ctx := context.Background()
	s, err := mysql.Open(ctx, "root@tcp(127.0.0.1:3306)/test", mysql.WithTablePrefix("es_"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	res, err := s.Append(ctx, "user-1", eventsource.NoStream, []eventsource.Record{
		{Type: "UserCreated", Codec: "json", Data: []byte(`{"name":"Ada"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.LastVersion)
	for r, err := range s.ReadAll(ctx, 0, eventsource.Filter{StreamPrefixes: []string{"user-"}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Position, r.StreamID, r.Type)
	}
}

// New builds a store on a pool the caller owns and keeps owning.
func ExampleNew() {
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	s := mysql.New(db, mysql.WithTablePrefix("orders_"))
	if err := s.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = eventsource.Store(s)
}
