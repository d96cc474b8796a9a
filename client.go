package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
)

// client talks to a running logbox over its HTTP API.
type client struct {
	server string
	token  string
	http   *http.Client
}

func clientFlags(fs *flag.FlagSet) *client {
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	def := os.Getenv("LOGBOX_SERVER")
	if def == "" {
		def = "http://127.0.0.1:7070"
	}
	fs.StringVar(&c.server, "server", def, "URL of a running logbox (env LOGBOX_SERVER)")
	// Credentials come from env only, so they do not show in ps:
	// LOGBOX_TOKEN (bearer), or LOGBOX_USER and LOGBOX_PASSWORD (basic).
	c.token = os.Getenv("LOGBOX_TOKEN")
	return c
}

// do sends a request and decodes a JSON answer into out (if not nil). An
// API error comes back as the server's message.
func (c *client) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	} else if u := os.Getenv("LOGBOX_USER"); u != "" {
		req.SetBasicAuth(u, os.Getenv("LOGBOX_PASSWORD"))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is logbox running at %s?)", method, path, err, c.server)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

type kvFlag map[string]string

func (m kvFlag) String() string { return "" }
func (m kvFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", v)
	}
	m[k] = val
	return nil
}

func sourcesCmd(args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprint(stderr, `Usage:
  logbox sources list [-o json]
  logbox sources get NAME
  logbox sources add NAME --path GLOB [--path GLOB...] [--topic T] [--field k=v...] [--host H...] [--paused]
                     [--parser auto|nginx|apache|syslog|json|logfmt|none | --parser-regex RE] [--timezone ZONE]
  logbox sources rm NAME

Flag shared by every subcommand: --server URL (env LOGBOX_SERVER).
Credentials: env LOGBOX_TOKEN, or LOGBOX_USER and LOGBOX_PASSWORD.
`)
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("logbox sources "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	var (
		paths, hosts []string
		topic        string
		parser, re   string
		zone         string
		paused       bool
		output       string
		fields       = kvFlag{}
	)
	switch sub {
	case "list", "ls":
		fs.StringVar(&output, "o", "table", "output: table or json")
	case "add", "create", "put":
		fs.Var(listFlag{&paths}, "path", "absolute glob of files to collect (repeatable)")
		fs.StringVar(&topic, "topic", "", "Kafka topic (default: the appliance's --topic)")
		fs.Var(fields, "field", "static field key=value added to every line (repeatable)")
		fs.Var(listFlag{&hosts}, "host", "collect only on this host (repeatable; default every host)")
		fs.BoolVar(&paused, "paused", false, "create the source paused")
		fs.StringVar(&parser, "parser", "", "how lines become fields: auto (default), nginx, apache, syslog, json, logfmt or none")
		fs.StringVar(&re, "parser-regex", "", "a regular expression with named groups (RE2) as the parser")
		fs.StringVar(&zone, "timezone", "", "zone of times written without one (IANA name, e.g. Asia/Shanghai; default: the box's)")
	case "get", "rm", "delete":
	default:
		usage()
		return errUsage
	}
	// Allow NAME before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	needName := sub != "list" && sub != "ls"
	if needName && name == "" {
		usage()
		return errUsage
	}
	switch sub {
	case "list", "ls":
		var out struct {
			Sources []pipeline.Source `json:"sources"`
		}
		if err := c.do(http.MethodGet, "/api/sources", nil, &out); err != nil {
			return err
		}
		if output == "json" {
			return writeIndented(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPATHS\tTOPIC\tHOSTS\tPAUSED")
		for _, s := range out.Sources {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", s.Name, strings.Join(s.Paths, ","), dash(s.Topic), dash(strings.Join(s.Hosts, ",")), s.Paused)
		}
		return tw.Flush()
	case "get":
		var src pipeline.Source
		if err := c.do(http.MethodGet, "/api/sources/"+url.PathEscape(name), nil, &src); err != nil {
			return err
		}
		return writeIndented(stdout, src)
	case "add", "create", "put":
		src := pipeline.Source{Name: name, Paths: paths, Topic: topic, Hosts: hosts, Paused: paused, Timezone: zone}
		switch {
		case parser != "" && re != "":
			return fmt.Errorf("give --parser or --parser-regex, not both")
		case re != "":
			src.Parser = pipeline.Parser{Regex: re}
		case parser != "" && parser != "auto":
			src.Parser = pipeline.Parser{Name: parser}
		}
		if len(fields) > 0 {
			src.Fields = fields
		}
		method, path := http.MethodPost, "/api/sources"
		if sub == "put" {
			method, path = http.MethodPut, "/api/sources/"+url.PathEscape(name)
		}
		if err := c.do(method, path, src, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "source %q saved\n", name)
		return nil
	default: // rm, delete
		if err := c.do(http.MethodDelete, "/api/sources/"+url.PathEscape(name), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "source %q removed\n", name)
		return nil
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func searchCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logbox search", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := clientFlags(fs)
	from := fs.String("from", "", "start: RFC 3339 or relative (now-15m)")
	to := fs.String("to", "", "end: RFC 3339 or relative")
	limit := fs.Int("limit", 100, "most hits to print")
	asJSON := fs.Bool("json", false, "print one JSON hit per line")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: logbox search QUERY [flags]\n\nQUERY is Bleve query-string syntax over the line and fields, e.g. 'error AND host:web1'.\n"+
			"With a stats pipe ('status:>=500 | stats count() by (host)') it prints the answer's table (--json: the answer as JSON).\n\n")
		fs.PrintDefaults()
	}
	var query string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		query, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if query == "" && fs.NArg() > 0 {
		query = strings.Join(fs.Args(), " ")
	}
	q := url.Values{"q": {query}, "limit": {fmt.Sprint(*limit)}}
	if *from != "" {
		q.Set("from", *from)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	if index.HasPipe(query) {
		q.Del("limit")
		return statsCmd(c, q, *asJSON, stdout, stderr)
	}
	var res pipeline.SearchResult
	if err := c.do(http.MethodGet, "/api/search?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, h := range res.Hits {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	for _, h := range res.Hits {
		fmt.Fprintf(stdout, "%s %s %s: %s\n", h.TS.Local().Format("2006-01-02T15:04:05.000"), h.Host, h.Source, h.Line)
	}
	if res.TotalRelation == "gte" {
		fmt.Fprintf(stderr, "%d of at least %d hits\n", len(res.Hits), res.Total)
	} else {
		fmt.Fprintf(stderr, "%d of %d hits\n", len(res.Hits), res.Total)
	}
	return nil
}

// statsCmd prints the answer of a query with a stats pipe as a table, or
// as JSON.
func statsCmd(c *client, q url.Values, asJSON bool, stdout, stderr io.Writer) error {
	var res pipeline.StatsResult
	if err := c.do(http.MethodGet, "/api/stats?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if asJSON {
		return writeIndented(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
	for _, row := range res.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			switch v := v.(type) {
			case nil:
				cells[i] = "-"
			case string:
				cells[i] = dash(oneLine(v))
			case float64:
				cells[i] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d rows over %d matching lines\n", len(res.Rows), res.Total)
	if res.GroupsCapped {
		fmt.Fprintln(stderr, "more groups than an answer keeps: lines of the groups past the cap are not counted")
	}
	return nil
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func versionCmd(stdout io.Writer) error {
	fmt.Fprintf(stdout, "logbox %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(stdout, "go %s\n", bi.GoVersion)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH":
				fmt.Fprintf(stdout, "%s %s\n", s.Key, s.Value)
			}
		}
	}
	return nil
}
