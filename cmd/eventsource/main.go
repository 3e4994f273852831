// Command eventsource inspects and writes event stores. Run
// `eventsource --help` for the commands.
package main

import (
	"os"

	"github.com/eventsource-go/eventsource/cmd/eventsource/cli"
)

func main() { os.Exit(cli.Main()) }
