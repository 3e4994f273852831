package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// archives
	_ "gocloud.dev/blob/memblob"  // mem:// (for trying things)
	_ "gocloud.dev/blob/s3blob"   // s3:// archives (and S3-compatible servers: ?endpoint=…&use_path_style=true)

	"github.com/eventsource-go/eventsource/archive"
	"github.com/eventsource-go/eventsource/transfer"
)

const bucketHelp = `The archive is a bucket URL of gocloud.dev's blob: file:///var/archive,
s3://bucket?region=eu-west-1 (S3-compatible servers: &endpoint=http://…&use_path_style=true)
or mem://; --prefix chooses a folder within it.`

func (a *app) archiveCmd() *cobra.Command {
	var to, prefix string
	var chunk int
	var verify bool
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Copy the global log to object storage, in checksummed chunks",
		Long: `archive writes the store's global log to a bucket: gzip-compressed NDJSON
chunks (package transfer's lines) and a manifest naming each chunk's positions,
count, first and last event ID and SHA-256. It is incremental: each run goes
on from the last archived position. --verify reads every chunk back and checks
it instead (exit code 7 names a corrupt one).

` + bucketHelp,
		Example: `  eventsource archive --to file:///var/archive/bank
  eventsource -s postgres://localhost/app archive --to 's3://backups?region=eu-west-1' --prefix app/
  eventsource archive --to file:///var/archive/bank --verify`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to is required: a bucket URL (file://, s3://, mem://)")
			}
			u := to
			if strings.HasPrefix(u, "file://") && !verify && !strings.Contains(u, "create_dir=") {
				u += map[bool]string{true: "&", false: "?"}[strings.Contains(u, "?")] + "create_dir=true" // archiving makes its folder
			}
			b, err := blob.OpenBucket(cmd.Context(), u)
			if err != nil {
				return usagef("--to %s: %v", to, err)
			}
			defer b.Close()
			o := archive.Options{Prefix: prefix, ChunkRecords: chunk}
			out := cmd.OutOrStdout()
			if verify {
				m, err := archive.Verify(cmd.Context(), b, o)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%d chunks, %d records, positions up to %d: every chunk reads back as written\n", len(m.Chunks), m.Records(), m.Last())
				return nil
			}
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			p := newProgress(cmd)
			res, err := archive.Archive(cmd.Context(), s, b, o, func(n int) { p.n = n; p.add(); p.n = n })
			if err != nil {
				return err
			}
			if res.Records == 0 {
				fmt.Fprintln(out, "nothing new to archive")
				return nil
			}
			fmt.Fprintf(out, "archived %d records (positions %d–%d) in %d chunks\n", res.Records, res.From, res.To, res.Chunks)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "bucket URL of the archive (required)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "folder of the archive in the bucket (end it with /)")
	cmd.Flags().IntVar(&chunk, "chunk", 10_000, "most records in one chunk")
	cmd.Flags().BoolVar(&verify, "verify", false, "check every chunk of the archive instead of archiving")
	return cmd
}

func (a *app) replayCmd() *cobra.Command {
	var from, prefix string
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild a store from an archive",
		Long: `replay imports an archive (see archive) into the store: each chunk is read
whole and checked (hash, count, first and last record) before any of its
records is appended, and the records keep their event IDs, versions, data and
metadata (positions are the store's). Running it again, or after it stopped,
changes nothing.

` + bucketHelp,
		Example: `  eventsource -s sqlite://restored.db replay --from file:///var/archive/bank`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usagef("--from is required: a bucket URL (file://, s3://, mem://)")
			}
			b, err := blob.OpenBucket(cmd.Context(), from)
			if err != nil {
				return usagef("--from %s: %v", from, err)
			}
			defer b.Close()
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			p := newProgress(cmd)
			n, err := archive.Replay(cmd.Context(), b, archive.Options{Prefix: prefix}, s, func(n int) { p.n = n; p.add(); p.n = n })
			if err != nil {
				return fmt.Errorf("%w (%d records replayed before it)", err, n)
			}
			p.n = n
			p.done("records replayed")
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "bucket URL of the archive (required)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "folder of the archive in the bucket")
	return cmd
}

func (a *app) copyCmd() *cobra.Command {
	var to, checkpoint string
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy the store's global log into another store, until caught up",
		Long: `copy follows the store's global log into the store --to names, appending each
record with its event ID, version, data and metadata (positions are the
target's), until it has read everything committed. With --checkpoint FILE it
saves the last source position it copied and goes on from there next time;
without, it starts from the beginning, which changes nothing already copied.
Run it again (or on a timer) until the switch-over: a live migration between
any two stores.`,
		Example: `  eventsource -s sqlite://bank.db copy --to postgres://localhost/app --checkpoint bank.copy`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to is required: the target store's URL")
			}
			var from uint64
			if checkpoint != "" {
				b, err := os.ReadFile(checkpoint)
				switch {
				case err == nil:
					if from, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
						return usagef("--checkpoint %s: not a position: %v", checkpoint, err)
					}
					from++
				case !os.IsNotExist(err):
					return err
				}
			}
			src, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := (&app{storeURL: to}).open(cmd)
			if err != nil {
				return err
			}
			defer dst.Close()
			save := func(pos uint64) error {
				if checkpoint == "" {
					return nil
				}
				tmp := checkpoint + ".tmp"
				if err := os.WriteFile(tmp, []byte(strconv.FormatUint(pos, 10)+"\n"), 0o644); err != nil {
					return err
				}
				return os.Rename(tmp, checkpoint)
			}
			last, err := transfer.Copy(cmd.Context(), src, dst, transfer.CopyOptions{From: from, Checkpoint: save})
			if err != nil {
				return err
			}
			if last+1 == max(from, 1) {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing new to copy")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied up to source position %d\n", last)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "URL of the target store (required)")
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "file keeping the last source position copied")
	return cmd
}
