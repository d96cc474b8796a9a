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
  logbox version                    print build information
`)
}

// agentMemoryLimit is the Go soft memory limit of an agent (see
// runtime/debug.SetMemoryLimit): the GC works harder near it.
const agentMemoryLimit = 64 << 20

func runAppliance(args []string, stderr io.Writer) error {
	cfg, err := loadRunConfig(args, stderr)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.logLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.Role == appliance.RoleAgent && os.Getenv("GOMEMLIMIT") == "" {
		// An agent's heap is what it has read and not yet had acked: keep
		// the garbage around it small (GOMEMLIMIT overrides).
		debug.SetMemoryLimit(agentMemoryLimit)
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
