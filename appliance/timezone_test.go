package appliance

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestZonelessTimesThroughThePipeline: a time written without a zone is
// read in the zone of the box that wrote it, through the real path (the
// tailer, direct or through a Kafka event, the index): a source's
// timezone wins; else the collecting box's zone (Config.Zone, which
// main.go finds from $TZ or /etc/localtime) decides, not the indexer's.
// A source's named parser applies on the way (status answers a range).
func TestZonelessTimesThroughThePipeline(t *testing.T) {
	// The box's zone must differ from the indexer's (time.Local) and
	// from the source's for the test to tell them apart.
	boxZone := "America/Sao_Paulo"
	if _, off := time.Now().In(time.Local).Zone(); off == -3*3600 {
		boxZone = "Asia/Tokyo"
	}
	box, err := time.LoadLocation(boxZone)
	if err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// Two hours ago, to the second, written as each zone's wall clock.
	want := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	const layout = "2006-01-02 15:04:05"
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			root := t.TempDir()
			logs := filepath.Join(root, "logs")
			if err := os.MkdirAll(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			appendFile(t, filepath.Join(logs, "box.log"), want.In(box).Format(layout)+" INFO tzbox written in the box's zone\n")
			appendFile(t, filepath.Join(logs, "sh.log"), want.In(shanghai).Format(layout)+",123 INFO tzsource written in the source's zone\n"+
				`10.0.0.1 - - [`+want.In(shanghai).Format("02/Jan/2006:15:04:05 -0700")+`] "GET /x HTTP/1.1" 503 12 "-" "curl/8" rt=0.250`+"\n")

			cfg := testConfig(t, filepath.Join(root, "data"), root)
			cfg.Collect = []string{filepath.Join(logs, "box.log")}
			cfg.Zone = boxZone
			m.kafka(t, &cfg)
			app := start(t, cfg)
			src := map[string]any{"name": "shanghai", "paths": []string{filepath.Join(logs, "sh.log")}, "timezone": "Asia/Shanghai", "parser": "nginx"}
			if code := app.call("POST", "/api/sources", src, nil); code != 201 {
				t.Fatalf("add source: %d", code)
			}

			app.waitTotal("tzbox", 1)
			if h := app.search("tzbox").Hits[0]; !h.TS.Equal(want) {
				t.Errorf("box zone line at %v, want %v (%v off)", h.TS, want, h.TS.Sub(want))
			}
			app.waitTotal("tzsource", 1)
			if h := app.search("tzsource").Hits[0]; !h.TS.Equal(want.Add(123 * time.Millisecond)) {
				t.Errorf("source zone line at %v, want %v (%v off)", h.TS, want.Add(123*time.Millisecond), h.TS.Sub(want))
			}
			// The nginx parser: the access line's fields, numbers as
			// numbers; the log4j line does not fit it and says so.
			app.waitTotal("+status:>=500 +request_time:>0.2 +method:GET", 1)
			if h := app.search("tzsource").Hits[0]; len(h.Flags) != 1 || h.Flags[0] != "unparsed" {
				t.Errorf("a line the nginx parser does not fit: flags %v, want [unparsed]", h.Flags)
			}
		})
	}
}
