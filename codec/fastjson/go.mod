module github.com/eventsource-go/eventsource/codec/fastjson

go 1.26.0

require github.com/eventsource-go/eventsource v0.0.0-00010101000000-000000000000

require github.com/goccy/go-json v0.12.0

replace github.com/eventsource-go/eventsource => ../..
