package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

const alertsUsage = `Usage:
  logbox alerts list [--json]
  logbox alerts get NAME
  logbox alerts save NAME QUERY [--every 1m] [--window 5m] [--op '>'] [--value 0] [--for 0s]
                     [--column COL] [--new-patterns [--compare 24h]] [--label k=v]...
                     [--webhook URL]... [--alertmanager URL]... [--slack URL]...
                     [--description TEXT] [--disabled]
  logbox alerts save [NAME] --file rule.json   (- reads the rule from stdin)
  logbox alerts rm NAME
  logbox alerts history NAME [--json]

save creates the rule or replaces it. Every --every the QUERY runs over
the last --window; its value (the count of matching lines, or with a stats
pipe each group's --column) is compared with --op --value, and an alert
fires once that has held for --for. Left out, every is 1m, window 5m, op >,
value 0, for 0s. A QUERY that starts with '-' goes after --.

Flag shared by every subcommand: --server URL (env LOGBOX_SERVER).
Credentials: env LOGBOX_TOKEN, or LOGBOX_USER and LOGBOX_PASSWORD.
`

// targetFlag adds a notify target of one kind per use (a URL may hold
// commas, so no list splitting).
type targetFlag struct {
	dst  *[]pipeline.AlertTarget
	kind string
}

func (f targetFlag) String() string { return "" }
func (f targetFlag) Set(v string) error {
	t := pipeline.AlertTarget{}
	switch f.kind {
	case "webhook":
		t.Webhook = v
	case "alertmanager":
		t.Alertmanager = v
	default:
		t.Slack = v
	}
	*f.dst = append(*f.dst, t)
	return nil
}

// alertsCmd manages alert rules over the HTTP API (/api/alerts).
func alertsCmd(args []string, stdout, stderr io.Writer) error {
	e := &entryCmd{name: "alerts", kind: "alert rule", path: "/api/alerts", usage: alertsUsage, stdout: stdout, stderr: stderr}
	sub, args, fs, c, err := e.start(args)
	if err != nil {
		return err
	}
	var (
		asJSON bool
		file   string
		rule   pipeline.AlertRule
		labels = kvFlag{}
	)
	npos := []int{1} // how many positional arguments the subcommand takes
	switch sub {
	case "list", "ls":
		npos = []int{0}
		fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	case "get", "rm", "delete":
	case "history":
		fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	case "save":
		npos = []int{2}
		fs.StringVar(&file, "file", "", "the rule as JSON, as the API takes it (- is stdin)")
		fs.StringVar(&rule.Every, "every", "", "how often the query runs (default 1m)")
		fs.StringVar(&rule.Window, "window", "", "how far back each run looks (default 5m)")
		fs.StringVar(&rule.Condition.Op, "op", "", "the comparison: >, >=, <, <=, == or != (default >)")
		fs.Float64Var(&rule.Condition.Value, "value", 0, "the threshold the value is compared with")
		fs.StringVar(&rule.For, "for", "", "how long the condition must hold before the alert fires (default 0s)")
		fs.StringVar(&rule.Column, "column", "", "the stats column compared (default: the first function column)")
		fs.BoolVar(&rule.NewPatterns, "new-patterns", false, "fire on templates of the query's lines new since --compare")
		fs.StringVar(&rule.Compare, "compare", "", "with --new-patterns: how far back before the window templates are known from (default 24h)")
		fs.Var(labels, "label", "a label k=v added to the alert (repeatable)")
		fs.Var(targetFlag{&rule.Notify, "webhook"}, "webhook", "a URL that receives Alertmanager's webhook JSON (repeatable)")
		fs.Var(targetFlag{&rule.Notify, "alertmanager"}, "alertmanager", "the base URL of an Alertmanager (repeatable)")
		fs.Var(targetFlag{&rule.Notify, "slack"}, "slack", "a Slack-compatible incoming webhook URL (repeatable)")
		fs.StringVar(&rule.Description, "description", "", "what the rule is for")
		fs.BoolVar(&rule.Disabled, "disabled", false, "save the rule without evaluating it")
	default:
		e.printUsage()
		return errUsage
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if file != "" {
		// The rule is the file's; NAME may be given, and must then be
		// the file's name (the server checks).
		npos = []int{0, 1}
		var other []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "file" && f.Name != "server" {
				other = append(other, "--"+f.Name)
			}
		})
		if len(other) > 0 {
			fmt.Fprintf(stderr, "logbox alerts save: --file holds the whole rule; leave out %s\n\n", strings.Join(other, ", "))
			e.printUsage()
			return errUsage
		}
	}
	if err := e.wantArgs(sub, pos, npos...); err != nil {
		return err
	}
	switch sub {
	case "list", "ls":
		var out pipeline.AlertRuleViewList
		if err := c.do(http.MethodGet, e.path, nil, &out); err != nil {
			return err
		}
		if asJSON {
			return writeIndented(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tVALUE\tEVERY\tWINDOW\tCONDITION\tQUERY")
		for _, a := range out.Alerts {
			state := a.State
			if a.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, state, alertValue(a.Value), a.Every, a.Window, alertCondition(a.AlertRule), shorten(a.Query, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, a := range out.Alerts {
			if a.Error != "" {
				fmt.Fprintf(stderr, "rule %q: %s\n", a.Name, oneLine(a.Error))
			}
		}
		e.printInvalid(out.Invalid)
		return nil
	case "get":
		return e.get(c, pos[0], &pipeline.AlertRuleView{})
	case "history":
		var out struct {
			History []pipeline.AlertEvent `json:"history"`
		}
		if err := c.do(http.MethodGet, e.entryPath(pos[0])+"/history", nil, &out); err != nil {
			return err
		}
		if asJSON {
			return writeIndented(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tFROM\tTO\tVALUE\tLABELS")
		for _, e := range out.History {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.From, e.To, alertValue(&e.Value), dash(eventLabels(e.Labels)))
		}
		return tw.Flush()
	case "save":
		var body any
		if file != "" {
			b, name, err := readRuleFile(file)
			if err != nil {
				return err
			}
			if len(pos) == 1 {
				name = pos[0]
			}
			if name == "" {
				return fmt.Errorf("%s: the rule has no \"name\"; add one or give NAME: logbox alerts save NAME --file %s", file, file)
			}
			body, rule.Name = b, name
		} else {
			rule.Name, rule.Query = pos[0], pos[1]
			if len(labels) > 0 {
				rule.Labels = labels
			}
			body = rule
		}
		return e.save(c, rule.Name, body)
	default: // rm, delete
		return e.remove(c, pos[0])
	}
}

// readRuleFile reads a rule's JSON from path (- is stdin) and the name in
// it, if any. The bytes go to the server as they are, so that it sees a
// key given twice.
func readRuleFile(path string) (json.RawMessage, string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the rule: %w", err)
	}
	if !json.Valid(b) {
		return nil, "", fmt.Errorf("%s is not JSON", path)
	}
	var probe struct {
		Name string `json:"name"`
	}
	_ = json.NewDecoder(bytes.NewReader(b)).Decode(&probe) // a name of another type: the server names it
	return json.RawMessage(b), probe.Name, nil
}

// alertValue prints a value, or - before the first evaluation.
func alertValue(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// alertCondition prints a rule's condition: "> 0", "> 5 for 10m", "new
// since 24h".
func alertCondition(r pipeline.AlertRule) string {
	if r.NewPatterns {
		return "new since " + r.Compare
	}
	s := r.Condition.Op + " " + strconv.FormatFloat(r.Condition.Value, 'g', -1, 64)
	if d, err := time.ParseDuration(r.For); err != nil || d != 0 {
		s += " for " + r.For
	}
	return s
}

// eventLabels prints an event's labels but alertname, sorted, k=v.
func eventLabels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != "alertname" {
			parts = append(parts, k+"="+oneLine(m[k]))
		}
	}
	return strings.Join(parts, ",")
}
