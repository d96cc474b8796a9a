package kafkain

import (
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// A Filebeat 8.x filestream event as its Kafka output writes it.
const filebeatEvent = `{"@timestamp":"2026-11-25T10:00:01.234Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.15.3"},` +
	`"log":{"offset":12345,"file":{"path":"/var/log/nginx/access.log","inode":"1835010","device_id":"66305"}},` +
	`"message":"192.168.1.10 - - [25/Nov/2026:10:00:00 +0000] \"GET /api HTTP/1.1\" 200 612 \"-\" \"curl/8.0\"",` +
	`"input":{"type":"filestream"},"ecs":{"version":"8.0.0"},` +
	`"host":{"name":"web1","hostname":"web1.example.com","architecture":"x86_64","os":{"platform":"ubuntu","version":"24.04"},"ip":["10.0.0.5"],"mac":["02-42-AC-11-00-02"]},` +
	`"agent":{"type":"filebeat","version":"8.15.3","ephemeral_id":"9a1b","id":"c3d4","name":"web1"},` +
	`"fields":{"env":"prod","team":{"name":"payments"},"replicas":3},"tags":["nginx","edge"]}`

func TestDecodeValue(t *testing.T) {
	msgTS := time.Date(2026, 11, 25, 10, 0, 5, 0, time.UTC)
	fbTS := time.Date(2026, 11, 25, 10, 0, 1, 234e6, time.UTC)
	cases := []struct {
		name  string
		value string
		kind  decoded
		want  pipeline.Record // Topic is always "t"
	}{
		{"logbox event", `{"ts":"2026-11-25T09:00:00Z","host":"h","source":"/a.log","file_id":"1:2:ab","offset":7,"line":"hello","fields":{"app":"x"}}`,
			decodedLogbox, pipeline.Record{TS: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Host: "h", Source: "/a.log", FileID: "1:2:ab", Offset: 7, Line: "hello", Fields: map[string]string{"app": "x"}}},
		{"logbox event with parser and zone", `{"ts":"2026-11-25T09:00:00Z","host":"h","source":"/a.log","file_id":"f","offset":7,"line":"x","flags":["truncated"],"parser":"regex:(?P<a>\\d+)","tz":"Asia/Shanghai"}`,
			decodedLogbox, pipeline.Record{TS: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Host: "h", Source: "/a.log", FileID: "f", Offset: 7, Line: "x", Parser: `regex:(?P<a>\d+)`, TZ: "Asia/Shanghai"}},
		{"logbox event, members in another order", `{"tz":"+08:00","line":"x","parser":"nginx","host":"h","file_id":"f","offset":1}`,
			decodedLogbox, pipeline.Record{TS: msgTS, Host: "h", FileID: "f", Offset: 1, Line: "x", Parser: "nginx", TZ: "+08:00"}},
		{"logbox event without file_id", `{"line":"x","host":"h"}`,
			decodedLogbox, pipeline.Record{TS: msgTS, Host: "h", FileID: "kafka:t:2", Offset: 99, Line: "x"}},
		{"filebeat 8 filestream", filebeatEvent, decodedECS, pipeline.Record{
			TS: fbTS, Host: "web1", Source: "/var/log/nginx/access.log", FileID: "filebeat:/var/log/nginx/access.log@66305:1835010", Offset: 12345,
			Line:   `192.168.1.10 - - [25/Nov/2026:10:00:00 +0000] "GET /api HTTP/1.1" 200 612 "-" "curl/8.0"`,
			Fields: map[string]string{"env": "prod", "team.name": "payments", "replicas": "3", "tags": "nginx,edge", "input.type": "filestream"}}},
		{"filebeat fingerprint identity", `{"@timestamp":"2026-11-25T10:00:01.234Z","message":"m","host":{"hostname":"db2"},"log":{"offset":0,"file":{"path":"/var/log/pg.log","fingerprint":"a1b2","inode":"5"}}}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "db2", Source: "/var/log/pg.log", FileID: "filebeat:/var/log/pg.log@fp:a1b2", Offset: 0, Line: "m"}},
		{"filebeat log input without inode", `{"@timestamp":"2026-11-25T10:00:01.234Z","message":"m","host":{"name":"a"},"log":{"offset":42,"file":{"path":"/x.log"}}}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "a", Source: "/x.log", FileID: "filebeat:/x.log", Offset: 42, Line: "m"}},
		{"filebeat with add_locale", `{"@timestamp":"2026-11-25T10:00:01.234Z","message":"m","host":{"name":"a"},"event":{"timezone":"+08:00"},"log":{"offset":42,"file":{"path":"/x.log"}}}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "a", Source: "/x.log", FileID: "filebeat:/x.log", Offset: 42, Line: "m", TZ: "+08:00"}},
		{"ecs without file (journald, syslog input)", `{"@timestamp":"2026-11-25T10:00:01.234Z","message":"Started session 4.","host":{"name":"a"},"log":{"level":"info"},"event":{"dataset":"system.syslog"},"input":{"type":"journald"}}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "a", Source: "kafka:t", FileID: "filebeat:kafka:t:2", Offset: 99, Line: "Started session 4.",
				Fields: map[string]string{"log.level": "info", "event.dataset": "system.syslog", "input.type": "journald"}}},
		{"filebeat kubernetes container", `{"@timestamp":"2026-11-25T10:00:01.234Z","message":"{\"level\":\"error\"}","stream":"stderr","host":{"name":"node1"},` +
			`"log":{"offset":100,"file":{"path":"/var/log/containers/api-7d9_default_api-0a1.log"}},"kubernetes":{"namespace":"default","pod":{"name":"api-7d9"},"container":{"name":"api"}},"container":{"id":"0a1","runtime":"containerd"}}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "node1", Source: "/var/log/containers/api-7d9_default_api-0a1.log", FileID: "filebeat:/var/log/containers/api-7d9_default_api-0a1.log", Offset: 100,
				Line: `{"level":"error"}`, Fields: map[string]string{"kubernetes.namespace": "default", "kubernetes.pod.name": "api-7d9", "kubernetes.container.name": "api"}}},
		{"vector file source", `{"file":"/var/log/app.log","host":"box","message":"boot ok","source_type":"file","timestamp":"2026-11-25T10:00:01.234Z"}`,
			decodedECS, pipeline.Record{TS: fbTS, Host: "box", Source: "/var/log/app.log", FileID: "filebeat:kafka:t:2", Offset: 99, Line: "boot ok"}},
		{"dotted keys and odd types tolerated", `{"message":"m","log.offset":"nope","host":7,"fields":"x","tags":"y","@timestamp":"bad"}`,
			decodedECS, pipeline.Record{TS: msgTS, Source: "kafka:t", FileID: "filebeat:kafka:t:2", Offset: 99, Line: "m"}},
		{"message not a string is raw", `{"message":{"a":1}}`,
			decodedRaw, pipeline.Record{TS: msgTS, Source: "kafka:t", FileID: "kafka:t:2", Offset: 99, Line: `{"message":{"a":1}}`}},
		{"other JSON is raw", `{"level":"info","msg":"x","latency_ms":5}`,
			decodedRaw, pipeline.Record{TS: msgTS, Source: "kafka:t", FileID: "kafka:t:2", Offset: 99, Line: `{"level":"info","msg":"x","latency_ms":5}`}},
		{"text is raw", `Nov 25 10:00:00 web1 sshd[1]: x`,
			decodedRaw, pipeline.Record{TS: msgTS, Source: "kafka:t", FileID: "kafka:t:2", Offset: 99, Line: `Nov 25 10:00:00 web1 sshd[1]: x`}},
		{"broken JSON is raw", `{"message":"x"`,
			decodedRaw, pipeline.Record{TS: msgTS, Source: "kafka:t", FileID: "kafka:t:2", Offset: 99, Line: `{"message":"x"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, kind := decodeValue([]byte(c.value), "t", 2, 99, msgTS)
			c.want.Topic = "t"
			if kind != c.kind {
				t.Errorf("kind %d, want %d", kind, c.kind)
			}
			if !got.TS.Equal(c.want.TS) || got.Host != c.want.Host || got.Source != c.want.Source || got.FileID != c.want.FileID ||
				got.Offset != c.want.Offset || got.Line != c.want.Line || got.Topic != c.want.Topic || len(got.Fields) != len(c.want.Fields) ||
				got.Parser != c.want.Parser || got.TZ != c.want.TZ {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			for k, v := range c.want.Fields {
				if got.Fields[k] != v {
					t.Errorf("fields[%s] = %q, want %q (all: %v)", k, got.Fields[k], v, got.Fields)
				}
			}
		})
	}
}

// A line Filebeat sends twice (at-least-once) lands at another Kafka offset
// but gets the same record ID.
func TestFilebeatResendSameID(t *testing.T) {
	a, _ := decodeValue([]byte(filebeatEvent), "t", 0, 10, time.Now())
	b, _ := decodeValue([]byte(filebeatEvent), "t", 1, 5000, time.Now())
	if a.ID() != b.ID() {
		t.Fatalf("ids differ: %s vs %s", a.ID(), b.ID())
	}
}
