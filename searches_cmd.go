package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

const searchesUsage = `Usage:
  logbox searches list [--json]
  logbox searches get NAME
  logbox searches save NAME QUERY [--from T] [--to T] [--view discover|visualize]
                       [--chart bar|line|table] [--column FIELD...] [--description TEXT]
  logbox searches rm NAME
  logbox searches rename OLD NEW

save creates the saved search or replaces it. --from and --to are RFC 3339
or relative (now-15m, now); left out, that end of the range is open. A
QUERY that starts with '-' goes after --: save NAME -- '-level:debug'.

Flag shared by every subcommand: --server URL (env LOGBOX_SERVER).
Credentials: env LOGBOX_TOKEN, or LOGBOX_USER and LOGBOX_PASSWORD.
`

// searchesCmd manages saved searches over the HTTP API (/api/searches).
func searchesCmd(args []string, stdout, stderr io.Writer) error {
	usage := func() { fmt.Fprint(stderr, searchesUsage) }
	if len(args) == 0 {
		usage()
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("logbox searches "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage
	c := clientFlags(fs)
	var (
		asJSON bool
		output string
		ss     pipeline.SavedSearch
	)
	var npos int // positional arguments the subcommand takes
	switch sub {
	case "list", "ls":
		fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		fs.StringVar(&output, "o", "table", "output: table or json")
	case "get", "rm", "delete":
		npos = 1
	case "save":
		npos = 2
		fs.StringVar(&ss.From, "from", "", "start: RFC 3339 or relative (now-15m); empty: open")
		fs.StringVar(&ss.To, "to", "", "end: RFC 3339 or relative (now); empty: open")
		fs.StringVar(&ss.View, "view", pipeline.ViewDiscover, "the view the page opens it in: discover or visualize")
		fs.StringVar(&ss.Chart, "chart", "", "Visualize's chart: bar, line or table")
		fs.Var(listFlag{&ss.Columns}, "column", "a field Discover shows as a column (repeatable, in order)")
		fs.StringVar(&ss.Description, "description", "", "what the search is for")
	case "rename", "mv":
		npos = 2
	default:
		usage()
		return errUsage
	}
	// Arguments and flags may come in any order; after -- everything is
	// an argument.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != npos {
		fmt.Fprintf(stderr, "logbox searches %s: want %d argument(s), got %d\n\n", sub, npos, len(pos))
		usage()
		return errUsage
	}
	switch sub {
	case "list", "ls":
		var out pipeline.SavedSearchList
		if err := c.do(http.MethodGet, "/api/searches", nil, &out); err != nil {
			return err
		}
		if asJSON || output == "json" {
			return writeIndented(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVIEW\tFROM\tTO\tQUERY")
		for _, s := range out.Searches {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.View, dash(s.From), dash(s.To), shorten(s.Query, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(out.Invalid)) {
			why := out.Invalid[name]
			fmt.Fprintf(stderr, "invalid entry %q (not listed): %s\n", name, why)
		}
		return nil
	case "get":
		var out pipeline.SavedSearch
		if err := c.do(http.MethodGet, "/api/searches/"+url.PathEscape(pos[0]), nil, &out); err != nil {
			return err
		}
		return writeIndented(stdout, out)
	case "save":
		ss.Name, ss.Query = pos[0], pos[1]
		if err := c.do(http.MethodPut, "/api/searches/"+url.PathEscape(ss.Name), ss, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved search %q saved\n", ss.Name)
		return nil
	case "rename", "mv":
		body := map[string]string{"name": pos[1]}
		if err := c.do(http.MethodPost, "/api/searches/"+url.PathEscape(pos[0])+"/rename", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved search %q renamed to %q\n", pos[0], pos[1])
		return nil
	default: // rm, delete
		if err := c.do(http.MethodDelete, "/api/searches/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved search %q removed\n", pos[0])
		return nil
	}
}

// shorten cuts s to at most n runes, marking the cut with "…", with
// control characters (line breaks) as blanks, for a table cell.
func shorten(s string, n int) string {
	s = oneLine(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// oneLine blanks control characters, whose tab or line break would break
// a table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
