// Package archive keeps a store's global log in object storage, through
// gocloud.dev's blob (s3://, gs://, azblob://, file://, mem://: the
// program links the drivers it needs), and replays it into any store.
//
// An archive is a manifest and immutable chunks under a prefix:
//
//	{prefix}manifest.json                                  the chunks, in position order
//	{prefix}chunks/00000000000000000001-00000000000000010000.ndjson.gz
//
// A chunk is gzip-compressed NDJSON (package transfer's lines: event ID,
// stream, version, type, codec, data, metadata, time, source position).
// The manifest names each chunk's position range, record count, first and
// last event ID and the SHA-256 of its bytes as stored. Archive is
// incremental: each run appends chunks from the last archived position
// on. Reading a chunk checks its hash and count before any of its records
// is used: a corrupted chunk is a *CorruptChunkError naming it, and
// nothing of it is imported.
package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/transfer"
)

// ManifestName is the manifest's key under the archive's prefix.
const ManifestName = "manifest.json"

// Format is the manifest format this package writes and reads.
const Format = 1

// Manifest lists an archive's chunks in position order.
type Manifest struct {
	Format int       `json:"format"`
	Chunks []Chunk   `json:"chunks"`
	Update time.Time `json:"updated_at"`
}

// Chunk describes one immutable chunk.
type Chunk struct {
	Key          string    `json:"key"`
	First        uint64    `json:"first_position"`
	Last         uint64    `json:"last_position"`
	Count        int       `json:"count"`
	FirstEventID string    `json:"first_event_id"`
	LastEventID  string    `json:"last_event_id"`
	SHA256       string    `json:"sha256"` // of the chunk's bytes as stored
	Bytes        int       `json:"bytes"`
	Written      time.Time `json:"written_at"`
}

// Last is the last archived position, 0 for an empty archive.
func (m Manifest) Last() uint64 {
	if len(m.Chunks) == 0 {
		return 0
	}
	return m.Chunks[len(m.Chunks)-1].Last
}

// Records is how many records the archive holds.
func (m Manifest) Records() int {
	n := 0
	for _, c := range m.Chunks {
		n += c.Count
	}
	return n
}

// ErrCorrupt: a chunk or the manifest does not read back as written. It
// matches eventsource.ErrCorruptData too.
var ErrCorrupt = fmt.Errorf("archive: corrupt: %w", eventsource.ErrCorruptData)

// CorruptChunkError names a chunk that failed its check.
type CorruptChunkError struct {
	Key    string
	Reason string
}

func (e *CorruptChunkError) Error() string {
	return fmt.Sprintf("archive: chunk %s is corrupt: %s", e.Key, e.Reason)
}

func (e *CorruptChunkError) Unwrap() error { return ErrCorrupt }

// Options choose an archive within a bucket and its chunk size.
type Options struct {
	// Prefix of every key ("" for the bucket's root; end it with "/" for
	// a folder).
	Prefix string
	// ChunkRecords is the most records in one chunk (10,000).
	ChunkRecords int
}

func (o Options) chunkRecords() int {
	if o.ChunkRecords <= 0 {
		return 10_000
	}
	return o.ChunkRecords
}

// ReadManifest returns the archive's manifest, empty when there is none.
func ReadManifest(ctx context.Context, b *blob.Bucket, o Options) (Manifest, error) {
	data, err := b.ReadAll(ctx, o.Prefix+ManifestName)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return Manifest{Format: Format}, nil
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("archive: read %s: %w", o.Prefix+ManifestName, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest %s: %v", ErrCorrupt, o.Prefix+ManifestName, err)
	}
	if m.Format != Format {
		return Manifest{}, fmt.Errorf("%w: manifest %s has format %d, this version reads %d", ErrCorrupt, o.Prefix+ManifestName, m.Format, Format)
	}
	return m, nil
}

func writeManifest(ctx context.Context, b *blob.Bucket, o Options, m Manifest) error {
	m.Update = time.Now().UTC()
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := b.WriteAll(ctx, o.Prefix+ManifestName, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("archive: write %s: %w", o.Prefix+ManifestName, err)
	}
	return nil
}

// Result is what Archive wrote.
type Result struct {
	Chunks, Records int
	From, To        uint64 // the positions archived by this run (0, 0: none)
}

// Archive writes the records of events' global log above the archive's
// last position to b, in chunks, each followed by the manifest naming it,
// until it has read everything committed. progress, when not nil, is
// called after each chunk with the records archived so far.
func Archive(ctx context.Context, events eventsource.Store, b *blob.Bucket, o Options, progress func(records int)) (Result, error) {
	m, err := ReadManifest(ctx, b, o)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var buf bytes.Buffer
	var zw *gzip.Writer
	var enc *json.Encoder
	var chunk Chunk
	flush := func() error {
		if chunk.Count == 0 {
			return nil
		}
		if err := zw.Close(); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		chunk.SHA256, chunk.Bytes, chunk.Written = hex.EncodeToString(sum[:]), buf.Len(), time.Now().UTC()
		chunk.Key = fmt.Sprintf("%schunks/%020d-%020d.ndjson.gz", o.Prefix, chunk.First, chunk.Last)
		if err := b.WriteAll(ctx, chunk.Key, buf.Bytes(), &blob.WriterOptions{ContentType: "application/gzip",
			Metadata: map[string]string{"sha256": chunk.SHA256, "records": fmt.Sprint(chunk.Count)}}); err != nil {
			return fmt.Errorf("archive: write %s: %w", chunk.Key, err)
		}
		m.Chunks = append(m.Chunks, chunk)
		if err := writeManifest(ctx, b, o, m); err != nil {
			return err
		}
		res.Chunks++
		res.Records += chunk.Count
		if res.From == 0 {
			res.From = chunk.First
		}
		res.To = chunk.Last
		if progress != nil {
			progress(res.Records)
		}
		chunk = Chunk{}
		return nil
	}
	for r, err := range events.ReadAll(ctx, m.Last()+1, eventsource.Filter{}) {
		if err != nil {
			return res, err
		}
		if chunk.Count == 0 {
			buf.Reset()
			zw = gzip.NewWriter(&buf)
			enc = json.NewEncoder(zw)
			enc.SetEscapeHTML(false)
			chunk.First, chunk.FirstEventID = r.Position, r.EventID
		}
		if err := enc.Encode(transfer.LineOf(r)); err != nil {
			return res, err
		}
		chunk.Last, chunk.LastEventID = r.Position, r.EventID
		chunk.Count++
		if chunk.Count == o.chunkRecords() {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

// readChunk reads chunk c and checks it whole: its hash, its count, its
// first and last position and event ID. It returns the chunk's NDJSON.
func readChunk(ctx context.Context, b *blob.Bucket, c Chunk) ([]byte, error) {
	data, err := b.ReadAll(ctx, c.Key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, &CorruptChunkError{Key: c.Key, Reason: "it is missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("archive: read %s: %w", c.Key, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.SHA256 {
		return nil, &CorruptChunkError{Key: c.Key, Reason: fmt.Sprintf("its SHA-256 is %x, the manifest says %s", sum, c.SHA256)}
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, &CorruptChunkError{Key: c.Key, Reason: err.Error()}
	}
	lines, err := io.ReadAll(zr)
	if err != nil {
		return nil, &CorruptChunkError{Key: c.Key, Reason: err.Error()}
	}
	var first, last transfer.Line
	n := 0
	for dec := json.NewDecoder(bytes.NewReader(lines)); ; n++ {
		var l transfer.Line
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, &CorruptChunkError{Key: c.Key, Reason: fmt.Sprintf("record %d: %v", n+1, err)}
		}
		if n == 0 {
			first = l
		}
		last = l
	}
	if n != c.Count || first.Position != c.First || last.Position != c.Last || first.EventID != c.FirstEventID || last.EventID != c.LastEventID {
		return nil, &CorruptChunkError{Key: c.Key, Reason: fmt.Sprintf("it holds %d records, positions %d–%d, the manifest says %d, %d–%d", n, first.Position, last.Position, c.Count, c.First, c.Last)}
	}
	return lines, nil
}

// Verify reads every chunk of the archive and checks it; it returns the
// manifest, and the first corrupt chunk as a *CorruptChunkError.
func Verify(ctx context.Context, b *blob.Bucket, o Options) (Manifest, error) {
	m, err := ReadManifest(ctx, b, o)
	if err != nil {
		return m, err
	}
	for _, c := range m.Chunks {
		if _, err := readChunk(ctx, b, c); err != nil {
			return m, err
		}
	}
	return m, nil
}

// Records yields the archive's records in position order (their source
// positions), chunk by chunk, each chunk checked whole before its first
// record: a projection can be fed from it as from a store's log.
func Records(ctx context.Context, b *blob.Bucket, o Options) iter.Seq2[eventsource.Record, error] {
	return func(yield func(eventsource.Record, error) bool) {
		m, err := ReadManifest(ctx, b, o)
		if err != nil {
			yield(eventsource.Record{}, err)
			return
		}
		for _, c := range m.Chunks {
			lines, err := readChunk(ctx, b, c)
			if err != nil {
				yield(eventsource.Record{}, err)
				return
			}
			dec := json.NewDecoder(bytes.NewReader(lines))
			for {
				var l transfer.Line
				if err := dec.Decode(&l); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					yield(eventsource.Record{}, &CorruptChunkError{Key: c.Key, Reason: err.Error()})
					return
				}
				r := l.Record()
				r.Position, r.RecordedAt = l.Position, l.RecordedAt
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// Replay imports the archive into target, chunk by chunk (package
// transfer's Import: event IDs, versions, data and metadata as archived;
// positions are the target's), each chunk checked whole first. Running it
// again, or after a replay that stopped, changes nothing. It returns how
// many records it read; progress, when not nil, is called after each chunk.
func Replay(ctx context.Context, b *blob.Bucket, o Options, target eventsource.Store, progress func(records int)) (int, error) {
	m, err := ReadManifest(ctx, b, o)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range m.Chunks {
		lines, err := readChunk(ctx, b, c)
		if err != nil {
			return n, err
		}
		k, err := transfer.Import(ctx, target, bytes.NewReader(lines), nil)
		n += k
		if err != nil {
			return n, fmt.Errorf("archive: replay %s: %w", c.Key, err)
		}
		if progress != nil {
			progress(n)
		}
	}
	return n, nil
}
