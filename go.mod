module github.com/eventsource-go/eventsource

go 1.26.8
