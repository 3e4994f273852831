// Package encryption encrypts event data with per-subject keys, so that
// deleting one key makes that subject's data unreadable for good
// (crypto-shredding) while the events themselves stay in the append-only log.
//
// # Design
//
// Codec wraps any eventsource.Codec. It encodes an event with the inner codec,
// then seals the bytes with AES-256-GCM under the current key of the event's
// subject (by default its AggregateID; WithSubject picks another field, such
// as a customer ID, so one key covers one person across streams). Every
// record gets a fresh random 96-bit nonce. The ciphertext starts with a small
// header, which is the GCM additional data, so changing it fails
// authentication:
//
//	format version (1 byte) | subject length (1 byte) | subject |
//	key version (4 bytes, big endian) | nonce (12 bytes) | sealed data + tag
//
// The codec's name is "enc+" and the inner codec's name ("enc+json"), so each
// record says an encrypting codec wrote it. Keys live in a KeyStore: in memory
// (NewMemoryKeyStore), SQL (package encryption/sqlkeys: SQLite, MySQL,
// PostgreSQL) or NATS JetStream KV (package store/nats/natskeys, in the NATS module). Keys are 32
// bytes from crypto/rand, created on a subject's first use. Rotate adds a
// version; old versions are kept, so old records still decrypt. Delete
// destroys every version and leaves a tombstone naming the subject, so the
// subject can never get a new key that would be mistaken for the old one.
//
// # What is encrypted and what is not
//
// Encrypted: the record's Data (the whole encoded event, including the fields
// of an embedded eventsource.Model).
//
// Clear text: the stream ID, the event type name, the codec name, the
// version, position, event ID and time, the metadata (kept clear on purpose,
// so the global log can be filtered by it: never put personal data in
// metadata), and, in the ciphertext header, the subject ID and key version.
// Choose subject IDs that are not personal data themselves (opaque IDs, not
// e-mail addresses).
//
// # Errors
//
// Tampered, truncated or foreign bytes, and headers naming a key that never
// existed, are eventsource.ErrCorruptData. Data of a deleted subject is a
// *ShreddedError naming the subject, which matches eventsource.ErrShredded
// (defined in the root package: the repository, the registry and
// projections must tell "gone on purpose" from "corrupt" without importing
// this package, and the registry does not report it as corrupt data). With
// WithRedaction the codec instead decodes shredded data as the event type's
// zero value, without error, so projections keep running. Errors never hold
// keys, plaintext or ciphertext: an inner codec's decode error, which may
// quote plaintext, is reported by its type only (still reachable with
// errors.As); Key prints and logs as "[redacted]".
//
// # Context
//
// A key lookup is I/O, so Codec implements eventsource.ContextCodec:
// Registry passes its context (Repository.Load, Save and Apply pass theirs).
// The plain Marshal and Unmarshal use context.Background().
//
// # Example
//
//	keys, err := sqlkeys.New(db, sqlkeys.SQLite) // or natskeys.New(js), encryption.NewMemoryKeyStore()
//	reg := eventsource.NewRegistry(encryption.NewCodec(jsoncodec.New(), keys))
//	repo := eventsource.New(&Customer{}, eventsource.WithStore(store), eventsource.WithSerializer(reg))
//	repo.Bind(&Registered{})
//	...
//	keys.Delete(ctx, customerID) // forget the customer: Load now fails with ErrShredded
//
// # Limits
//
//   - Every decode fetches its key from the KeyStore: there is no key cache,
//     because a cache would keep a deleted key alive in other processes.
//     With a SQL or NATS store that is one round trip per event read.
//   - Shredding removes keys, not ciphertext: an attacker who copied a key
//     before Delete can still read a copy of the data. Backups of the key
//     store hold keys too; database pages and JetStream files may keep
//     deleted bytes until they are compacted.
//   - Snapshots, projections and read models hold decrypted data of their
//     own; shredding does not reach them (rebuild them after a Delete).
//   - The subject ID is at most 255 bytes and stays readable in the header
//     and in the key store's tombstone.
//   - A shredded subject takes no new events (encoding fails with a
//     *ShreddedError).
//   - An I/O error of the key store on decode reaches the caller as an
//     eventsource.DecodeError (so it also matches ErrCorruptData) unless the
//     context ended.
package encryption
