package projection

import "github.com/eventsource-go/eventsource"

// SetDeliveryHook plants a delivery fault: f changes each batch a
// Projector applies (and digests) before it is applied. nil removes it.
func SetDeliveryHook(f func([]eventsource.Record) []eventsource.Record) { hook = f }
