package console

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/projection"
)

// Record is a record as the API and `eventsource read --json` write it.
// Data is the event's JSON when its codec wrote JSON, else DataBase64
// holds its bytes (encrypted data among them: Encrypted says so).
type Record struct {
	Stream     string            `json:"stream"`
	Version    int64             `json:"version"`
	Position   uint64            `json:"position"`
	EventID    string            `json:"event_id"`
	Type       string            `json:"type"`
	Codec      string            `json:"codec,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	DataBase64 []byte            `json:"data_base64,omitempty"`
	Encrypted  bool              `json:"encrypted,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	RecordedAt time.Time         `json:"recorded_at"`
}

// FromRecord is r as the API writes it.
func FromRecord(r eventsource.Record) Record {
	out := Record{Stream: r.StreamID, Version: r.Version, Position: r.Position, EventID: r.EventID, Type: r.Type,
		Codec: r.Codec, Metadata: r.Metadata, RecordedAt: r.RecordedAt, Encrypted: strings.HasPrefix(r.Codec, "enc+")}
	if !out.Encrypted && len(r.Data) > 0 && json.Valid(r.Data) {
		out.Data = r.Data
	} else {
		out.DataBase64 = r.Data
	}
	return out
}

// Checkpoint is a projection's checkpoint as the API and `eventsource
// projections --json` write it.
type Checkpoint struct {
	Name         string     `json:"name"`
	Status       string     `json:"status"`
	Position     uint64     `json:"position"`             // the last position handled (the highest, with those handled above the low-water mark)
	LowWaterMark uint64     `json:"low_water_mark"`       // everything at or below it is handled
	DoneAbove    uint64     `json:"done_above,omitempty"` // positions handled above the low-water mark
	Request      string     `json:"request,omitempty"`
	Holder       string     `json:"holder,omitempty"`
	Owner        string     `json:"owner,omitempty"`
	LeaseUntil   *time.Time `json:"lease_until,omitempty"`
	FaultedAt    uint64     `json:"faulted_at,omitempty"`
	Error        string     `json:"error,omitempty"`
	Skipped      []uint64   `json:"skipped,omitempty"`
	Parked       int        `json:"parked"`
	OldestParked *time.Time `json:"oldest_parked_at,omitempty"` // when the longest-waiting parked event was parked
	DigestsFrom  uint64     `json:"digests_from,omitempty"`
	DigestRanges int        `json:"digest_ranges,omitempty"`
	DigestRange  uint64     `json:"digest_range,omitempty"`
	Version      int        `json:"version"`                // the projector's version (WithVersion)
	Live         int        `json:"live,omitempty"`         // base row: the version serving reads, when not 1
	LiveVersion  int        `json:"live_version,omitempty"` // status: the projector's version serving reads
	UpdatedAt    *time.Time `json:"updated_at,omitempty"`
	Lag          *uint64    `json:"lag_positions,omitempty"` // the head of the log minus Position, when the store tells its head
}

// FromCheckpoint is cp as the API writes it.
func FromCheckpoint(cp projection.Checkpoint) Checkpoint {
	last, above := Handled(cp)
	j := Checkpoint{
		Name: cp.Name, Status: StatusName(cp.Status), Position: last, LowWaterMark: cp.Position, DoneAbove: above,
		Request: string(cp.Request), Holder: cp.Holder, Owner: cp.Owner, FaultedAt: cp.FaultedAt, Error: cp.Error,
		Skipped: cp.Skipped, Parked: len(cp.Parked), DigestsFrom: cp.DigestsFrom, DigestRanges: len(cp.Digests),
		DigestRange: cp.DigestRange, Version: max(cp.Version, 1), Live: cp.Live,
	}
	if at, ok := OldestParked(cp); ok {
		j.OldestParked = &at
	}
	if !cp.LeaseUntil.IsZero() {
		j.LeaseUntil = &cp.LeaseUntil
	}
	if !cp.UpdatedAt.IsZero() {
		j.UpdatedAt = &cp.UpdatedAt
	}
	return j
}

// Handled returns the last position cp handled and how many positions it
// handled above its low-water mark.
func Handled(cp projection.Checkpoint) (last, above uint64) {
	last = cp.Position
	for _, r := range cp.Done {
		if r.To <= cp.Position {
			continue
		}
		above += r.To - max(r.From, cp.Position+1) + 1
		last = max(last, r.To)
	}
	return last, above
}

// StatusName is how the tool and the API name a status ("new" for none).
func StatusName(s projection.Status) string {
	if s == projection.StatusNew {
		return "new"
	}
	return string(s)
}

// OldestParked is when cp's longest-waiting parked event was parked.
func OldestParked(cp projection.Checkpoint) (time.Time, bool) {
	var oldest time.Time
	for _, pe := range cp.Parked {
		if oldest.IsZero() || pe.At.Before(oldest) {
			oldest = pe.At
		}
	}
	return oldest, !oldest.IsZero()
}

// Exists reports whether cp, loaded by name, is a projection's checkpoint
// rather than the empty one a store returns for a name it does not hold;
// all, when not nil, are the store's listed checkpoints (a row may exist
// with nothing in it yet).
func Exists(cp projection.Checkpoint, all []projection.Checkpoint) bool {
	if cp.Status != projection.StatusNew || cp.Request != projection.RequestNone || cp.Position > 0 ||
		!cp.UpdatedAt.IsZero() || cp.Owner != "" || !cp.LeaseUntil.IsZero() || cp.DigestsFrom > 0 || len(cp.Parked) > 0 {
		return true
	}
	return slices.ContainsFunc(all, func(o projection.Checkpoint) bool { return o.Name == cp.Name })
}
