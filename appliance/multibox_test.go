package appliance

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/hostnet"
	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/indexwriter"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/appliance/settings"
)

// TestManyBoxes runs a small fleet in one process: one Kafka-protocol
// broker, one etcd no logbox owns, two agents ("web1", "web2") that each
// collect their own box's directory, and one indexer that serves search.
// Every line reaches the indexer exactly once, stamped with its host; a
// source limited to "hosts":["web2"] is collected by web2 only; every role
// answers the health and status endpoints; an agent refuses search clearly.
//
// Both "boxes" share this machine's filesystem, so each agent's allowed
// roots stand in for its box: a box sees only its own directory. The
// host-limited source names common/*.log, whose entries are symlinks into
// both box directories; each agent may open only the one into its own box,
// exactly as if common/app.log existed on both boxes with different
// content. If web1 ignored "hosts", its copy's lines would be indexed.
func TestManyBoxes(t *testing.T) {
	began := time.Now()
	root := t.TempDir()
	boxes, common := filepath.Join(root, "boxes"), filepath.Join(root, "common")
	box := map[string]string{"web1": filepath.Join(boxes, "web1"), "web2": filepath.Join(boxes, "web2")}
	for _, d := range []string{common, filepath.Join(box["web1"], "shared"), filepath.Join(box["web2"], "shared")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	etcd, err := settings.StartEmbedded(filepath.Join(root, "etcd"), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close) // after the appliances' cleanups, which run first
	k := kafkatest.Start(t)
	topic, group := kafkatest.UniqueName(t, "logbox"), kafkatest.UniqueName(t, "indexers")

	cfgFor := func(name, role string, allow ...string) Config {
		cfg := testConfig(t, filepath.Join(root, "data-"+name), allow...)
		cfg.Role = role
		cfg.Host = name
		cfg.EtcdEndpoints = []string{etcd.Endpoint()}
		cfg.EtcdCredentialsFile = etcd.CredentialsFile()
		cfg.Kafka = k.Brokers
		cfg.Topic = topic
		cfg.KafkaGroup = group
		return cfg
	}

	// Lines written before anything starts are read from the start.
	want1, want2 := map[string]bool{}, map[string]bool{}
	const n1, n2 = 700, 400
	appendLines(t, filepath.Join(box["web1"], "app.log"), "wa", 0, n1-200, want1)
	appendLines(t, filepath.Join(box["web2"], "app.log"), "wb", 0, n2-100, want2)

	// The shared etcd requires its credential: a process without it is
	// refused at start, with the flag to pass named.
	noCreds := cfgFor("web1", RoleAgent, box["web1"])
	noCreds.EtcdCredentialsFile = ""
	if err := runUntilReady(t, noCreds); err == nil || !strings.Contains(err.Error(), "--etcd-credentials-file") {
		t.Fatalf("agent without etcd credentials: %v, want refused naming --etcd-credentials-file", err)
	}

	indexer := start(t, cfgFor("indexer", RoleIndexer, root))
	agents := map[string]*running{}
	for _, name := range []string{"web1", "web2"} {
		cfg := cfgFor(name, RoleAgent, box[name], common)
		cfg.Collect = []string{filepath.Join(box[name], "*.log")}
		agents[name] = start(t, cfg)
	}
	// Lines appended while running follow.
	appendLines(t, filepath.Join(box["web1"], "app.log"), "wa", n1-200, 200, want1)
	appendLines(t, filepath.Join(box["web2"], "app.log"), "wb", n2-100, 100, want2)

	// Every role answers health and status; an agent has no index.
	for name, r := range map[string]*running{"indexer": indexer, "web1": agents["web1"], "web2": agents["web2"]} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code := r.call("GET", p, nil, nil); code != 200 {
				t.Fatalf("%s %s: %d", name, p, code)
			}
		}
		var st Status
		if code := r.call("GET", "/api/status", nil, &st); code != 200 || st.Host != name || !st.Etcd.Healthy || st.Mode != "kafka" {
			t.Fatalf("%s /api/status: %d %+v", name, code, st)
		}
		switch name {
		case "indexer":
			if st.Role != RoleIndexer || st.Index == nil || st.Consumer == nil || st.Producer != nil {
				t.Fatalf("indexer status: %+v", st)
			}
		default:
			if st.Role != RoleAgent || st.Index != nil || st.Consumer != nil || st.Producer == nil {
				t.Fatalf("%s status: %+v", name, st)
			}
			var e struct{ Error string }
			if code := r.call("GET", "/api/search?q=e2e", nil, &e); code != 501 || !strings.Contains(e.Error, "indexer") {
				t.Fatalf("%s /api/search: %d %q, want 501 pointing to an indexer", name, code, e.Error)
			}
		}
	}

	indexer.waitTotal("host:web1", n1)
	indexer.waitTotal("host:web2", n2)
	indexer.checkExactlyOnce("host:web1", want1)
	indexer.checkExactlyOnce("host:web2", want2)
	if res := indexer.search("+e2e +tokwa000123"); res.Total != 1 || res.Hits[0].Host != "web1" || res.Hits[0].Source != filepath.Join(box["web1"], "app.log") {
		t.Fatalf("web1 line: %+v", res)
	}

	// A source limited to web2, created through the indexer, over a path
	// both boxes have.
	shared1, shared2 := filepath.Join(box["web1"], "shared", "app.log"), filepath.Join(box["web2"], "shared", "app.log")
	never := map[string]bool{}
	appendLines(t, shared1, "sa", 0, 50, never)
	appendLines(t, shared2, "sb", 0, 80, want2)
	for name, target := range map[string]string{"web1": shared1, "web2": shared2} {
		if err := os.Symlink(target, filepath.Join(common, name+".log")); err != nil {
			t.Fatal(err)
		}
	}
	src := map[string]any{"name": "shared", "paths": []string{filepath.Join(common, "*.log")}, "hosts": []string{"web2"}, "fields": map[string]string{"svc": "shared"}}
	if code := indexer.call("POST", "/api/sources", src, nil); code != 201 {
		t.Fatalf("create host-limited source: %d", code)
	}
	indexer.waitTotal("fields.svc:shared", 80)
	// web1 follows only its own file, and more of its lines still arrive
	// after the source exists; then nothing of its shared copy is there.
	appendLines(t, filepath.Join(box["web1"], "app.log"), "wa", n1, 30, want1)
	appendLines(t, shared1, "sa", 50, 10, never)
	appendLines(t, shared2, "sb", 80, 10, want2)
	indexer.waitTotal("host:web1", len(want1))
	indexer.waitTotal("host:web2", len(want2))
	var st Status
	agents["web1"].call("GET", "/api/status", nil, &st)
	for _, f := range st.Files {
		if f.Path != filepath.Join(box["web1"], "app.log") {
			t.Fatalf("web1 follows %s, want only its app.log", f.Path)
		}
	}
	indexer.checkExactlyOnce("host:web1", want1)
	indexer.checkExactlyOnce("host:web2", want2)
	all := map[string]bool{}
	for _, w := range []map[string]bool{want1, want2} {
		for k := range w {
			all[k] = true
		}
	}
	indexer.checkExactlyOnce("e2e", all) // no line of web1's shared copy (toksa…)
	if res := indexer.search("fields.svc:shared"); res.Total != 90 || res.Hits[0].Host != "web2" || res.Hits[0].Source != filepath.Join(common, "web2.log") {
		t.Fatalf("shared source: %d hits, first %+v", res.Total, res.Hits[:min(1, len(res.Hits))])
	}

	if d := time.Since(began); d > 60*time.Second {
		t.Fatalf("took %v, bound is 60s", d)
	}
	t.Logf("fleet checked in %v", time.Since(began).Round(time.Millisecond))
}

// runUntilReady runs an appliance until it is ready (then stops it and
// returns nil) or until Run fails (returning its error).
func runUntilReady(t *testing.T, cfg Config) error {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
		cancel()
		<-done
		return nil
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("appliance neither ready nor failed after 60s")
		return nil
	}
}

// TestHostnetIndexed feeds hostnet samples (from a fixture proc tree whose
// eth0 drops packets between samples) into a real index, as the direct-mode
// wiring does, and finds them by field, by level and next to nothing else.
func TestHostnetIndexed(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "proc")
	if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dev", "tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("hostnet", "testdata", "proc", "net", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "net", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ix, err := index.Open(index.Config{Dir: filepath.Join(t.TempDir(), "index")}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := hostnet.New(hostnet.Config{Host: "web1", ProcRoot: proc}, indexwriter.New(indexwriter.Config{}, ix, quiet), quiet)
	t0 := time.Now().Add(-time.Minute)
	for i, dev := range []string{"", "  eth0: 9871244567 8123556   12   40    2     1          0      4521 1234568890 3456799    0    5    0     0       0          0\n"} {
		if dev != "" {
			b, _ := os.ReadFile(filepath.Join(proc, "net", "dev"))
			lines := strings.SplitAfter(string(b), "\n")
			if err := os.WriteFile(filepath.Join(proc, "net", "dev"), []byte(lines[0]+lines[1]+dev), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := s.Sample(t0.Add(time.Duration(i) * 10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.Index(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	f := func(q string, want uint64) []pipeline.Hit {
		t.Helper()
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: q, Limit: 100})
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		if res.Total != want {
			t.Fatalf("%q: %d hits, want %d: %+v", q, res.Total, want, res.Hits)
		}
		return res.Hits
	}
	f("source_name:hostnet", 6)                      // 3 + 1 interfaces, 2 tcp
	f("fields.iface:eth0", 2)                        // one per sample
	h := f("+fields.delta_rx_drop:3 +level:WARN", 1) // the drop is searchable
	if h[0].Host != "web1" || h[0].Source != hostnet.SourceDev || h[0].Fields["rx_drop"] != "40" {
		t.Fatalf("drop hit: %+v", h[0])
	}
	f("+source:\"hostnet:/proc/net/tcp\" +fields.tcp_time_wait:3", 2)
	f("tcp_established", 2) // the line is searchable as words, too
	// Offsets come back exact (microseconds fit a float64), so IDs and
	// offsets agree.
	for _, h := range f("source_name:hostnet", 6) {
		if want := pipeline.RecordID(h.Host, h.FileID, h.Offset); h.ID != want {
			t.Fatalf("hit id %s, but its offset gives %s", h.ID, want)
		}
	}
}
