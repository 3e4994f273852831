package cli

// Stream lifecycle commands: metadata, truncation, deletes and scavenge
// (eventsource.StreamLifecycle and eventsource.Scavenger).

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource"
	"github.com/eventsource-go/eventsource/storeurl"
)

// openLifecycle checks stream and opens the store for a lifecycle command
// (existing: one that only reads); close the store when done.
func (a *app) openLifecycle(cmd *cobra.Command, stream string, existing bool) (storeurl.Store, eventsource.StreamLifecycle, error) {
	if err := eventsource.ValidateStreamID(stream); err != nil {
		return nil, nil, err
	}
	open := a.open
	if existing {
		open = a.openExisting
	}
	s, err := open(cmd)
	if err != nil {
		return nil, nil, err
	}
	l, ok := eventsource.As[eventsource.StreamLifecycle](s)
	if !ok {
		s.Close()
		return nil, nil, fmt.Errorf("this store has no stream lifecycle (metadata, truncation, deletes)")
	}
	return s, l, nil
}

// metaJSON is how meta prints a stream's metadata.
type metaJSON struct {
	Stream          string            `json:"stream"`
	MetadataVersion int64             `json:"metadata_version"`
	TruncateBefore  int64             `json:"truncate_before,omitempty"`
	MaxCount        int64             `json:"max_count,omitempty"`
	MaxAge          string            `json:"max_age,omitempty"`
	Values          map[string]string `json:"values,omitempty"`
}

func (a *app) metaCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "meta STREAM",
		Short:   "Print a stream's metadata (retention rules and values) as JSON",
		Example: `  eventsource streams meta account-42`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, l, err := a.openLifecycle(cmd, args[0], true)
			if err != nil {
				return err
			}
			defer s.Close()
			md, v, err := l.StreamMetadata(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := metaJSON{Stream: args[0], MetadataVersion: v, TruncateBefore: md.TruncateBefore, MaxCount: md.MaxCount, Values: md.Values}
			if md.MaxAge > 0 {
				out.MaxAge = md.MaxAge.String()
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return nil
		},
	}
}

func (a *app) setMetaCmd() *cobra.Command {
	var truncateBefore, maxCount int64
	var maxAge time.Duration
	var values, unset []string
	var expected string
	cmd := &cobra.Command{
		Use:   "set-meta STREAM",
		Short: "Change a stream's retention rules or values",
		Long: `set-meta changes the metadata of a stream: only the flags given change, the
rest is kept. It reads the metadata and writes it back expecting the version it
read, so a concurrent change is a conflict (exit code 4), never lost; --expected
names the metadata version to expect instead.

Rules retire records at once, for every reader: --truncate-before N hides the
versions below N, --max-count N keeps the newest N, --max-age D hides records
older than D. Retiring is one-way: lowering a rule later brings nothing back.
The space is reclaimed only by "eventsource scavenge".`,
		Example: `  eventsource streams set-meta account-42 --max-count 1000
  eventsource streams set-meta session-7 --max-age 720h --value owner=web
  eventsource streams set-meta account-42 --unset owner --expected 3`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if !f.Changed("truncate-before") && !f.Changed("max-count") && !f.Changed("max-age") && len(values) == 0 && len(unset) == 0 {
				return usagef("nothing to change: give --truncate-before, --max-count, --max-age, --value or --unset")
			}
			set := map[string]string{}
			for _, kv := range values {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--value %q: want key=value", kv)
				}
				set[k] = v
			}
			return a.changeMeta(cmd, args[0], expected, func(md *eventsource.StreamMetadata) {
				if f.Changed("truncate-before") {
					md.TruncateBefore = truncateBefore
				}
				if f.Changed("max-count") {
					md.MaxCount = maxCount
				}
				if f.Changed("max-age") {
					md.MaxAge = maxAge
				}
				if len(set) > 0 || len(unset) > 0 {
					md.Values = maps.Clone(md.Values)
					if md.Values == nil {
						md.Values = map[string]string{}
					}
					maps.Copy(md.Values, set)
					for _, k := range unset {
						delete(md.Values, k)
					}
				}
			})
		},
	}
	cmd.Flags().Int64Var(&truncateBefore, "truncate-before", 0, "retire the versions below this one (0: no rule)")
	cmd.Flags().Int64Var(&maxCount, "max-count", 0, "keep only the newest N records (0: no limit)")
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "retire records older than this, e.g. 720h (0: no limit)")
	cmd.Flags().StringArrayVar(&values, "value", nil, "set a user value key=value (repeatable)")
	cmd.Flags().StringArrayVar(&unset, "unset", nil, "remove a user value (repeatable)")
	cmd.Flags().StringVarP(&expected, "expected", "e", "", "expected metadata version (default: the one read)")
	return cmd
}

func (a *app) truncateCmd() *cobra.Command {
	var before int64
	var expected string
	cmd := &cobra.Command{
		Use:     "truncate STREAM --before N",
		Short:   "Retire a stream's versions below N (set-meta --truncate-before)",
		Example: `  eventsource streams truncate account-42 --before 1000`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if before < 1 {
				return usagef("--before %d: want the first version to keep (1, 2, …)", before)
			}
			return a.changeMeta(cmd, args[0], expected, func(md *eventsource.StreamMetadata) { md.TruncateBefore = before })
		},
	}
	cmd.Flags().Int64Var(&before, "before", 0, "the first version to keep (required)")
	cmd.Flags().StringVarP(&expected, "expected", "e", "", "expected metadata version (default: the one read)")
	return cmd
}

// changeMeta reads stream's metadata, edits it and writes it back
// expecting the version read (or expected, when given).
func (a *app) changeMeta(cmd *cobra.Command, stream, expected string, edit func(*eventsource.StreamMetadata)) error {
	var want eventsource.ExpectedVersion
	if expected != "" {
		ev, err := parseExpected(expected)
		if err != nil {
			return err
		}
		want = ev
	}
	s, l, err := a.openLifecycle(cmd, stream, false)
	if err != nil {
		return err
	}
	defer s.Close()
	md, v, err := l.StreamMetadata(cmd.Context(), stream)
	if err != nil {
		return err
	}
	if expected == "" {
		want = eventsource.Exact(v)
	}
	edit(&md)
	nv, err := l.SetStreamMetadata(cmd.Context(), stream, want, md)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "metadata of %s is at version %d\n", stream, nv)
	return nil
}

func (a *app) deleteCmd() *cobra.Command {
	var hard bool
	var expected string
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete a stream (soft; --hard for a tombstone)",
		Long: `delete removes a stream from reads, the global log and listings at once.

By default the delete is soft: appending to the stream again continues its
version numbers. With --hard the stream is tombstoned: it can never be written
again (appends fail with exit code 5). Either way the records stay on disk
until "eventsource scavenge" removes them; the stream's snapshots go at once.`,
		Example: `  eventsource streams delete cart-9
  eventsource streams delete user-42 --hard --expected 17`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := parseExpected(expected)
			if err != nil {
				return err
			}
			s, l, err := a.openLifecycle(cmd, args[0], false)
			if err != nil {
				return err
			}
			defer s.Close()
			if hard {
				if err := l.TombstoneStream(cmd.Context(), args[0], ev); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tombstoned %s: it can never be written again\n", args[0])
				return nil
			}
			if err := l.DeleteStream(cmd.Context(), args[0], ev); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (soft: appending again continues its versions)\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&hard, "hard", false, "tombstone the stream: it can never be written again")
	cmd.Flags().StringVarP(&expected, "expected", "e", "any", "expected version: a number, any, no-stream or exists")
	return cmd
}

func (a *app) scavengeCmd() *cobra.Command {
	var after string
	cmd := &cobra.Command{
		Use:   "scavenge",
		Short: "Reclaim the space of retired and deleted records",
		Long: `scavenge removes, stream by stream, the records that truncation, max count,
max age and deletes have retired. Readers see no change: those records were
already hidden. Interrupted (Ctrl-C), it prints where it got to; --after
resumes from there. Running it again is harmless.`,
		Example: `  eventsource scavenge
  eventsource scavenge --after account-41`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			sc, ok := eventsource.As[eventsource.Scavenger](s)
			if !ok {
				return fmt.Errorf("this store cannot scavenge")
			}
			p := newProgress(cmd)
			res, err := sc.Scavenge(cmd.Context(), eventsource.ScavengeOptions{After: after, Progress: func(r eventsource.ScavengeResult) {
				if p.on && time.Since(p.last) > 200*time.Millisecond {
					p.last = time.Now()
					fmt.Fprintf(p.w, "\r%s, %s removed…", plural(int64(r.Streams), "stream"), plural(r.Removed, "record"))
				}
			}})
			if p.on {
				fmt.Fprint(p.w, "\r\033[K")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "scavenged %s, removed %s\n", plural(int64(res.Streams), "stream"), plural(res.Removed, "record"))
			if err != nil && res.Last != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "stopped after %s; resume with: eventsource scavenge --after %q\n", res.Last, res.Last)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&after, "after", "", "resume: skip the streams up to and including this one")
	return cmd
}

// plural is "1 stream", "2 streams".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
