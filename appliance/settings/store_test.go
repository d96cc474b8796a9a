package settings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

func startEtcd(t *testing.T) *Embedded {
	t.Helper()
	e, err := StartEmbedded(filepath.Join(t.TempDir(), "etcd"), "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func onlyUnder(root string) func(string) error {
	return func(p string) error {
		if !strings.HasPrefix(p, root+"/") {
			return fmt.Errorf("%q is outside the allowed roots", p)
		}
		return nil
	}
}

func TestStoreCRUDAndValidation(t *testing.T) {
	e := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := NewStore(e.Client(), onlyUnder("/var/log"), slog.New(slog.NewTextHandler(io.Discard, nil)))

	good := pipeline.Source{Name: "nginx", Paths: []string{"/var/log/nginx/*.log"}, Fields: map[string]string{"app": "web"}}
	if err := s.Create(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, good); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, "nginx")
	if err != nil || got.Paths[0] != good.Paths[0] || got.Fields["app"] != "web" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := s.Update(ctx, pipeline.Source{Name: "missing", Paths: []string{"/var/log/x"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}

	bad := []struct {
		src   pipeline.Source
		field string
	}{
		{pipeline.Source{Name: "", Paths: []string{"/var/log/a"}}, "name"},
		{pipeline.Source{Name: "Bad Name", Paths: []string{"/var/log/a"}}, "name"},
		{pipeline.Source{Name: "a"}, "paths"},
		{pipeline.Source{Name: "a", Paths: []string{"relative/*.log"}}, "paths[0]"},
		{pipeline.Source{Name: "a", Paths: []string{"/var/log/../../etc/shadow"}}, "paths[0]"},
		{pipeline.Source{Name: "a", Paths: []string{"/etc/*"}}, "paths[0]"},
		{pipeline.Source{Name: "a", Paths: []string{"/var/log/[x"}}, "paths[0]"},
		{pipeline.Source{Name: "a", Paths: []string{"/var/log/a"}, Topic: "bad topic"}, "topic"},
		{pipeline.Source{Name: "a", Paths: []string{"/var/log/a"}, Fields: map[string]string{"a b": "x"}}, "fields.a b"},
	}
	for _, c := range bad {
		err := s.Put(ctx, c.src)
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Put(%+v) = %v, want error on field %q", c.src, err, c.field)
		}
	}
	if _, err := s.Decode([]byte(`{"name":"a","paths":["/var/log/a"],"colour":"red"}`)); err == nil {
		t.Error("unknown field accepted")
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list after refused writes: %v %v (want only nginx)", list, err)
	}
	if err := s.Delete(ctx, "nginx"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "nginx"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

// watchStates runs s.Watch for host until ctx ends; the function it
// returns waits for the watch's next State and fails the test if ctx ends
// first.
func watchStates(t *testing.T, ctx context.Context, s *Store, host string) func() State {
	states := make(chan State, 64)
	go s.Watch(ctx, host, func(st State) { states <- st })
	return func() State {
		t.Helper()
		select {
		case st := <-states:
			return st
		case <-ctx.Done():
			t.Fatal("no state from watch")
		}
		return State{}
	}
}

func TestWatchAppliesEtcdWritesAndKeepsLastValid(t *testing.T) {
	e := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := NewStore(e.Client(), onlyUnder("/var/log"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	next := watchStates(t, ctx, s, "box1")
	if st := next(); len(st.Sources) != 0 {
		t.Fatalf("initial state %+v", st)
	}
	// A raw etcd write, as etcdctl put would do.
	cli := e.Client()
	if _, err := cli.Put(ctx, SourcesPrefix+"app", `{"name":"app","paths":["/var/log/app.log"]}`); err != nil {
		t.Fatal(err)
	}
	st := next()
	if len(st.Sources) != 1 || st.Sources[0].Paths[0] != "/var/log/app.log" {
		t.Fatalf("after put: %+v", st)
	}
	// An invalid replacement changes nothing and is reported.
	if _, err := cli.Put(ctx, SourcesPrefix+"app", `{"name":"app","paths":["/etc/passwd"]}`); err != nil {
		t.Fatal(err)
	}
	st = next()
	if len(st.Sources) != 1 || st.Sources[0].Paths[0] != "/var/log/app.log" || !strings.Contains(st.Invalid["app"], "outside") {
		t.Fatalf("after invalid put: %+v", st)
	}
	if _, err := cli.Delete(ctx, SourcesPrefix+"app"); err != nil {
		t.Fatal(err)
	}
	if st = next(); len(st.Sources) != 0 || len(st.Invalid) != 0 {
		t.Fatalf("after delete: %+v", st)
	}
}

func TestEmbeddedDataSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(dir, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewStore(e.Client(), nil, log).Put(ctx, pipeline.Source{Name: "a", Paths: []string{"/x/a"}}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	// Restart on the same dir: the peer port differs, the data is there.
	e, err = StartEmbedded(dir, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := NewStore(e.Client(), nil, log).Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// The client listener serves other etcd clients over TCP too, with the credential.
	cli, err := Dial([]string{e.Endpoint()}, e.CredentialsFile())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := NewStore(cli, nil, log).Get(ctx, "a"); err != nil {
		t.Fatalf("over TCP: %v", err)
	}
}

// TestDecodeStrict: a source entry is one JSON object with each key once;
// encoding/json alone accepts trailing data and keeps the last of two
// equal keys.
func TestDecodeStrict(t *testing.T) {
	s := NewStore(nil, onlyUnder("/var/log"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	const ok = `"name":"a","paths":["/var/log/a"]`
	cases := []struct {
		body   string
		field  string // "" = accepted
		errHas string
	}{
		{`{` + ok + `}`, "", ""},
		{" \n{" + ok + "}\n\t ", "", ""},
		{`{` + ok + `,"fields":{"t":"1","T":"2"}}`, "", ""}, // map keys: exact
		{`{` + ok + `}xyz`, "body", "data after the source object, which ends at byte 35"},
		{`{` + ok + `}{` + ok + `}`, "body", "data after the source object"},
		{`{` + ok + `} 1`, "body", "data after the source object"},
		{`{` + ok + `,"name":"b"}`, "name", "given twice"},
		{`{` + ok + `,"NAME":"a"}`, "NAME", "given twice"}, // encoding/json matches fields in any case
		{`{` + ok + `,"paths":["/var/log/b"]}`, "paths", "given twice"},
		{`{` + ok + `,"fields":{"t":"1","t":"2"}}`, "fields.t", "given twice"},
		{`{` + ok + `,"multiline":{"pattern":"x","PATTERN":"y"}}`, "multiline.PATTERN", "given twice"},
		{`{` + ok + `,"hosts":["a","a"]}`, "", ""}, // arrays may repeat values
		{`[]`, "body", "one JSON object"},
		{`"x"`, "body", "one JSON object"},
		{``, "body", "invalid source JSON"},
		{`{` + ok, "body", "invalid source JSON"},
		{`{"name":"a","paths":[` + strings.Repeat("[", 5000) + `]}`, "body", "invalid source JSON"},
	}
	for _, c := range cases {
		_, err := s.Decode([]byte(c.body))
		var fe *pipeline.FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%.60q: refused: %v", c.body, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.errHas)):
			t.Errorf("%.60q: %v; want a FieldError on %s mentioning %q", c.body, err, c.field, c.errHas)
		}
	}
}

// TestWatchRefusesMalformedEntries: entries written to etcd directly are
// held to what the API is: trailing data, a duplicate key and oversized
// sources are reported and change nothing.
func TestWatchRefusesMalformedEntries(t *testing.T) {
	e := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewStore(e.Client(), onlyUnder("/var/log"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	states := make(chan State, 64)
	go s.Watch(ctx, "box1", func(st State) { states <- st })
	var last State
	waitFor := func(what string, cond func(State) bool) {
		t.Helper()
		for {
			select {
			case last = <-states:
				if cond(last) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s: last state %+v", what, last)
			}
		}
	}
	put := func(key, v string) {
		t.Helper()
		if _, err := e.Client().Put(ctx, SourcesPrefix+key, v); err != nil {
			t.Fatal(err)
		}
	}
	const good = `{"name":"app","paths":["/var/log/app.log"]}`
	put("app", good)
	waitFor("valid entry", func(st State) bool { return len(st.Sources) == 1 })
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	for _, c := range []struct{ value, errHas string }{
		{`{"name":"app","paths":["/var/log/other.log"]}xyz`, "body: data after the source object"},
		{`{"name":"app","paths":["/var/log/other.log"]}{"name":"app","paths":["/var/log/x"]}`, "body: data after the source object"},
		{`{"name":"app","paths":["/var/log/app.log"],"paths":["/var/log/other.log"]}`, "paths: given twice"},
		{`{"name":"app","paths":[` + many(20000, func(i int) string { return fmt.Sprintf(`"/var/log/%d"`, i) }) + `]}`, "paths: 20000 globs"},
		{`{"name":"app","paths":["/var/log/a"],"fields":{` + many(5000, func(i int) string { return fmt.Sprintf(`"f%d":"v"`, i) }) + `}}`, "fields: 5000 fields"},
	} {
		put("app", c.value)
		waitFor(c.errHas, func(st State) bool { return strings.Contains(st.Invalid["app"], c.errHas) })
		if len(last.Sources) != 1 || last.Sources[0].Paths[0] != "/var/log/app.log" || len(last.Sources[0].Paths) != 1 {
			t.Errorf("%s: the refused entry changed the source: %+v", c.errHas, last.Sources)
		}
	}
	put("app", good)
	waitFor("fixed entry", func(st State) bool { return len(st.Invalid) == 0 && len(st.Sources) == 1 })
}

// TestWatchChangeCostsWhatChanged: a change to one of N sources validates
// that one source, not all N. Validations are counted through the path
// policy, which sees every path of every source a watch validates.
func TestWatchChangeCostsWhatChanged(t *testing.T) {
	e := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var checked atomic.Int64
	under := onlyUnder("/var/log")
	s := NewStore(e.Client(), func(p string) error { checked.Add(1); return under(p) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 300
	put := func(i int, path string) {
		t.Helper()
		name := fmt.Sprintf("s%04d", i)
		if _, err := e.Client().Put(ctx, SourcesPrefix+name, fmt.Sprintf(`{"name":%q,"paths":[%q]}`, name, path)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		put(i, fmt.Sprintf("/var/log/s%d.log", i))
	}
	next := watchStates(t, ctx, s, "box1")
	if st := next(); len(st.Sources) != n || checked.Load() != n {
		t.Fatalf("initial state: %d sources, %d validations; want %d of each", len(st.Sources), checked.Load(), n)
	}
	step := func(what string, change func(), wantSources int) {
		t.Helper()
		checked.Store(0)
		change()
		st := next()
		if len(st.Sources) != wantSources {
			t.Fatalf("%s: %d sources, want %d", what, len(st.Sources), wantSources)
		}
		if !slices.IsSortedFunc(st.Sources, func(a, b pipeline.Source) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("%s: sources not sorted by name", what)
		}
		if got := checked.Load(); got > 1 {
			t.Errorf("%s: %d sources validated for a change to one", what, got)
		}
	}
	step("add", func() { put(n, "/var/log/new.log") }, n+1)
	step("update", func() { put(7, "/var/log/seven.log") }, n+1)
	step("invalid update", func() { put(8, "/etc/passwd") }, n+1)
	step("delete", func() {
		if _, err := e.Client().Delete(ctx, SourcesPrefix+"s0009"); err != nil {
			t.Fatal(err)
		}
	}, n)
}

// TestSourceSetMatchesFullRecompute: the incremental set gives, after
// every change, exactly what recomputing every entry gives (the way Watch
// worked before: decode all, keep the last valid version of refused ones,
// sort by name).
func TestSourceSetMatchesFullRecompute(t *testing.T) {
	s := NewStore(nil, onlyUnder("/var/log"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	const host = "box1"
	full := func(raw map[string][]byte, prev map[string]pipeline.Source) State {
		st := State{Invalid: map[string]string{}}
		for name, b := range raw {
			src, err := s.decode(b, false)
			if err == nil && src.RunsOn(host) {
				err = s.Validate(&src)
			}
			if err == nil && src.Name != name {
				err = &pipeline.FieldError{Field: "name", Msg: fmt.Sprintf("%q does not match its key %q", src.Name, SourcesPrefix+name)}
			}
			if err != nil {
				st.Invalid[name] = err.Error()
				if old, ok := prev[name]; ok {
					st.Sources = append(st.Sources, old)
				}
				continue
			}
			st.Sources = append(st.Sources, src)
		}
		slices.SortFunc(st.Sources, func(a, b pipeline.Source) int { return strings.Compare(a.Name, b.Name) })
		return st
	}
	values := func(name string) []string {
		return []string{
			fmt.Sprintf(`{"name":%q,"paths":["/var/log/%s.log"]}`, name, name),
			fmt.Sprintf(`{"name":%q,"paths":["/var/log/%s/*.log"],"fields":{"v":"2"}}`, name, name),
			fmt.Sprintf(`{"name":%q,"paths":["/etc/%s"]}`, name, name),                     // outside the roots
			fmt.Sprintf(`{"name":%q,"paths":["/etc/%s"],"hosts":["box2"]}`, name, name),    // not this box's to judge
			fmt.Sprintf(`{"name":%q,"paths":["/var/log/a"],"paths":["/var/log/b"]}`, name), // duplicate key
			fmt.Sprintf(`{"name":%q,"paths":["/var/log/a"]}x`, name),                       // trailing data
			`{"name":"other","paths":["/var/log/a"]}`,                                      // name mismatch
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	set := newSourceSet(s, host)
	raw := map[string][]byte{}
	prev := map[string]pipeline.Source{}
	for step := range 3000 {
		name := fmt.Sprintf("k%d", rng.IntN(12))
		if rng.IntN(5) == 0 {
			delete(raw, name)
			delete(prev, name)
			set.remove(name)
		} else {
			vs := values(name)
			b := []byte(vs[rng.IntN(len(vs))])
			raw[name] = b
			set.put(name, b)
		}
		want := full(raw, prev)
		clear(prev)
		for _, src := range want.Sources {
			prev[src.Name] = src
		}
		got := set.state()
		if !reflect.DeepEqual(got.Sources, want.Sources) && (len(got.Sources) > 0 || len(want.Sources) > 0) {
			t.Fatalf("step %d: sources\n got %+v\nwant %+v", step, got.Sources, want.Sources)
		}
		if !maps.Equal(got.Invalid, want.Invalid) {
			t.Fatalf("step %d: invalid\n got %v\nwant %v", step, got.Invalid, want.Invalid)
		}
	}
}
