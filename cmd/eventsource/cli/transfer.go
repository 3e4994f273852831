package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/eventsource-go/eventsource/transfer"
)

func (a *app) exportCmd() *cobra.Command {
	var sel transfer.Selection
	var output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a stream, a category or the whole log as NDJSON",
		Long: `export writes records as NDJSON, one JSON object per line: event ID, stream,
version, type, codec, data (as JSON when it is JSON that reads back
byte-identical, otherwise data_base64), metadata, recording time and the
source position. import appends such a file to any store.`,
		Example: `  eventsource export > all.ndjson
  eventsource export --category account- --output accounts.ndjson
  eventsource export --stream account-42
  eventsource -s sqlite://old.db export | eventsource -s postgres://localhost/app import`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sel.Stream != "" && sel.Category != "" {
				return usagef("--stream and --category: give one")
			}
			if sel.Stream != "" && sel.From != 0 {
				return usagef("--from applies to the log and categories, not a stream")
			}
			s, err := a.openExisting(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			var w io.Writer = cmd.OutOrStdout()
			if output != "" && output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			p := newProgress(cmd)
			if _, err := transfer.Export(cmd.Context(), s, w, sel, func(int) { p.add() }); err != nil {
				return err
			}
			p.done("records exported")
			return nil
		},
	}
	cmd.Flags().StringVar(&sel.Stream, "stream", "", "only this stream")
	cmd.Flags().StringVar(&sel.Category, "category", "", "only streams with this ID prefix")
	cmd.Flags().Uint64Var(&sel.From, "from", 0, "first position (the log or a category)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (default: standard output)")
	return cmd
}

func (a *app) importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import [FILE]",
		Short: "Append the records of an NDJSON export to the store",
		Long: `import appends the records of an export (a file, or standard input with - or
no argument) to the store, each at its version with its event ID and its data
and metadata byte for byte; positions and recording times are the store's.
Importing the same file again changes nothing, and so does resuming an import
that stopped. A stream that holds other events at those versions stops the
import, naming the line (exit code 4).`,
		Example: `  eventsource -s postgres://localhost/app import all.ndjson
  eventsource -s sqlite://old.db export | eventsource -s memory:// import -`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				r = f
			}
			s, err := a.open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			p := newProgress(cmd)
			last := 0
			n, err := transfer.Import(cmd.Context(), s, r, func(n int) {
				for ; last < n; last++ {
					p.add()
				}
			})
			if err != nil {
				return fmt.Errorf("%w (%d records imported before it)", err, n)
			}
			p.n = n
			p.done("records imported")
			return nil
		},
	}
}
