// Command logbox tails log files, ships them through Kafka (or straight to
// the index), indexes them in Bleve and serves a search page.
//
// main.go only turns flags, env and the config file into appliance.Config,
// handles signals, and implements the small client commands (sources,
// search, version) over the HTTP API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/logbox/logbox/appliance"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runAppliance(args, stderr)
	case "sources":
		err = sourcesCmd(args, stdout, stderr)
	case "search":
		err = searchCmd(args, stdout, stderr)
	case "searches":
		err = searchesCmd(args, stdout, stderr)
	case "alerts":
		err = alertsCmd(args, stdout, stderr)
	case "version":
		err = versionCmd(stdout)
	case "help":
		usage(stderr)
		return 0
	default:
		fmt.Fprintf(stderr, "logbox: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "logbox %s: %v\n", cmd, err)
		return 1
	}
}

// errUsage marks an error whose message was already printed with usage.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `logbox — tail log files, ship them through Kafka, search them.

Usage:
  logbox [run] [flags]              run the appliance (see logbox run --help)
  logbox sources list|get|add|rm    manage collection sources over the HTTP API
  logbox search QUERY [flags]       search from the terminal
  logbox searches list|get|save|rm|rename  saved searches over the HTTP API
  logbox alerts list|get|save|rm|history   alert rules over the HTTP API
  logbox version                    print build information
`)
}

// Go soft memory limits (runtime/debug.SetMemoryLimit; the GC works
// harder near one, GOMEMLIMIT overrides): an agent's heap is what it has
// read and not yet had acked; an indexer's is the batch being indexed and
// the queries being answered, while the index itself holds about 0.2 byte
// per line (at 1 M lines, peak RSS went from 345 to 240 MiB with the
// limit, ingest unchanged).
const (
	agentMemoryLimit   = 64 << 20
	indexerMemoryLimit = 256 << 20
)

// memoryLimit is the soft memory limit of a role (0: none).
func memoryLimit(role string) int64 {
	switch role {
	case appliance.RoleAgent:
		return agentMemoryLimit
	case appliance.RoleAll, appliance.RoleIndexer:
		return indexerMemoryLimit
	}
	return 0
}

func runAppliance(args []string, stderr io.Writer) error {
	cfg, err := loadRunConfig(args, stderr)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.logLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if lim := memoryLimit(cfg.Role); lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
	}
	a, err := newAppliance(cfg.Config, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP re-reads the config file (and env and flags): log level,
	// credentials and --collect apply at once; the rest needs a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			next, err := loadRunConfig(args, io.Discard)
			if err == nil {
				var restart []string
				if restart, err = a.Reload(ctx, next.Config); err == nil {
					level.Set(next.logLevel)
					log.Info("configuration reloaded", "component", "main")
					if len(restart) > 0 {
						log.Warn("some changed settings apply only after a restart", "component", "main", "settings", strings.Join(restart, ","))
					}
					continue
				}
			}
			log.Warn("configuration reload failed; the running configuration stays; fix the file and send SIGHUP again", "component", "main", "err", err)
		}
	}()
	return a.Run(ctx)
}
