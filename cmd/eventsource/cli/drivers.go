package cli

// The stores the tool opens by URL; each registers its schemes.
import (
	_ "github.com/eventsource-go/eventsource/store/dynamodb"
	_ "github.com/eventsource-go/eventsource/store/memory"
	_ "github.com/eventsource-go/eventsource/store/mysql"
	_ "github.com/eventsource-go/eventsource/store/nats"
	_ "github.com/eventsource-go/eventsource/store/postgres"
	_ "github.com/eventsource-go/eventsource/store/sqlite"
)
