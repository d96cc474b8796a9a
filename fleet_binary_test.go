package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/settings"
)

// fleetToken is the bearer token every process of a fleet test takes; the
// indexers' calls to each other must carry it too.
const fleetToken = "fleet-test-token-0123456789abcdef"

// fleetClient asks a fleet test's processes, with the token.
var fleetClient = &http.Client{Timeout: 30 * time.Second}

// fleetGet GETs u with the token and returns the status and body; a
// transport error fails the test.
func fleetGet(t testing.TB, u string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := fleetClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the answer: %v", u, err)
	}
	return resp.StatusCode, b
}

// fleetJSON GETs u and decodes a 200 answer into out; any other status
// fails the test with the body.
func fleetJSON(t testing.TB, u string, out any) {
	t.Helper()
	code, b := fleetGet(t, u)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v in %.300s", u, err, b)
	}
}

// fleetMissing is one partition range no live indexer holds, as answers
// name it (DESIGN-16: "missing":[{"partition","from","to"}]).
type fleetMissing struct {
	Partition string `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

// fleetPartial reads an answer's "partial" and its ranges: "missing",
// or in a facets answer, whose "missing" counts the lines without the
// field, "missing_ranges".
func fleetPartial(t testing.TB, b []byte) (partial bool, missing []fleetMissing) {
	t.Helper()
	var a struct {
		Partial       bool            `json:"partial"`
		Missing       json.RawMessage `json:"missing"`
		MissingRanges []fleetMissing  `json:"missing_ranges"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer: %v in %.300s", err, b)
	}
	if len(a.Missing) > 0 && a.Missing[0] == '[' {
		if err := json.Unmarshal(a.Missing, &missing); err != nil {
			t.Fatalf("answer's missing: %v in %s", err, a.Missing)
		}
	}
	return a.Partial, append(missing, a.MissingRanges...)
}

// fleetTokens pages through every hit of q at base as allTokens does,
// with the fleet's token, and also reports whether any page said partial,
// and whether the pages were newest first throughout.
func fleetTokens(t *testing.T, base, q string) (seen map[int]int, total uint64, partial bool, ordered bool) {
	t.Helper()
	ordered = true
	var last time.Time
	get := func(u string) []byte {
		code, b := fleetGet(t, u)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %.500s", u, code, b)
		}
		return b
	}
	seen, total = pageTokens(t, base, q, get, func(b []byte, p *tokenPage) {
		if part, miss := fleetPartial(t, b); part {
			if !partial {
				t.Logf("search %q through %s: partial, missing %+v", q, base, miss)
			}
			partial = true
		}
		for _, h := range p.Hits {
			if !last.IsZero() && h.TS.After(last) {
				ordered = false
			}
			last = h.TS
		}
	})
	return seen, total, partial, ordered
}

// writeFleetLines appends n logfmt lines for tokens from … from+n-1 to
// path. Line i of an agent (its i-th line, i counted from first) is
// stamped base + i×100 ms; its level, status and latency follow from the
// token, so every aggregate has something to count.
func writeFleetLines(t testing.TB, path string, base time.Time, first, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b []byte
	for tok := from; tok < from+n; tok++ {
		i := first + tok - from
		level := "info"
		switch {
		case tok%10 == 0:
			level = "error"
		case tok%10 < 3:
			level = "warn"
		}
		status := []int{200, 200, 200, 201, 404, 500}[tok%6]
		b = fmt.Appendf(b, "%s level=%s status=%d latency_ms=%d msg=fleetline id=tok%07d\n",
			base.Add(time.Duration(i)*100*time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"), level, status, (tok*7919)%1000, tok)
		if len(b) >= 1<<20 || tok == from+n-1 {
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
			b = b[:0]
		}
	}
}

// fleetMember is the part of a member's JSON (DESIGN-16) the test reads.
type fleetMember struct {
	ID       string           `json:"id"`
	Addr     string           `json:"addr"`
	Role     string           `json:"role"`
	Group    string           `json:"group"`
	Host     string           `json:"host"`
	Assigned []string         `json:"assigned"`
	Lag      map[string]int64 `json:"lag"`
}

// fleetStatus is the part of /api/status the test reads.
type fleetStatus struct {
	Consumer *struct {
		Lag []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Lag       int64  `json:"lag"`
		} `json:"Lag"`
	} `json:"kafka_consumer"`
	Fleet *struct {
		Self     string         `json:"self"`
		Indexers []fleetMember  `json:"indexers"`
		Complete bool           `json:"complete"`
		Missing  []fleetMissing `json:"missing"`
	} `json:"fleet"`
}

// indexers are the members that index (a query process, should it
// register, is left out).
func (st fleetStatus) indexers() []fleetMember {
	if st.Fleet == nil {
		return nil
	}
	var out []fleetMember
	for _, m := range st.Fleet.Indexers {
		if m.Role != "query" {
			out = append(out, m)
		}
	}
	return out
}

func fleetStatusOf(t testing.TB, base string) fleetStatus {
	t.Helper()
	var st fleetStatus
	fleetJSON(t, base+"/api/status", &st)
	return st
}

// canonicalAnswer is an aggregate answer as JSON to compare: without the
// fleet's partial and missing ranges, facet values ordered by count
// then value and stats rows in JSON order, so ties and group order
// (which no request fixed) do not count as differences.
func canonicalAnswer(t testing.TB, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer: %v in %.300s", err, b)
	}
	delete(m, "partial")
	delete(m, "missing_ranges")
	if _, isList := m["missing"].([]any); isList {
		delete(m, "missing")
	}
	if vals, ok := m["values"].([]any); ok {
		sort.SliceStable(vals, func(i, j int) bool {
			a, _ := vals[i].(map[string]any)
			b, _ := vals[j].(map[string]any)
			ca, _ := a["count"].(float64)
			cb, _ := b["count"].(float64)
			if ca != cb {
				return ca > cb
			}
			return fmt.Sprint(a["value"]) < fmt.Sprint(b["value"])
		})
	}
	if rows, ok := m["rows"].([]any); ok {
		sort.SliceStable(rows, func(i, j int) bool {
			a, _ := json.Marshal(rows[i])
			b, _ := json.Marshal(rows[j])
			return string(a) < string(b)
		})
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// fleetAggregates are the aggregate requests compared with the reference:
// paths with their queries.
func fleetAggregates(base time.Time) []string {
	q := url.QueryEscape
	from, to := base.Format(time.RFC3339), base.Add(30*time.Minute).Format(time.RFC3339)
	return []string{
		"/api/histogram?q=fleetline&buckets=30&from=" + q(from) + "&to=" + q(to),
		"/api/facets?q=fleetline&field=host",
		"/api/facets?q=fleetline&field=level",
		"/api/facets?q=fleetline&field=fields.status",
		"/api/stats?q=" + q("fleetline | stats count() by (host, level)"),
		"/api/stats?q=" + q("fleetline | stats count() as n, sum(latency_ms) as total, avg(latency_ms) as mean, quantile(0.9, latency_ms) as p90, max(latency_ms) by (host, status)"),
		"/api/stats?q=" + q("fleetline | stats count_distinct(id) as ids, min(latency_ms)"),
		// Templates mined from every indexer's lines equal one index's.
		"/api/patterns?limit=50&q=fleetline",
	}
}

// referenceAnswers asks the reference indexer each aggregate.
func referenceAnswers(t *testing.T, ref string, paths []string) map[string]string {
	t.Helper()
	want := map[string]string{}
	for _, p := range paths {
		code, b := fleetGet(t, ref+p)
		if code != http.StatusOK {
			t.Fatalf("reference %s: %d %s", p, code, b)
		}
		want[p] = canonicalAnswer(t, b)
	}
	return want
}

// checkFleetComplete checks through the process name at base that every
// token below written is found exactly once, in one newest-first order,
// with an exact total and no page partial, and (when want is not nil)
// that each aggregate equals the reference's and is not partial.
func checkFleetComplete(t *testing.T, name, base string, written int, want map[string]string, paths []string) {
	t.Helper()
	began := time.Now()
	ok := true
	seen, total, partial, ordered := fleetTokens(t, base, "fleetline")
	missing, doubled := countTokens(t, seen, written)
	if partial || missing > 0 || doubled > 0 || total != uint64(written) || !ordered {
		ok = false
		t.Errorf("through %s: %d lines written, total %d, %d missing, %d doubled, partial %v, newest first %v",
			name, written, total, missing, doubled, partial, ordered)
	}
	for _, p := range paths {
		code, b := fleetGet(t, base+p)
		if code != http.StatusOK {
			ok = false
			t.Errorf("through %s: %s: %d %s", name, p, code, b)
			continue
		}
		if part, miss := fleetPartial(t, b); part {
			ok = false
			t.Errorf("through %s: %s says partial, missing %+v", name, p, miss)
		}
		if got := canonicalAnswer(t, b); got != want[p] {
			ok = false
			t.Errorf("through %s: %s differs from the single indexer's answer:\n got %s\nwant %s", name, p, got, want[p])
		}
	}
	if !ok {
		return
	}
	t.Logf("through %s: %d lines, each once, newest first; %d aggregates as the single indexer's (%v)",
		name, written, len(paths), time.Since(began).Round(time.Millisecond))
}

// TestFleet runs a fleet as separate processes: one Kafka-protocol broker
// (kfake) with a 6-partition topic, two agents, three indexers sharing one
// etcd — A1 and A2 in consumer group A, B1 alone in group B, a full
// replica — and a --role query process; and beside them a single
// indexer with its own etcd and group, the reference. Every process takes
// the same bearer token.
//
//  1. Once the lines are indexed (each consumer's lag 0), through each of
//     A1, A2, B1 and the query process every line is found exactly once
//     (exact totals, paged with cursors, newest first), nothing says
//     partial, and histogram, facets and stats equal the reference's.
//  2. A1 is SIGKILLed: at once, through A2 and B1, search is complete.
//  3. B1 is stopped (SIGTERM) before A2 has A1's partitions (the group's
//     session timeout is 30 s), and more lines are written: through A2
//     and the query process answers say partial, naming missing ranges of
//     A1's partitions, until A2 has taken them and filled their older
//     offsets from Kafka; then every line is found once again and the
//     aggregates equal the reference's, and /api/status's fleet lists A2
//     alone.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet of processes")
	}
	bin := buildBinary(t)
	work := t.TempDir()
	for _, d := range []string{"logs-a1", "logs-a2"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tokFile := filepath.Join(work, "tokens")
	if err := os.WriteFile(tokFile, []byte(fleetToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	etcd, err := settings.StartEmbedded(filepath.Join(work, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	topic := kafkatest.UniqueName(t, "fleet")
	k := kafkatest.Start(t, kfake.SeedTopics(6, topic))

	// Lines stamped within the last hour, inside any retention.
	base := time.Now().UTC().Truncate(time.Minute).Add(-time.Hour)
	const perAgent, later = 15000, 1000
	logA1, logA2 := filepath.Join(work, "logs-a1", "app.log"), filepath.Join(work, "logs-a2", "app.log")
	writeFleetLines(t, logA1, base, 0, 0, perAgent)
	writeFleetLines(t, logA2, base, 0, perAgent, perAgent)
	written := 2 * perAgent

	kafka := []string{"--kafka", strings.Join(k.Brokers, ","), "--topic", topic, "--kafka-partitions", "6",
		"--auth-token-file", tokFile, "--http", "127.0.0.1:0"}
	shared := append([]string{"--etcd-endpoints", etcd.Endpoint(), "--etcd-credentials-file", etcd.CredentialsFile()}, kafka...)
	groupA, groupB, groupR := kafkatest.UniqueName(t, "fleetA"), kafkatest.UniqueName(t, "fleetB"), kafkatest.UniqueName(t, "fleetR")

	var mu sync.Mutex
	procs := map[string]*proc{}
	var order []string
	run := func(name string, args ...string) *proc {
		t.Helper()
		p := startBinary(t, bin, work, append([]string{"--data", "data-" + name, "--log-level", "debug"}, args...)...)
		mu.Lock()
		procs[name] = p
		order = append(order, name)
		mu.Unlock()
		return p
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, name := range order {
			procs[name].dumpLog(t, "process "+name)
		}
	})

	ref := run("ref", append([]string{"--role", "indexer", "--host", "idx-ref", "--etcd-listen", "127.0.0.1:0", "--kafka-group", groupR}, kafka...)...)
	a1 := run("a1", append([]string{"--role", "indexer", "--host", "idx-a1", "--kafka-group", groupA}, shared...)...)
	a2 := run("a2", append([]string{"--role", "indexer", "--host", "idx-a2", "--kafka-group", groupA}, shared...)...)
	b1 := run("b1", append([]string{"--role", "indexer", "--host", "idx-b1", "--kafka-group", groupB}, shared...)...)
	query := run("query", append([]string{"--role", "query", "--host", "query"}, shared...)...)
	for _, a := range []string{"a1", "a2"} {
		// Round robin: both agents' lines spread over all 6 partitions.
		run("agent-"+a, append([]string{"--role", "agent", "--host", a, "--collect", "logs-" + a + "/*.log",
			"--scan-interval", "200ms", "--kafka-partitioner", "roundrobin"}, shared...)...)
	}
	started := time.Now()

	// Indexed: the reference counts every line, and each fleet consumer
	// has claims and no lag.
	waitFor := func(what string, within time.Duration, ok func() bool, state ...*string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				if len(state) > 0 {
					t.Fatalf("%s: not within %v; last: %s", what, within, *state[0])
				}
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the reference indexes every line", 90*time.Second, func() bool {
		var p tokenPage
		fleetJSON(t, ref.url+"/api/search?limit=1&track_total=true&q=fleetline", &p)
		return p.Total == uint64(written)
	})
	// Lag 0 on the partitions each holds now, as the fleet section
	// reports them (a consumer's own status keeps partitions it held
	// before a rebalance too).
	lagState := ""
	waitFor("every fleet indexer has lag 0", 60*time.Second, func() bool {
		st := fleetStatusOf(t, query.url)
		if st.Fleet == nil {
			lagState = "no fleet section in the query process's /api/status"
			return false
		}
		held := map[string]map[string]bool{}
		var b strings.Builder
		zero := true
		for _, m := range st.indexers() {
			if held[m.Group] == nil {
				held[m.Group] = map[string]bool{}
			}
			for _, part := range m.Assigned {
				held[m.Group][part] = true
				if lag, ok := m.Lag[part]; !ok || lag != 0 {
					zero = false
				}
			}
			fmt.Fprintf(&b, "%s (group %s): assigned %v, lag %v; ", m.Host, m.Group, m.Assigned, m.Lag)
		}
		lagState = b.String()
		return zero && len(held[groupA]) == 6 && len(held[groupB]) == 6
	}, &lagState)
	// Lag 0 means read; searchable comes a moment later.
	totals := ""
	waitFor("every line searchable through every fleet process", 60*time.Second, func() bool {
		var b strings.Builder
		all := true
		for _, c := range []struct {
			name string
			p    *proc
		}{{"A1", a1}, {"A2", a2}, {"B1", b1}, {"query", query}} {
			var page tokenPage
			fleetJSON(t, c.p.url+"/api/search?limit=1&track_total=true&q=fleetline", &page)
			fmt.Fprintf(&b, "%s %d; ", c.name, page.Total)
			all = all && page.Total == uint64(written)
		}
		totals = b.String() + fmt.Sprintf("want %d each", written)
		return all
	}, &totals)
	t.Logf("%d lines indexed by the fleet and the reference %v after the last start", written, time.Since(started).Round(time.Millisecond))

	paths := fleetAggregates(base)
	want := referenceAnswers(t, ref.url, paths)
	for _, c := range []struct {
		name string
		p    *proc
	}{{"A1", a1}, {"A2", a2}, {"B1", b1}, {"query", query}} {
		checkFleetComplete(t, c.name, c.p.url, written, want, paths)
	}
	checkFleetExportAndContext(t, "query", query.url, written)

	// The fleet section: the three indexers, each group holding all 6
	// partitions; A1's partitions are what A2 must take over.
	st := fleetStatusOf(t, query.url)
	if st.Fleet == nil {
		t.Fatal("/api/status has no fleet section")
	}
	hosts := map[string]fleetMember{}
	for _, m := range st.indexers() {
		hosts[m.Host] = m
	}
	if len(hosts) != 3 || hosts["idx-a1"].ID == "" || hosts["idx-a2"].ID == "" || hosts["idx-b1"].ID == "" {
		t.Errorf("fleet indexers %+v, want idx-a1, idx-a2 and idx-b1", st.Fleet.Indexers)
	}
	if !st.Fleet.Complete || len(st.Fleet.Missing) > 0 {
		t.Errorf("fleet status: complete %v, missing %+v", st.Fleet.Complete, st.Fleet.Missing)
	}
	a1Parts := hosts["idx-a1"].Assigned
	groupAParts := append(slices.Clone(a1Parts), hosts["idx-a2"].Assigned...)
	slices.Sort(groupAParts)
	if len(a1Parts) == 0 || len(slices.Compact(groupAParts)) != 6 || len(hosts["idx-b1"].Assigned) != 6 {
		t.Errorf("assigned partitions: A1 %v, A2 %v, B1 %v; want group A's two to hold the 6 between them and B1 all 6",
			a1Parts, hosts["idx-a2"].Assigned, hosts["idx-b1"].Assigned)
	}
	t.Logf("A1 holds %v", a1Parts)
	if t.Failed() {
		t.FailNow()
	}
	checkFleetAlert(t, query.url, written)

	// 2. A1 dies; B1 holds every partition.
	if err := a1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a1.done
	killed := time.Now()
	for _, c := range []struct {
		name string
		p    *proc
	}{{"A2", a2}, {"B1", b1}} {
		seen, total, partial, _ := fleetTokens(t, c.p.url, "fleetline")
		missing, doubled := countTokens(t, seen, written)
		if partial || missing > 0 || doubled > 0 || total != uint64(written) {
			t.Errorf("through %s %v after A1's kill: total %d of %d, %d missing, %d doubled, partial %v",
				c.name, time.Since(killed).Round(time.Millisecond), total, written, missing, doubled, partial)
		} else {
			t.Logf("through %s %v after A1's kill: complete", c.name, time.Since(killed).Round(time.Millisecond))
		}
	}

	// 3. B1 stops too, before A2 has A1's partitions; more lines come.
	if since := time.Since(killed); since > 25*time.Second {
		t.Logf("warning: B1 stops %v after A1's kill; A2 may have A1's partitions already", since)
	}
	if err := b1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	b1Exit := make(chan time.Duration, 1)
	go func() {
		err := <-b1.done
		b1.done <- err // for the check below
		b1Exit <- time.Since(stopped)
	}()
	writeFleetLines(t, logA1, base, perAgent, written, later)
	writeFleetLines(t, logA2, base, perAgent, written+later, later)
	written += 2 * later

	type watch struct {
		partialAt, completeAt time.Duration
		missing               []fleetMissing
	}
	watched := map[string]*watch{"A2": {}, "query": {}}
	deadline := time.Now().Add(150 * time.Second)
	for {
		done := true
		for name, p := range map[string]*proc{"A2": a2, "query": query} {
			w := watched[name]
			if w.completeAt > 0 {
				continue
			}
			done = false
			code, b := fleetGet(t, p.url+"/api/search?limit=1&track_total=true&q=fleetline")
			if code != http.StatusOK {
				t.Fatalf("through %s: %d %s", name, code, b)
			}
			var page tokenPage
			if err := json.Unmarshal(b, &page); err != nil {
				t.Fatal(err)
			}
			partial, missing := fleetPartial(t, b)
			switch {
			case partial && w.partialAt == 0:
				w.partialAt, w.missing = time.Since(killed), missing
			case !partial && page.Total == uint64(written) && w.partialAt > 0:
				w.completeAt = time.Since(killed)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for name, w := range watched {
				t.Errorf("through %s: partial seen from %v after A1's kill (0: never), missing %+v; complete again from %v (0: not yet)",
					name, w.partialAt.Round(time.Millisecond), w.missing, w.completeAt.Round(time.Millisecond))
			}
			t.Fatalf("not partial and then complete again through A2 and query within %v of A1's kill", time.Since(killed).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, w := range watched {
		t.Logf("through %s: partial from %v after A1's kill (missing %+v), complete again from %v", name, w.partialAt.Round(time.Millisecond), w.missing, w.completeAt.Round(time.Millisecond))
		if len(w.missing) == 0 {
			t.Errorf("through %s: partial with no missing ranges named", name)
		}
		for _, m := range w.missing {
			if !slices.Contains(a1Parts, m.Partition) || m.From >= m.To {
				t.Errorf("through %s: missing %+v, want a range of one of A1's partitions %v", name, m, a1Parts)
			}
		}
	}
	select {
	case took := <-b1Exit:
		if err := <-b1.done; err != nil {
			t.Errorf("B1's exit after SIGTERM: %v", err)
		}
		t.Logf("B1 exited %v after SIGTERM", took.Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Errorf("B1 did not exit within 60s of SIGTERM")
	}

	// The reference has the later lines too; then A2 alone answers for
	// the whole topic as the reference does.
	waitFor("the reference indexes the later lines", 60*time.Second, func() bool {
		var p tokenPage
		fleetJSON(t, ref.url+"/api/search?limit=1&track_total=true&q=fleetline", &p)
		return p.Total == uint64(written)
	})
	want = referenceAnswers(t, ref.url, paths)
	checkFleetComplete(t, "A2 alone", a2.url, written, want, paths)
	checkFleetComplete(t, "query with A2 alone", query.url, written, want, paths)

	// A1's lease has lapsed and B1 has left: the fleet is A2 alone, and
	// it holds all 6 partitions.
	waitFor("the fleet lists A2 alone", 30*time.Second, func() bool {
		st := fleetStatusOf(t, query.url)
		live := st.indexers()
		return len(live) == 1 && live[0].Host == "idx-a2" && len(live[0].Assigned) == 6 && st.Fleet.Complete
	})
	// /metrics says the same.
	code, metrics := fleetGet(t, query.url+"/metrics")
	for _, line := range []string{"logbox_fleet_indexers 1", "logbox_fleet_partitions_missing 0"} {
		if code != http.StatusOK || !slices.Contains(strings.Split(string(metrics), "\n"), line) {
			t.Errorf("/metrics of the query process (%d) has no line %q", code, line)
		}
	}
}

// checkFleetExportAndContext checks through the process at base that the
// export streams every line once and that the lines around a hit are
// found on whichever indexer holds it.
func checkFleetExportAndContext(t *testing.T, name, base string, written int) {
	t.Helper()
	code, b := fleetGet(t, base+"/api/export?format=ndjson&q=fleetline")
	if code != http.StatusOK {
		t.Fatalf("through %s: export: %d %.300s", name, code, b)
	}
	seen := map[int]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := crashTok.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("through %s: export line without token: %.200q", name, l)
		}
		n, _ := strconv.Atoi(m[1])
		seen[n]++
	}
	if missing, doubled := countTokens(t, seen, written); missing > 0 || doubled > 0 {
		t.Errorf("through %s: export has %d missing, %d doubled of %d", name, missing, doubled, written)
	}
	var page tokenPage
	fleetJSON(t, base+"/api/search?limit=5&q=fleetline", &page)
	for _, h := range page.Hits {
		var ctxRes struct {
			Hits []struct {
				ID     string `json:"id"`
				Anchor bool   `json:"anchor"`
			} `json:"hits"`
		}
		fleetJSON(t, base+"/api/context?before=2&after=2&id="+url.QueryEscape(h.ID), &ctxRes)
		found := false
		for _, c := range ctxRes.Hits {
			found = found || c.Anchor && c.ID == h.ID
		}
		if !found || len(ctxRes.Hits) < 2 {
			t.Errorf("through %s: context of %s: %d lines, anchor found %v", name, h.ID, len(ctxRes.Hits), found)
		}
	}
}

// checkFleetAlert saves an alert rule counting every line and waits for
// its value: the whole fleet's count, whichever indexer evaluates it (a
// group-A indexer holds part of the lines; it asks the others with its
// own token, as no caller's is there to pass on).
func checkFleetAlert(t *testing.T, base string, written int) {
	t.Helper()
	rule := `{"name":"fleetcount","query":"fleetline | stats count() as n","every":"1s","window":"24h","condition":{"op":">","value":0}}`
	req, err := http.NewRequest("POST", base+"/api/alerts", strings.NewReader(rule))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := fleetClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/alerts: %d %s", resp.StatusCode, b)
	}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		var rs struct {
			State string   `json:"state"`
			Value *float64 `json:"value"`
			Error string   `json:"error"`
		}
		fleetJSON(t, base+"/api/alerts/fleetcount", &rs)
		last = fmt.Sprintf("state %q value <none> error %q", rs.State, rs.Error)
		if rs.Value != nil {
			last = fmt.Sprintf("state %q value %v error %q", rs.State, *rs.Value, rs.Error)
		}
		if rs.Value != nil && *rs.Value == float64(written) && rs.State == "firing" {
			t.Logf("alert rule over the fleet: %s", last)
			return
		}
	}
	t.Errorf("alert rule counting the fleet's %d lines: %s after 30s", written, last)
}
