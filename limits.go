package eventsource

// Limits are the sizes a store accepts in one append. Each store of this
// module declares its own (see Limiter and LimitsOf); they differ, because
// each is bound by what an append becomes on its server: one NATS message,
// one DynamoDB item, SQL statements. PortableLimits are what every store of
// this module accepts with its default options, so a record within them is
// valid on all of them.
//
// An append that exceeds any limit is refused before anything is sent or
// stored, with an error matching ErrTooLarge. An identifier over its length
// also matches ErrInvalidStreamID (stream IDs) or ErrInvalidEvent (event IDs,
// type and codec names, metadata keys). Every limit can be reached on its
// own: a store accepts a record with Data of exactly MaxDataBytes, as it
// accepts an append of exactly MaxRecordsPerAppend small records, if the rest
// of the append is small (see Normalize).
type Limits struct {
	MaxDataBytes         int // len(Data) of one record
	MaxMetadataBytes     int // the lengths of one record's metadata keys and values, summed
	MaxMetadataKeys      int // metadata pairs of one record
	MaxRecordsPerAppend  int // records in one append
	MaxAppendBytes       int // AppendSize of one append's records
	MaxStreamIDLength    int // bytes of a stream ID; at most the package's MaxStreamIDLength
	MaxEventIDLength     int // bytes of an event ID; at most MaxEventIDLength
	MaxTypeLength        int // bytes of a type or codec name; at most MaxTypeLength
	MaxMetadataKeyLength int // bytes of one metadata key; at most MaxMetadataKey
}

// Per-record and per-pair framing counted by AppendSize: what a store adds
// around a record's fields (lengths, attribute names) in the one message,
// item or statement an append becomes. Each store that bounds an append's
// total checks that its own framing stays within these.
const (
	appendRecordOverhead = 16
	appendPairOverhead   = 8
	generatedIDLength    = 36 // a UUID in text
)

// PortableLimits returns the limits every store of this module accepts with
// its default options (the smallest of each store's defaults; DynamoDB's
// item bounds most of them). A record within them is valid on every store:
// one with 256 KiB of data, 64 KiB of metadata in 256 pairs and identifiers
// of their longest fits one append anywhere. The README lists which stores
// go beyond them.
func PortableLimits() Limits {
	return Limits{
		MaxDataBytes:         256 << 10,
		MaxMetadataBytes:     64 << 10,
		MaxMetadataKeys:      256,
		MaxRecordsPerAppend:  7689, // 398 KiB of records with a generated ID, a 1-byte type and nothing else
		MaxAppendBytes:       398 << 10,
		MaxStreamIDLength:    MaxStreamIDLength,
		MaxEventIDLength:     MaxEventIDLength,
		MaxTypeLength:        MaxTypeLength,
		MaxMetadataKeyLength: MaxMetadataKey,
	}
}

// Limiter is an optional Store capability: the store declares the limits it
// enforces. Every store of this module implements it.
type Limiter interface {
	// Limits returns the store's limits, normalized (see Normalize). They
	// may depend on the server it is connected to.
	Limits() Limits
}

// LimitsOf returns the limits of s: its own if it is a Limiter, otherwise
// PortableLimits.
func LimitsOf(s Store) Limits {
	if l, ok := As[Limiter](s); ok {
		return l.Limits().Normalize()
	}
	return PortableLimits()
}

// Normalize returns l with every field that is ≤ 0 taken from
// PortableLimits, identifier lengths capped at the package's constants, and
// MaxDataBytes, MaxMetadataBytes and MaxRecordsPerAppend lowered to what
// MaxAppendBytes lets each reach on its own: Data of MaxDataBytes in a record
// with a generated event ID, a one-byte type and nothing else, and so on.
func (l Limits) Normalize() Limits {
	p := PortableLimits()
	fill := func(v *int, def, most int) {
		if *v <= 0 {
			*v = def
		}
		if most > 0 && *v > most {
			*v = most
		}
	}
	fill(&l.MaxAppendBytes, p.MaxAppendBytes, 0)
	fill(&l.MaxStreamIDLength, p.MaxStreamIDLength, MaxStreamIDLength)
	fill(&l.MaxEventIDLength, p.MaxEventIDLength, MaxEventIDLength)
	fill(&l.MaxTypeLength, p.MaxTypeLength, MaxTypeLength)
	fill(&l.MaxMetadataKeyLength, p.MaxMetadataKeyLength, MaxMetadataKey)
	least := generatedIDLength + 1 + appendRecordOverhead // the smallest record
	fill(&l.MaxRecordsPerAppend, p.MaxRecordsPerAppend, l.MaxAppendBytes/least)
	fill(&l.MaxDataBytes, p.MaxDataBytes, l.MaxAppendBytes-least)
	fill(&l.MaxMetadataBytes, p.MaxMetadataBytes, l.MaxAppendBytes-least-appendPairOverhead)
	fill(&l.MaxMetadataKeys, p.MaxMetadataKeys, 0)
	return l
}

// Covers reports whether l allows everything o does: a store with limits l
// accepts every append within o. Every store of this module, with its
// default options, covers PortableLimits.
func (l Limits) Covers(o Limits) bool {
	return l.MaxDataBytes >= o.MaxDataBytes && l.MaxMetadataBytes >= o.MaxMetadataBytes &&
		l.MaxMetadataKeys >= o.MaxMetadataKeys && l.MaxRecordsPerAppend >= o.MaxRecordsPerAppend &&
		l.MaxAppendBytes >= o.MaxAppendBytes && l.MaxStreamIDLength >= o.MaxStreamIDLength &&
		l.MaxEventIDLength >= o.MaxEventIDLength && l.MaxTypeLength >= o.MaxTypeLength &&
		l.MaxMetadataKeyLength >= o.MaxMetadataKeyLength
}

// AppendSize is what an append of records counts against
// Limits.MaxAppendBytes: the bytes of each record's event ID (36, the length
// of a generated one, when it is empty), type, codec, data and metadata keys
// and values, plus 16 per record and 8 per metadata pair for the framing a
// store adds.
func AppendSize(records []Record) int {
	n := 0
	for i := range records {
		r := &records[i]
		id := len(r.EventID)
		if id == 0 {
			id = generatedIDLength
		}
		n += appendRecordOverhead + id + len(r.Type) + len(r.Codec) + len(r.Data)
		for k, v := range r.Metadata {
			n += appendPairOverhead + len(k) + len(v)
		}
	}
	return n
}
