package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
)

// entryCmd is what `logbox searches` and `logbox alerts` share: a command
// whose subcommands read and write one kind of named entry over the HTTP
// API.
type entryCmd struct {
	name  string // the command after logbox: "searches"
	kind  string // an entry in messages: "saved search"
	path  string // the collection's API path: "/api/searches"
	usage string
	// stdout takes what a subcommand answers; stderr usage, flag errors
	// and the invalid entries a list skips.
	stdout, stderr io.Writer
}

func (e *entryCmd) printUsage() { fmt.Fprint(e.stderr, e.usage) }

// start splits args into the subcommand and its arguments, and returns a
// flag set for it (errors and -h print the usage) with the client its
// --server flag sets. No subcommand is errUsage, after the usage.
func (e *entryCmd) start(args []string) (sub string, rest []string, fs *flag.FlagSet, c *client, err error) {
	if len(args) == 0 {
		e.printUsage()
		return "", nil, nil, nil, errUsage
	}
	sub, rest = args[0], args[1:]
	fs = flag.NewFlagSet("logbox "+e.name+" "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = e.printUsage
	return sub, rest, fs, clientFlags(fs), nil
}

// parseArgs parses args with fs and returns the positional arguments:
// arguments and flags may come in any order; after -- everything is an
// argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// wantArgs checks that the subcommand sub got one of want positional
// arguments (pos); else it prints how many it wants (the last of want) and
// the usage, and returns errUsage.
func (e *entryCmd) wantArgs(sub string, pos []string, want ...int) error {
	if slices.Contains(want, len(pos)) {
		return nil
	}
	fmt.Fprintf(e.stderr, "logbox %s %s: want %d argument(s), got %d\n\n", e.name, sub, want[len(want)-1], len(pos))
	e.printUsage()
	return errUsage
}

// entryPath is the API path of the entry name.
func (e *entryCmd) entryPath(name string) string { return e.path + "/" + url.PathEscape(name) }

// get reads the entry name into out and prints it as indented JSON.
func (e *entryCmd) get(c *client, name string, out any) error {
	if err := c.do(http.MethodGet, e.entryPath(name), nil, out); err != nil {
		return err
	}
	return writeIndented(e.stdout, out)
}

// save creates or replaces the entry name with body.
func (e *entryCmd) save(c *client, name string, body any) error {
	if err := c.do(http.MethodPut, e.entryPath(name), body, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %q saved\n", e.kind, name)
	return nil
}

// remove deletes the entry name.
func (e *entryCmd) remove(c *client, name string) error {
	if err := c.do(http.MethodDelete, e.entryPath(name), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %q removed\n", e.kind, name)
	return nil
}

// printInvalid tells on stderr which entries a list left out and why, by
// name.
func (e *entryCmd) printInvalid(invalid map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(invalid)) {
		fmt.Fprintf(e.stderr, "invalid entry %q (not listed): %s\n", name, invalid[name])
	}
}
