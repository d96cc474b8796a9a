package main

import (
	"fmt"
	"io"
	"net/http"
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
	e := &entryCmd{name: "searches", kind: "saved search", path: "/api/searches", usage: searchesUsage, stdout: stdout, stderr: stderr}
	sub, args, fs, c, err := e.start(args)
	if err != nil {
		return err
	}
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
		e.printUsage()
		return errUsage
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := e.wantArgs(sub, pos, npos); err != nil {
		return err
	}
	switch sub {
	case "list", "ls":
		var out pipeline.SavedSearchList
		if err := c.do(http.MethodGet, e.path, nil, &out); err != nil {
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
		e.printInvalid(out.Invalid)
		return nil
	case "get":
		return e.get(c, pos[0], &pipeline.SavedSearch{})
	case "save":
		ss.Name, ss.Query = pos[0], pos[1]
		return e.save(c, ss.Name, ss)
	case "rename", "mv":
		body := map[string]string{"name": pos[1]}
		if err := c.do(http.MethodPost, e.entryPath(pos[0])+"/rename", body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved search %q renamed to %q\n", pos[0], pos[1])
		return nil
	default: // rm, delete
		return e.remove(c, pos[0])
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
