package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Decode is strict: every way a rule's JSON can be wrong is a FieldError
// naming where.
func TestAlertDecodeStrict(t *testing.T) {
	s := NewAlertStore(nil)
	// At most 32 annotations of 1 KiB each pass Validate, and are more
	// than a rule may hold in all.
	var ann []string
	for i := range pipeline.MaxAlertLabels {
		ann = append(ann, fmt.Sprintf(`"a%d":"%s"`, i, strings.Repeat("d", pipeline.MaxAlertLabelBytes)))
	}
	cases := []struct {
		body  string
		field string // "" for valid
		has   string // in the message
	}{
		{`{"name":"a","query":"q"}`, "", ""},
		{`{"name":"a","query":"q","every":null,"condition":null,"notify":null,"labels":null,"created":null}`, "", ""},
		{`{"name":"a","query":"q","condition":{"op":"<","value":2.5},"notify":[{"webhook":"http://h/x"},{"slack":"https://h/y"}],"labels":{"team":"web"},"annotations":{"summary":"s"},"new_patterns":false,"disabled":true,"created":"2026-01-02T03:04:05Z"}`, "", ""},
		// Shape.
		{`[]`, "body", "one JSON object"},
		{`{`, "body", "invalid alert rule JSON"},
		{`{"name":"a","query":"q"} {}`, "body", "data after"},
		{`{"name":"a","query":"q","annotations":{` + strings.Join(ann, ",") + `}}`, "body", "at most 32768"},
		// Keys.
		{`{"name":"a","query":"q","colour":"red"}`, "colour", "unknown key"},
		{`{"name":"a","Query":"q"}`, "Query", "unknown key"},
		{`{"name":"a","query":"q","query":"r"}`, "query", "given twice"},
		{`{"name":"a","query":"q","Name":"a"}`, "Name", "given twice"},
		{`{"name":"a","query":"q","value":5}`, "value", "condition.value"},
		{`{"name":"a","query":"q","state":"ok"}`, "state", "the rule's state"},
		{`{"name":"a","query":"q","instances":[]}`, "instances", "the rule's state"},
		{`{"name":"a","query":"q","condition":{"op":">","threshold":1}}`, "condition.threshold", "unknown key"},
		{`{"name":"a","query":"q","condition":{"Op":">"}}`, "condition.Op", "unknown key"},
		{`{"name":"a","query":"q","condition":{"op":">","op":"<"}}`, "condition.op", "given twice"},
		{`{"name":"a","query":"q","notify":[{"webhook":"http://h/x"},{"email":"a@b"}]}`, "notify[1].email", "unknown key"},
		{`{"name":"a","query":"q","notify":[{"url":"http://h/x"}]}`, "notify[0].url", "unknown key"},
		// Types.
		{`{"name":7,"query":"q"}`, "name", "a JSON number where a string is wanted"},
		{`{"name":"a","query":["q"]}`, "query", "a JSON array where a string is wanted"},
		{`{"name":"a","query":"q","every":60}`, "every", "where a string"},
		{`{"name":"a","query":"q","condition":">"}`, "condition", "a JSON string where a condition (an object) is wanted"},
		{`{"name":"a","query":"q","condition":{"value":"5"}}`, "condition.value", "a JSON string where a number is wanted"},
		{`{"name":"a","query":"q","condition":{"value":1e400}}`, "condition.value", "out of range"},
		{`{"name":"a","query":"q","condition":{"op":1}}`, "condition.op", "where a string"},
		{`{"name":"a","query":"q","new_patterns":"yes"}`, "new_patterns", "where true or false is wanted"},
		{`{"name":"a","query":"q","disabled":1}`, "disabled", "where true or false is wanted"},
		{`{"name":"a","query":"q","notify":{"webhook":"http://h/x"}}`, "notify", "a JSON object where an array is wanted"},
		{`{"name":"a","query":"q","notify":["http://h/x"]}`, "notify[0]", "a JSON string where a notify target (an object) is wanted"},
		{`{"name":"a","query":"q","notify":[null]}`, "notify[0]", "a JSON null where"},
		{`{"name":"a","query":"q","notify":[{"slack":true}]}`, "notify[0].slack", "where a string"},
		{`{"name":"a","query":"q","labels":["team"]}`, "labels", "where an object"},
		{`{"name":"a","query":"q","labels":{"team":1}}`, "labels.team", "a JSON number where a string is wanted"},
		{`{"name":"a","query":"q","annotations":{"x":{}}}`, "annotations.x", "where a string"},
		{`{"name":"a","query":"q","created":5}`, "created", "RFC 3339"},
		{`{"name":"a","query":"q","updated":"yesterday"}`, "updated", "RFC 3339"},
		// Validation after decoding (every path is in pipeline's tests).
		{`{"query":"q"}`, "name", ""},
		{`{"name":"a","query":"q","condition":{"op":"~"}}`, "condition.op", ""},
		{`{"name":"a","query":"q","notify":[{"webhook":"ftp://h/x"}]}`, "notify[0].webhook", "not an http(s) URL"},
		{`{"name":"a","query":"q","every":"0.5s"}`, "every", "below the least"},
	}
	for _, c := range cases {
		_, err := s.Decode([]byte(c.body))
		short := c.body[:min(len(c.body), 90)]
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want valid", short, err)
			}
			continue
		}
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.has) {
			t.Errorf("%s: %v, want a FieldError naming %q saying %q", short, err, c.field, c.has)
		}
	}

	// What a valid rule decodes to, defaults filled in.
	r, err := s.Decode([]byte(`{"name":"a","query":"q","condition":{"value":3},"notify":[{"alertmanager":"http://am:9093"}],"labels":{"team":"web"},"created":"2026-01-02T03:04:05Z"}`))
	want := pipeline.AlertRule{Name: "a", Query: "q", Every: "1m0s", Window: "5m0s", For: "0s",
		Condition: pipeline.AlertCondition{Op: ">", Value: 3}, Notify: []pipeline.AlertTarget{{Alertmanager: "http://am:9093"}},
		Labels: map[string]string{"team": "web"}, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("Decode = %+v, %v\nwant %+v", r, err, want)
	}
	// What the store writes reads back the same.
	b, _ := json.Marshal(r)
	if back, err := s.Decode(b); err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestAlertStoreCRUD(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewAlertStore(cli)
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		t.Helper()
		resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count > 0
	}

	// A state left by a rule deleted with etcdctl does not stick to a new
	// rule of the same name.
	put(pipeline.AlertStatePrefix+"errors", `{"state":"firing"}`)
	r, err := s.Create(ctx, pipeline.AlertRule{Name: "errors", Query: "level:error", Every: "30s"})
	if err != nil || !r.Created.Equal(clock) || !r.Updated.Equal(clock) || r.Window != "5m0s" {
		t.Fatalf("Create = %+v, %v", r, err)
	}
	if exists(pipeline.AlertStatePrefix + "errors") {
		t.Fatal("Create left the old state entry")
	}
	if _, _, err := s.Status(ctx, "errors"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, pipeline.AlertRule{Name: "errors", Query: "other"}); !errors.Is(err, pipeline.ErrAlertExists) {
		t.Fatalf("Create twice: %v, want ErrAlertExists", err)
	}
	if _, err := s.Create(ctx, pipeline.AlertRule{Name: "bad", Query: "q", Condition: pipeline.AlertCondition{Op: "=~"}}); !isField(err, "condition.op") {
		t.Fatalf("Create of an invalid rule: %v", err)
	}
	got, err := s.Get(ctx, "errors")
	if err != nil || got.Every != "30s" || got.Query != "level:error" || !got.Created.Equal(clock) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, pipeline.ErrAlertNotFound) {
		t.Fatalf("Get of a missing rule: %v", err)
	}

	// Put replaces, keeping Created, and leaves the state alone.
	put(pipeline.AlertStatePrefix+"errors", `{"state":"pending","value":3,"instances":[]}`)
	clock = clock.Add(time.Hour)
	r, created, err := s.Put(ctx, pipeline.AlertRule{Name: "errors", Query: "level:error OR level:fatal", Created: time.Unix(0, 0)})
	if err != nil || created || !r.Created.Equal(clock.Add(-time.Hour)) || !r.Updated.Equal(clock) || r.Every != "1m0s" {
		t.Fatalf("Put (replace) = %+v, %v, %v", r, created, err)
	}
	if st, found, err := s.Status(ctx, "errors"); err != nil || !found || st.State != pipeline.AlertPending {
		t.Fatalf("state after Put: %+v %v %v", st, found, err)
	}
	if r, created, err = s.Put(ctx, pipeline.AlertRule{Name: "slow", Query: "* | stats avg(ms) as ms", Column: "ms"}); err != nil || !created || !r.Created.Equal(clock) {
		t.Fatalf("Put (create) = %+v, %v, %v", r, created, err)
	}
	// Put over an invalid entry replaces it, created now.
	put(pipeline.AlertsPrefix+"broken", `{"name":"broken"}`)
	if r, created, err = s.Put(ctx, pipeline.AlertRule{Name: "broken", Query: "q"}); err != nil || created || !r.Created.Equal(clock) {
		t.Fatalf("Put over an invalid entry = %+v, %v, %v", r, created, err)
	}

	l, err := s.List(ctx)
	if err != nil || len(l.Alerts) != 3 || l.Alerts[0].Name != "broken" || l.Alerts[1].Name != "errors" || l.Alerts[2].Name != "slow" || len(l.Invalid) != 0 {
		t.Fatalf("List = %+v, %v", l, err)
	}

	// Delete removes the rule and its state together; a missing rule is
	// ErrAlertNotFound, and its orphan state stays (it is not a rule's).
	if err := s.Delete(ctx, "errors"); err != nil {
		t.Fatal(err)
	}
	if exists(pipeline.AlertsPrefix+"errors") || exists(pipeline.AlertStatePrefix+"errors") {
		t.Fatal("Delete left the rule or its state")
	}
	put(pipeline.AlertStatePrefix+"ghost", `{"state":"ok"}`)
	if err := s.Delete(ctx, "ghost"); !errors.Is(err, pipeline.ErrAlertNotFound) {
		t.Fatalf("Delete of a missing rule: %v", err)
	}
	if !exists(pipeline.AlertStatePrefix + "ghost") {
		t.Fatal("a refused Delete removed a state entry")
	}
}

func isField(err error, field string) bool {
	var fe *pipeline.FieldError
	return errors.As(err, &fe) && fe.Field == field
}

// Entries written with etcdctl are read at once (no cache): a valid one
// is served, an invalid one is listed with the reason and answered as an
// InvalidEntryError.
func TestAlertStoreEntriesWrittenToEtcd(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewAlertStore(cli)
	put := func(key, val string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	put(pipeline.AlertsPrefix+"direct", `{"name":"direct","query":"host:web1","condition":{"op":">=","value":10}}`)
	put(pipeline.AlertsPrefix+"garbage", `{"name":`)
	put(pipeline.AlertsPrefix+"elsewhere", `{"name":"other","query":"q"}`)
	put(pipeline.AlertsPrefix+"typo", `{"name":"typo","query":"q","evry":"1m"}`)
	put(pipeline.AlertsPrefix+"Bad Key", `{"name":"Bad Key","query":"q"}`)

	l, err := s.List(ctx)
	if err != nil || len(l.Alerts) != 1 || l.Alerts[0].Name != "direct" || l.Alerts[0].Condition.Value != 10 || l.Alerts[0].Every != "1m0s" || !l.Alerts[0].Created.IsZero() {
		t.Fatalf("List = %+v, %v", l, err)
	}
	for name, why := range map[string]string{"garbage": "body: invalid alert rule JSON", "elsewhere": `name: "other" does not match its key`, "typo": "evry: unknown key", "Bad Key": "name:"} {
		if !strings.HasPrefix(l.Invalid[name], why) {
			t.Errorf("Invalid[%q] = %q, want it to start with %q", name, l.Invalid[name], why)
		}
	}
	if inv, err := s.Invalid(ctx); err != nil || len(inv) != 4 {
		t.Fatalf("Invalid = %v, %v", inv, err)
	}
	var ie *pipeline.InvalidEntryError
	if _, err := s.Get(ctx, "typo"); !errors.As(err, &ie) || ie.Key != pipeline.AlertsPrefix+"typo" || !strings.Contains(err.Error(), "evry: unknown key") {
		t.Fatalf("Get of an invalid entry: %v", err)
	}
	// A change made there shows at the next call.
	put(pipeline.AlertsPrefix+"direct", `{"name":"direct","query":"host:web2"}`)
	if r, err := s.Get(ctx, "direct"); err != nil || r.Query != "host:web2" {
		t.Fatalf("Get after an etcd write: %+v, %v", r, err)
	}
	// As a watch of the prefix would decode an entry.
	if _, err := s.DecodeEntry(pipeline.AlertsPrefix+"x", []byte(`{"name":"y","query":"q"}`)); !isField(err, "name") {
		t.Fatalf("DecodeEntry of a rule under another name's key: %v", err)
	}
	if r, err := s.DecodeEntry(pipeline.AlertsPrefix+"x", []byte(`{"name":"x","query":"q"}`)); err != nil || r.Name != "x" {
		t.Fatalf("DecodeEntry = %+v, %v", r, err)
	}
	if err := s.Delete(ctx, "Bad Key"); err != nil {
		t.Fatalf("delete an entry under a name the API refuses: %v", err)
	}
}

// The state the evaluator writes is read as it is; a missing one means
// never evaluated; an unreadable one is an "error" state saying so.
func TestAlertStoreStatus(t *testing.T) {
	e := startEtcd(t)
	cli := e.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewAlertStore(cli)

	if st, found, err := s.Status(ctx, "a"); err != nil || found || st.State != "" {
		t.Fatalf("Status of a never evaluated rule: %+v %v %v", st, found, err)
	}
	if m, err := s.Statuses(ctx); err != nil || len(m) != 0 {
		t.Fatalf("Statuses with none: %v %v", m, err)
	}
	v := 42.0
	since := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	want := pipeline.AlertStatus{
		State: pipeline.AlertFiring, Value: &v, LastEval: since.Add(time.Hour), Duration: 0.25,
		Instances: []pipeline.AlertInstance{{Labels: map[string]string{"alertname": "a", "host": "web1"}, State: pipeline.AlertFiring, Value: 42, ActiveSince: since, FiredAt: since.Add(time.Minute)}},
		History:   []pipeline.AlertEvent{{Time: since, Labels: map[string]string{"alertname": "a", "host": "web1"}, From: pipeline.AlertOK, To: pipeline.AlertPending, Value: 40}},
	}
	b, _ := json.Marshal(want)
	if _, err := cli.Put(ctx, pipeline.AlertStatePrefix+"a", string(b)); err != nil {
		t.Fatal(err)
	}
	// A newer evaluator's extra key is no error; an entry that is not
	// JSON is reported as such.
	if _, err := cli.Put(ctx, pipeline.AlertStatePrefix+"b", `{"state":"ok","value":0,"since_v2":1}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, pipeline.AlertStatePrefix+"c", `{"state":`); err != nil {
		t.Fatal(err)
	}
	st, found, err := s.Status(ctx, "a")
	if err != nil || !found || !reflect.DeepEqual(st, want) {
		t.Fatalf("Status = %+v, %v, %v\nwant %+v", st, found, err, want)
	}
	m, err := s.Statuses(ctx)
	if err != nil || len(m) != 3 || !reflect.DeepEqual(m["a"], want) {
		t.Fatalf("Statuses = %+v, %v", m, err)
	}
	if b := m["b"]; b.State != pipeline.AlertOK || b.Value == nil || *b.Value != 0 || b.Instances == nil || b.History == nil {
		t.Fatalf("Statuses[b] = %+v", b)
	}
	if c := m["c"]; c.State != "error" || !strings.Contains(c.Error, pipeline.AlertStatePrefix+"c") || !strings.Contains(c.Error, "unreadable") {
		t.Fatalf("Statuses[c] = %+v", c)
	}
}
